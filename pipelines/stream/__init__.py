"""The stream: KPL aggregation, the one decode path of a Lambda record, and the producer."""
