"""Glue: ``UpdateTable`` honours ``VersionId``, the optimistic lock Iceberg's commits rely on."""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import EmptyResult
from moto.glue.exceptions import GlueClientError
from moto.glue.models import GlueBackend
from moto.glue.responses import GlueResponse

from pipelines_local.emulator.patches.base import Patch, Patcher

_update_lock = threading.Lock()


class ConcurrentModificationException(GlueClientError):
    """The table changed since the version the update was based on (Glue's code and wording)."""

    def __init__(self) -> None:
        super().__init__(
            "ConcurrentModificationException",
            "Update table failed due to concurrent modifications.",
        )


def _install_table_version_check(patcher: Patcher) -> None:
    """``UpdateTable`` with a ``VersionId`` other than the table's current one is refused.

    Glue answers such an update with ``ConcurrentModificationException`` and leaves the table
    as it is; without ``VersionId`` the update is unconditional. That check is the lock an
    Iceberg commit takes: the writer reads the table (and its ``VersionId``), writes new
    metadata, then points the table at it with ``UpdateTable`` at the version it read, and
    pyiceberg's Glue catalog turns the refusal into ``CommitFailedException`` for the writer to
    redo its commit. moto 5.2.5 ignores ``VersionId``, so of two writers that read the same
    version the later one silently replaces the other's commit.

    The check and the update are one step under a lock (moto's server handles requests on
    several threads), which also keeps two concurrent updates from taking the same new
    version number. moto numbers versions from 1 (Glue from 0); only equality matters here.
    """

    def update_table(
        self: GlueBackend,
        database_name: str,
        table_name: str,
        table_input: dict[str, Any],
        version_id: str | None = None,
    ) -> None:
        with _update_lock:
            table = self.get_table(database_name, table_name)
            if version_id is not None and version_id != str(table._current_version):
                raise ConcurrentModificationException()
            table.update(table_input)

    def update_table_response(self: GlueResponse) -> EmptyResult:
        parameters = self.parameters
        table_input = parameters["TableInput"]
        update_table(
            self.glue_backend,
            parameters["DatabaseName"],
            table_input["Name"],
            table_input,
            version_id=parameters.get("VersionId"),
        )
        return EmptyResult()

    patcher.replace(GlueBackend, "update_table", update_table)
    patcher.replace(GlueResponse, "update_table", update_table_response)


TABLE_VERSION_CHECK = Patch(
    name="glue_table_version_check",
    restores="UpdateTable with a VersionId other than the table's current one is refused",
    install=_install_table_version_check,
)
