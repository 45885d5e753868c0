"""Numbered schema migrations, one folder per backend (``sqlite/``, ``postgres/``).

A migration is a file ``NNNN_name.sql``; its number orders it and is what the
``schema_migrations`` table records once it is applied. Files are never edited after release:
a change is a new file with the next number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal

from tracker.storage.base import StorageError

__all__ = ["Backend", "Migration", "load"]

Backend = Literal["sqlite", "postgres"]
_NAME: Final = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql\Z")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # "0001_sightings"
    sql: str


def load(backend: Backend) -> list[Migration]:
    """The backend's migrations in order. Raises StorageError on a gap or a duplicate number,
    so a mistake in the folder is caught before anything is applied."""
    folder = resources.files(__name__).joinpath(backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m is None:
            continue
        found.append(Migration(int(m.group(1)), entry.name[:-4], entry.read_text("utf-8")))
    found.sort(key=lambda x: x.version)
    for i, mig in enumerate(found, start=1):
        if mig.version != i:
            raise StorageError(f"{backend} migrations are not numbered 1..n: {mig.name}")
    return found
