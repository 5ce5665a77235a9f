"""The projector function: Kinesis events into the DynamoDB read models."""
