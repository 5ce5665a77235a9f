"""Patches that bring moto's server back to AWS's behaviour where our stack depends on it.

Each patch is small, names the AWS behaviour it restores in its docstring, and is covered by
an integration test that talks to the running server over HTTP. They are written against the
pinned moto version (see ``pyproject.toml``); :data:`MOTO_VERSION` records it and a mismatch is
logged when the patches are applied, because a newer moto may have fixed (or moved) what they touch.

Patches are applied inside the emulator's own process
(``python -m pipelines_local.emulator serve``), never in a process that merely talks to the
emulator. :func:`patched` applies them temporarily, for tests that run moto in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pipelines_local.emulator.patches import (
    athena,
    athena_sql,
    glue,
    kinesis,
    lambda_functions,
    lambda_mappings,
    policies,
    sqs,
)
from pipelines_local.emulator.patches.base import Patch, Patcher

__all__ = [
    "MOTO_VERSION",
    "PATCHES",
    "Patch",
    "Patcher",
    "apply_patches",
    "patch_names",
    "patched",
]

logger = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"
"""The moto version the patches were written and tested against."""

PATCHES: tuple[Patch, ...] = (
    sqs.QUEUE_ATTRIBUTES,
    athena.UNTAGGED_RESOURCE_TAGS,
    athena.NAMED_QUERY_DELETION,
    kinesis.CREATE_STREAM_TAGS,
    lambda_mappings.MAPPINGS_METADATA_ONLY,
    kinesis.SHARD_INDEX,
    kinesis.RETENTION_TRIMMING,
    policies.ABSENT_CONDITION_KEYS,
    lambda_functions.FUNCTION_CONFIGS_READ_BACK,
    glue.TABLE_VERSION_CHECK,
    athena_sql.EXECUTES_SQL,
)
"""Every patch, in the order they are applied."""

_active: Patcher | None = None


def patch_names() -> list[str]:
    """Return the names of every known patch."""
    return [patch.name for patch in PATCHES]


def apply_patches(disabled: Iterable[str] = ()) -> Patcher:
    """Apply every patch except those named in ``disabled``; return the patcher that can undo them.

    A patch whose prerequisite is disabled is skipped too. Applying twice is a no-op that returns
    the active patcher.
    """
    global _active
    if _active is not None:
        return _active
    skipped = set(disabled)
    unknown = skipped - set(patch_names())
    if unknown:
        raise ValueError(f"unknown emulator patches: {', '.join(sorted(unknown))}")
    _warn_on_version_drift()
    patcher = Patcher()
    for patch in PATCHES:
        missing = [name for name in patch.requires if name in skipped]
        if patch.name in skipped or missing:
            skipped.add(patch.name)
            logger.info("emulator patch %s not applied", patch.name)
            continue
        patch.install(patcher)
        logger.debug("emulator patch %s applied", patch.name)
    _active = patcher
    return patcher


def revert_patches() -> None:
    """Undo :func:`apply_patches` (used by in-process tests)."""
    global _active
    if _active is not None:
        _active.undo()
        _active = None


@contextmanager
def patched(disabled: Iterable[str] = ()) -> Iterator[Patcher]:
    """Apply the patches for the duration of a ``with`` block (for moto running in-process)."""
    already_active = _active is not None
    patcher = apply_patches(disabled)
    try:
        yield patcher
    finally:
        if not already_active:
            revert_patches()


def _warn_on_version_drift() -> None:
    from importlib.metadata import version

    installed = version("moto")
    if installed != MOTO_VERSION:
        logger.warning(
            "emulator patches were written for moto %s but %s is installed; "
            "re-run tests/integration/test_emulator_patches.py",
            MOTO_VERSION,
            installed,
        )
