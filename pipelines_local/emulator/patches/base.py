"""The mechanics of a patch: what it is, and how it is put in place and taken back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


class Patcher:
    """Replaces attributes of moto's classes and remembers the originals so they can be restored."""

    def __init__(self) -> None:
        self._originals: list[tuple[Any, str, Any]] = []

    def replace(self, owner: type, name: str, new: Any) -> None:
        """Set ``owner.name`` to ``new``, remembering what ``owner`` itself held before.

        Only the class's own attribute is remembered, so undoing the replacement of an inherited
        (or new) attribute removes the override instead of copying anything onto ``owner``.
        """
        self._originals.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, new)

    def undo(self) -> None:
        """Restore every replaced attribute, newest first."""
        while self._originals:
            owner, name, original = self._originals.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


@dataclass(frozen=True)
class Patch:
    """One difference between moto and AWS, and the code that removes it.

    ``restores`` says, in a sentence, the AWS behaviour the patch brings back; ``requires``
    names patches this one builds on.
    """

    name: str
    restores: str
    install: Callable[[Patcher], None]
    requires: tuple[str, ...] = field(default=())
