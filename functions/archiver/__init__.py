"""The archiver function: every record of the stream, as it arrived, into the Avro archive."""
