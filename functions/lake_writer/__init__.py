"""The lake writer function: Kinesis events into the Parquet lake."""
