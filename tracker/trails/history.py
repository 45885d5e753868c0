"""The two storage reads the alert timers make in bulk: the recent history of many tags at once
(clone checks) and sightings per reader in a window (blind spots).

With several tracker instances each one receives a share of the sightings, so a tag's previous
pass or a reader's count must come from storage, where every instance's share meets.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime

from tracker.storage.base import Storage
from tracker.storage.records import TagPass

__all__ = ["reader_counts", "tag_histories"]


def tag_histories(storage: Storage, tag_ids: Iterable[str], *, since: datetime,
                  until: datetime) -> dict[str, list[TagPass]]:
    """Each tag's passes (where, when, which sighting) with ``since <= first_seen < until``,
    in ``first_seen`` order."""
    tags = sorted(set(tag_ids))
    out: defaultdict[str, list[TagPass]] = defaultdict(list)
    for p in storage.tag_passes(tags, since=since, until=until):
        out[p.tag_id].append(p)
    return dict(out)


def reader_counts(storage: Storage, *, since: datetime, until: datetime) -> Counter[str]:
    """Sightings per reader with ``since <= first_seen < until``."""
    return Counter(storage.count_by_reader(since=since, until=until))
