"""Deploying the Terraform stack: offline init, the emulator override, up and down.

* :mod:`pipelines_local.infra.cli_config` writes the Terraform CLI configuration that installs
  the AWS provider from the machine's mirror and never from the network
  (``python -m pipelines_local.infra.cli_config [PATH]`` writes it and prints its path).
* :mod:`pipelines_local.infra.terraform` runs Terraform (init, workspaces, apply, destroy, outputs).
* :mod:`pipelines_local.infra.override` renders the emulator-only override file, the way
  ``tflocal`` does, into a working copy of the root module (never into ``terraform/``).
* :mod:`pipelines_local.infra.stack` brings a workspace up or down (``up``, ``plan``, ``down``),
  starting and stopping the embedded emulator; its state lives under ``.pipeline/``.
"""
