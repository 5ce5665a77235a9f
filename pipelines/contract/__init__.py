"""The event contract: the shipped Avro schemas, the wire codec, and building events."""
