"""How long a lake table keeps its history, and the removal of files nothing refers to.

**Snapshot expiry.** A snapshot older than the retention is removed from the table's
metadata, except the newest ``snapshots_kept`` and any branch or tag head (pyiceberg
protects those itself). Expiry only edits metadata: the files stay, and time travel to an
expired snapshot fails from then on.

**Orphan files.** A file under the table's data or metadata folder is deleted when no
retained part of the table refers to it and it is older than a safety age. Referred to
means any of: the current metadata file and every file of its metadata log; every
snapshot's manifest list, every manifest of those lists, and every file any entry of those
manifests names, whatever the entry's status (an entry marked deleted still names a file an
older snapshot may read); every statistics and partition-statistics file. The set is built
from the table as committed *after* expiry. The safety age (days, against minutes for a
commit) covers the one race a listing cannot see: a writer's file written before the
listing and committed after it. Files outside ``<location>/data`` and ``<location>/metadata``
(or the folders the table's ``write.data.path`` / ``write.metadata.path`` name) are never
considered.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pipelines.adapters.stored_files import StoredFiles, normalized_uri
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from pyiceberg.table import Table

logger = logging.getLogger(__name__)

# Below this, a file being written by a commit in flight could be taken for an orphan.
MIN_ORPHAN_AGE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history a table keeps, and how old an unreferenced file must be to go."""

    snapshot_age: timedelta = timedelta(days=7)
    snapshots_kept: int = 10
    orphan_age: timedelta = timedelta(days=3)

    def __post_init__(self) -> None:
        if self.snapshots_kept < 1:
            raise ValueError("snapshots_kept must be at least 1 (the current snapshot)")
        if self.snapshot_age < timedelta(0):
            raise ValueError("snapshot_age must not be negative")
        if self.orphan_age < MIN_ORPHAN_AGE:
            raise ValueError(f"orphan_age must be at least {MIN_ORPHAN_AGE}")


@dataclass(frozen=True, slots=True)
class Orphans:
    """What orphan removal deleted."""

    files: int = 0
    bytes: int = 0


def expired_snapshot_ids(table: Table, now: datetime, retention: Retention) -> list[int]:
    """The snapshots older than the retention, less the newest ``snapshots_kept`` and any
    branch or tag head."""
    cutoff_ms = int((now - retention.snapshot_age).timestamp() * 1000)
    newest_first = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    return [
        s.snapshot_id
        for s in newest_first[retention.snapshots_kept :]
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected
    ]


def expire_snapshots(
    load: Callable[[], Table],
    now: datetime,
    retention: Retention,
    *,
    max_attempts: int = 6,
    base_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Table, int]:
    """Remove the expired snapshots of the table ``load`` returns; the table as committed and
    how many went. A commit that loses a race with another is redone from a fresh table."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(1, max_attempts + 1):
        table = load()
        expired = expired_snapshot_ids(table, now, retention)
        if not expired:
            return table, 0
        try:
            table.maintenance.expire_snapshots().by_ids(expired).commit()
        except CommitFailedException as exc:
            logger.info(
                "snapshot expiry of %s lost a race (attempt %d): %s", table.name(), attempt, exc
            )
            delay = base_delay * 2 ** (attempt - 1)
            sleep(random.uniform(delay / 2, delay))
            continue
        return load(), len(expired)
    raise TransientError(f"snapshot expiry kept losing races: {max_attempts} attempts")


def referenced_files(table: Table) -> set[str]:
    """Every file the table's current metadata refers to (module docstring), normalized."""
    from pyiceberg.manifest import ManifestFile

    metadata = table.metadata
    io = table.io
    out = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    out.update(s.statistics_path for s in metadata.statistics)
    out.update(s.statistics_path for s in metadata.partition_statistics)
    manifests: dict[str, ManifestFile] = {}
    for snapshot in metadata.snapshots:
        out.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            manifests.setdefault(manifest.manifest_path, manifest)
    for path, manifest in manifests.items():
        out.add(path)
        out.update(
            entry.data_file.file_path
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False)
        )
    return {normalized_uri(uri) for uri in out}


def table_folders(table: Table) -> list[str]:
    """The folders the table writes its files in: data, then metadata, each ending in ``/``."""
    location = table.metadata.location.rstrip("/")
    properties = table.properties
    data = properties.get("write.data.path") or f"{location}/data"
    metadata = properties.get("write.metadata.path") or f"{location}/metadata"
    return [normalized_uri(folder).rstrip("/") + "/" for folder in (data, metadata)]


def orphan_files(
    table: Table, files: StoredFiles, now: datetime, retention: Retention
) -> list[tuple[str, int]]:
    """(URI, size) of the files under the table's folders that nothing retained refers to
    and that are older than the retention's orphan age."""
    referenced = referenced_files(table)
    cutoff = now - retention.orphan_age
    out: list[tuple[str, int]] = []
    for folder in table_folders(table):
        for stored in files.list(folder):
            uri = normalized_uri(stored.uri)
            if uri.startswith(folder) and uri not in referenced and stored.modified < cutoff:
                out.append((uri, stored.size))
    return out


def delete_orphans(
    table: Table, files: StoredFiles, now: datetime, retention: Retention
) -> Orphans:
    """Delete the table's orphan files (module docstring); what went."""
    orphans = orphan_files(table, files, now, retention)
    if not orphans:
        return Orphans()
    files.delete([uri for uri, _ in orphans])
    logger.info("deleted %d orphan files of %s", len(orphans), table.name())
    return Orphans(len(orphans), sum(size for _, size in orphans))
