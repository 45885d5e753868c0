"""The presence codec (pak/wire/presence.py) against its JSON Schema, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pak.errors import WireError
from pak.wire.presence import MAX_EPOCH, Presence, encode_presence, parse_presence
from tests.pak.test_wire import ids, times
from tests.support.wire_schema import validate

TOPIC = "pak/v1/centre"
# a day before the run, whole milliseconds: never a fixed calendar day
AT = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=125000)


@given(ids, st.integers(0, MAX_EPOCH), times)
def test_presence_both_ways(issuer: str, epoch: int, at: datetime) -> None:
    p = Presence(TOPIC, issuer, epoch, at.replace(microsecond=at.microsecond // 1000 * 1000))
    payload = encode_presence(p)
    obj = validate("presence", payload)
    assert obj["rev"] == epoch and obj["topic"] == TOPIC and obj["issuer"] == issuer
    assert parse_presence(payload, TOPIC) == p


GOOD = {"v": 1, "topic": TOPIC, "issuer": "pak-tracker", "rev": 5,
        "at": AT.strftime("%Y-%m-%dT%H:%M:%S.125Z")}


@pytest.mark.parametrize("change", [
    {"topic": "other/v1/centre"},  # replayed on another root
    {"rev": True}, {"rev": -1}, {"rev": 1.5}, {"rev": MAX_EPOCH + 1},
    {"issuer": "a/b"}, {"at": "yesterday"}, {"v": 2}, {"extra": 1},
])
def test_presence_refused(change: dict[str, object]) -> None:
    obj = {**GOOD, **change}
    with pytest.raises(WireError):
        parse_presence(orjson.dumps(obj), TOPIC)


def test_good_example_is_accepted_by_both() -> None:
    validate("presence", GOOD)
    p = parse_presence(orjson.dumps(GOOD), TOPIC)
    assert p.epoch == 5 and p.at == AT
