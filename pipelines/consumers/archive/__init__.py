"""The archive: every record that reached the stream, its exact bytes and coordinates.

* :mod:`.files` - the Avro files: their schema, keys, writing and reading back;
* :mod:`.archiver` - the consumer that fills them, with its own event source mapping.
"""

from pipelines.consumers.archive.files import (
    ARCHIVE_SCHEMA,
    HOUR_FORMAT,
    ArchivedEvent,
    ArchiveFile,
    Arrival,
    archive_files,
    arrival_hour,
    encode_archive,
    is_replayed,
    read_archive,
)

__all__ = [
    "ARCHIVE_SCHEMA",
    "HOUR_FORMAT",
    "ArchiveFile",
    "ArchivedEvent",
    "Arrival",
    "archive_files",
    "arrival_hour",
    "encode_archive",
    "is_replayed",
    "read_archive",
]
