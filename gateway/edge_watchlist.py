"""The edge list a gateway holds, and the hits it sends on the priority lane.

The tracker publishes the watchlist as keyed hashes, retained, on ``{root}/edge/watchlist``
(pak/wire/edge_watchlist.py). A gateway given the same key (``--edge-key``) keeps the newest
snapshot: one whose ``rev`` is not newer than the last applied is refused (a replayed or late
copy can never bring back an older list), as is one hashed with another key (``kid``) or
addressed to another topic. The snapshot is also written beside the spool
(``edge_watchlist.json``, replaced atomically), so a restarted gateway checks its first reads
before the broker has answered.

Each ``open`` sighting (the first read) whose tag hashes into the list is published at once on
``{root}/gw/{id}/hits`` (QoS 1), ahead of the spool and the bulk lane; the sighting still goes
to the spool and the bulk lane as usual, and only the bulk lane leads into storage. A gateway
without the key holds no list and sends no hits: the centre's check of every bulk sighting
still catches a stolen tag, a little later.

Invariant: a hit only makes the centre look sooner; the tracker believes its own watchlist.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from pak.errors import WireError
from pak.logs import event
from pak.types import Sighting
from pak.wire.edge_watchlist import (
    EdgeWatchlist,
    edge_hash,
    edge_key_id,
    parse_edge_watchlist,
)
from pak.wire.envelope import VerifierLike, accept_control
from pak.wire.hits import encode_hit

__all__ = ["STATE_FILE", "EdgeList", "send_hits"]

log = logging.getLogger("pak.gateway.edge")

#: The last applied snapshot, beside the spool (its exact bytes, as received).
STATE_FILE: Final = "edge_watchlist.json"


class EdgeList:
    """The newest edge list this gateway has applied (thread-safe: the MQTT thread applies,
    the core thread matches; the hash set is replaced whole)."""

    def __init__(self, key: bytes, topic: str, folder: Path | None = None,
                 verifier: VerifierLike | None = None) -> None:
        self._verifier = verifier  # only a list the centre's key signed (issue 18)
        self._key = key
        self._kid = edge_key_id(key)
        self._topic = topic
        self._file = None if folder is None else folder / STATE_FILE
        self.current: EdgeWatchlist | None = None
        self.refused = 0
        self._refusals_logged: set[str] = set()
        if self._file is not None and self._file.exists():
            with contextlib.suppress(OSError):
                self.apply(self._file.read_bytes(), persist=False)

    @property
    def rev(self) -> int | None:
        return None if self.current is None else self.current.rev

    def __len__(self) -> int:
        return 0 if self.current is None else len(self.current.hashes)

    def matches(self, tag_id: str) -> bool:
        cur = self.current
        return cur is not None and edge_hash(self._key, tag_id) in cur.hashes

    def apply(self, payload: bytes, *, persist: bool = True) -> bool:
        """Apply a snapshot as received from the broker; True when it became the list."""
        try:
            snap = parse_edge_watchlist(accept_control(payload, self._topic, self._verifier))
        except WireError as e:
            return self._refuse(e.reason, e.detail)
        if snap.topic != self._topic:
            return self._refuse("misaddressed", f"topic {snap.topic!r}")
        if snap.kid != self._kid:
            return self._refuse("other_key", f"kid {snap.kid} (ours {self._kid})")
        if self.current is not None and snap.rev <= self.current.rev:
            return self._refuse("not_newer", f"rev {snap.rev} <= {self.current.rev}")
        self.current = snap
        event(log, logging.INFO, "edge_watchlist_applied", rev=snap.rev,
              watched=len(snap.hashes))
        if persist and self._file is not None:
            self._save(payload)
        return True

    def on_payload(self, payload: bytes) -> None:
        """The publisher's callback for ``{root}/edge/watchlist``."""
        self.apply(payload)

    def _save(self, payload: bytes) -> None:
        assert self._file is not None
        tmp = self._file.with_suffix(".tmp")
        try:
            tmp.write_bytes(payload)
            os.replace(tmp, self._file)
        except OSError as e:  # the list in memory still serves; a restart waits for the broker
            event(log, logging.WARNING, "edge_watchlist_not_saved", error=str(e)[:200])

    def _refuse(self, reason: str, detail: str) -> bool:
        self.refused += 1
        if reason not in self._refusals_logged:
            self._refusals_logged.add(reason)
            event(log, logging.WARNING, "edge_watchlist_refused", reason=reason,
                  detail=detail[:200], note="logged once per reason")
        return False


def send_hits(edge: EdgeList | None, events: Sequence[Sighting], *, gateway_id: str,
              spool_id: str, now: datetime, clock_suspect: bool,
              publish: Callable[[bytes], bool]) -> int:
    """Publish the open sightings among ``events`` that match the edge list, in one hit
    message; how many were sent (0 without a list)."""
    if edge is None or edge.current is None:
        return 0
    hits = [s for s in events if s.state == "open" and edge.matches(s.tag_id)]
    if not hits:
        return 0
    payload = encode_hit(gateway_id, spool_id, hits, now, clock_suspect=clock_suspect)
    return len(hits) if publish(payload) else 0
