"""Event-sourced streaming pipeline for AWS: the code that runs in Lambda.

This package ships to Lambda whole (``make package``) and imports only what the
functions' requirements install (``functions/requirements.txt``, plus boto3 from
the runtime, and pyarrow and pyiceberg from the lake writer's layer,
``functions/lake-requirements.txt``):

* :mod:`pipelines.contract` - the event contract: schemas, the codec, events;
* :mod:`pipelines.stream` - aggregation, the one decode path of a record, the producer;
* :mod:`pipelines.adapters` - DynamoDB, S3 objects, the quarantine, SNS: injected clients,
  botocore's errors translated there and only there;
* :mod:`pipelines.consumers` - the one batch kernel, the configuration, and what only each
  consumer does (projector, lake writer, archiver, alerter).

What runs on a laptop or in CI (the ``pipeline`` CLI, the emulator, the local runtime,
Terraform, queries, the simulator) is the sibling package ``pipelines_local``, installed
with the ``local`` extra and never shipped.
"""

__version__ = "0.1.0"
