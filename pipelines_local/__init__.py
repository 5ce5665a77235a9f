"""What runs on a laptop or in CI, never in Lambda: the ``pipeline`` CLI and everything behind it.

The one :class:`~pipelines_local.workspace.Workspace` (names from Terraform's outputs), the
embedded emulator, the local runtime, Terraform, queries, the simulator, the demo and the
packaging. Installed with the ``local`` extra (``pip install 'pipelines[local]'``), which
``make demo`` and ``make test`` install; never part of the Lambda package.
"""
