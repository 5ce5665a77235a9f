"""Adapters to AWS: DynamoDB, S3 objects, the quarantine, the alert state and SNS.

Every adapter takes an injected client. botocore's errors are translated here and only
here, by :func:`pipelines.adapters.errors.translate`, into the kinds the batch kernel acts
on (:mod:`pipelines.errors`).
"""
