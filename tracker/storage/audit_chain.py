"""The audit log's hash chain: what a record's hash covers, and how a chain is checked.

Invariants:

* A record's hash is SHA-256 over the previous record's hash and the record's own fields
  (time to the microsecond in UTC, actor, role, client, action, reason, parameters) written as
  one canonical JSON text (sorted keys, no spaces, UTF-8): a changed field, a removed or
  inserted record, or a reordering breaks every hash from there on.
* The first chained record's previous hash is :data:`GENESIS`. Records written before the chain
  existed (migration 0007) carry no hash and are reported as unchained, never as broken; once
  the chain has begun, a record without a hash is broken.
* Pure: no I/O here. Storage calls :func:`record_hash` inside the write transaction that holds
  the audit lock; ``pak audit verify`` calls :func:`verify` over the records it reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

__all__ = ["GENESIS", "ChainReport", "canonical_params", "record_hash", "verify"]

GENESIS: Final = "0" * 64


def canonical_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as they read back from storage (JSON types only)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(params, default=str))
    return out


def record_hash(prev_hash: str, *, at: datetime, actor: str, role: str | None,
                client: str | None, action: str, reason: str, params: dict[str, Any]) -> str:
    body = orjson.dumps(
        [prev_hash, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, role, client,
         action, reason, params], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What a check of the whole log found."""

    records: int
    unchained: int  # records from before the chain began
    head_id: int | None
    head_hash: str | None
    broken_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_id is None


def verify(entries: Iterable[Any]) -> ChainReport:
    """Check ``entries`` (AuditEntry-like, in id order) and stop at the first broken one."""
    prev: str | None = None
    count = unchained = 0
    head_id: int | None = None
    for e in entries:
        count += 1
        if e.hash is None:
            if prev is None:
                unchained += 1
                continue
            return ChainReport(count, unchained, head_id, prev, e.id, "record without a hash "
                               "after the chain began")
        expected_prev = prev if prev is not None else GENESIS
        if e.prev_hash != expected_prev:
            return ChainReport(count, unchained, head_id, prev, e.id,
                               "previous hash does not match the record before it "
                               "(a record was removed, inserted or changed)")
        again = record_hash(expected_prev, at=e.at, actor=e.actor, role=e.role,
                            client=e.client, action=e.action, reason=e.reason, params=e.params)
        if again != e.hash:
            return ChainReport(count, unchained, head_id, prev, e.id,
                               "record's fields do not match its hash (the record was changed)")
        prev, head_id = e.hash, e.id
    return ChainReport(count, unchained, head_id, prev)
