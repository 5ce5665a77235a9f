"""What a query returns, whichever engine ran it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows (tuples of Python values, in column order), and the columns'
    types as Athena names them (``bigint``, ``decimal(18,4)``, ...) where the engine knows
    them; a column without one is ``varchar``."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    types: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str] = (),
    ) -> QueryResult:
        return cls(tuple(columns), [tuple(row) for row in rows], tuple(types))

    def type_of(self, index: int) -> str:
        """Column ``index``'s Athena type (``varchar`` when the engine did not say)."""
        return self.types[index] if index < len(self.types) else "varchar"

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]
