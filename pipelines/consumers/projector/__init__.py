"""The projector: events into the DynamoDB read models."""
