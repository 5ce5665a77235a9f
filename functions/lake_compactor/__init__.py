"""The lake compactor function: the lake's closed partitions rewritten, its history bounded."""
