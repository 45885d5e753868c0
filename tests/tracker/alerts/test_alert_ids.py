"""Alert ids derived from their cause (tracker/alerts/ids.py) and the alert payload against the
wire contract's JSON Schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pak.types import SightingId
from pak.wire.alert import alert_json, encode_alert
from tests.support.wire_schema import validate
from tracker.alerts.ids import (
    ALERT_KINDS,
    MAX_ALERT_ID,
    parse_alert_id,
    sighting_alert_id,
    subject_alert_id,
)
from tracker.storage.base import Alert

# what the wire allows for gateway, spool and reader ids (pak/wire.py _ID_RE)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True)
seqs = st.integers(0, 9007199254740991)
sids = st.builds(SightingId, ids, ids, seqs)
kinds = st.sampled_from(ALERT_KINDS)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                     timezones=st.just(UTC))


def test_examples() -> None:
    sid = SightingId("gw-17", "5f3a9c", 1042)
    assert sighting_alert_id("stolen_hit", sid) == "stolen_hit:gw-17:5f3a9c:1042"
    # a ':' inside an id is escaped, so the parts stay apart
    assert sighting_alert_id("tamper", SightingId("a:b", "c", 1)) == "tamper:a%3Ab:c:1"
    assert sighting_alert_id("tamper", SightingId("a", "b:c", 1)) == "tamper:a:b%3Ac:1"
    since = datetime(2026, 11, 28, 6, 15, 2, 125000, tzinfo=UTC)
    assert subject_alert_id("gateway_offline", "gw-3", since) == \
        "gateway_offline:gw-3:1795846502125"
    with pytest.raises(ValueError):
        sighting_alert_id("stolen", sid)


@given(kinds, sids)
def test_same_cause_same_id(kind: str, sid: SightingId) -> None:
    """A redelivery is a new object with equal fields: it must give the same id."""
    again = SightingId(str(sid.gateway_id), str(sid.spool_id), int(sid.seq))
    assert sighting_alert_id(kind, sid) == sighting_alert_id(kind, again)


@given(kinds, sids, kinds, sids)
def test_different_causes_different_ids(k1: str, a: SightingId, k2: str, b: SightingId) -> None:
    if (k1, a) != (k2, b):
        assert sighting_alert_id(k1, a) != sighting_alert_id(k2, b)


@given(kinds, sids)
def test_ids_fit_the_schema_and_parse_back(kind: str, sid: SightingId) -> None:
    aid = sighting_alert_id(kind, sid)
    assert 1 <= len(aid) <= MAX_ALERT_ID
    k, parts = parse_alert_id(aid)
    assert k == kind
    if not any(p.startswith("#") for p in parts):  # not a digest of a very long part
        assert parts == (sid.gateway_id, sid.spool_id, str(sid.seq))


@given(kinds, ids, times, ids, times)
def test_subject_ids_are_injective(kind: str, s1: str, t1: datetime, s2: str,
                                   t2: datetime) -> None:
    t1, t2 = (t - timedelta(microseconds=t.microsecond % 1000) for t in (t1, t2))
    a, b = subject_alert_id(kind, s1, t1), subject_alert_id(kind, s2, t2)
    assert len(a) <= MAX_ALERT_ID
    assert (a == b) == ((s1, t1) == (s2, t2))


@given(kinds, sids, times, st.sampled_from(["new", "acknowledged", "dispatched", "closed"]))
def test_payload_follows_the_schema(kind: str, sid: SightingId, at: datetime,
                                    status: str) -> None:
    alert = Alert(alert_id=sighting_alert_id(kind, sid), kind=kind, at=at, status=status,
                  tag_id="E20034120000", reader_id="R-1", gateway_id=sid.gateway_id,
                  sighting=sid, detail={"case": "HZ-1"})
    obj = validate("alert", encode_alert(alert, 1))
    assert obj["sighting"] == {"gateway_id": sid.gateway_id, "spool_id": sid.spool_id,
                               "seq": sid.seq}
    no_cause = Alert(alert_id=subject_alert_id("gateway_offline", sid.gateway_id, at),
                     kind="gateway_offline", at=at, gateway_id=sid.gateway_id)
    assert validate("alert", alert_json(no_cause, 1))["sighting"] is None
