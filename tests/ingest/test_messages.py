"""Every kind of message through Ingest.handle (no broker): good sightings are batched, bad
payloads become dead letters with their reason and raw bytes, state and health are recorded,
and nothing a sender can put in a payload makes the handler raise or drop a message.

Payloads are written out by hand (not produced by our own encoder), following
pak/schemas/sightings.json."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.consumer import Ack
from ingest.pipeline import DEAD_LETTER_KEEP, Ingest, IngestOptions
from pak.types import Sighting
from tests.support.memstore import MemoryStorage
from tests.support.metrics import sample
from tests.support.wait import eventually
from tracker.storage.base import Alert

NOW = datetime(2026, 11, 28, 6, 15, 0, 125000, tzinfo=UTC)
ROOT = "pak/v1"

GOOD = (b'{"v":1,"gateway_id":"gw-7","spool_id":"sp-x","sent_at":"2026-11-28T06:15:00.000Z",'
        b'"sightings":[{"seq":41,"state":"closed","tag_id":"E28011700000020F1A2B3C4D",'
        b'"tag_kind":"epc","tag_type":null,"reader_id":"rd-7","antenna":2,"antennas":[2,1],'
        b'"first_seen":"2026-11-28T06:14:50.000Z","last_seen":"2026-11-28T06:14:52.500Z",'
        b'"reads":9,"rssi_max_dbm":-52.5,"rssi_max_raw":180,"flags":["low_battery"],'
        b'"reader_time":null}]}')


def good(**change: Any) -> bytes:
    """GOOD with envelope keys changed (``...`` deletes one); ``sighting=`` changes the
    sighting object the same way."""
    obj = orjson.loads(GOOD)
    for k, v in change.pop("sighting", {}).items():
        if v is ...:
            del obj["sightings"][0][k]
        else:
            obj["sightings"][0][k] = v
    for k, v in change.items():
        if v is ...:
            del obj[k]
        else:
            obj[k] = v
    return orjson.dumps(obj)


@pytest.fixture
def ingest() -> Iterator[tuple[Ingest, MemoryStorage]]:
    store = MemoryStorage()
    ing = Ingest(store.as_storage(), "mqtt://127.0.0.1:1", IngestOptions(batch_max_age=0.02),
                 clock=lambda: NOW)
    ing.consumer.ack = lambda acks: 0  # type: ignore[method-assign]  # no broker here
    ing.batcher.start()
    yield ing, store
    ing.batcher.stop(2.0)


def drain(ing: Ingest) -> None:
    eventually(lambda: not ing.batcher.pending, 5, "the batcher drained",
               detail=lambda: f"{ing.batcher.pending} pending")


def test_a_good_message_is_stored_as_written() -> None:
    store = MemoryStorage()
    ing = Ingest(store.as_storage(), "mqtt://127.0.0.1:1", IngestOptions(batch_max_age=0.02),
                 clock=lambda: NOW)
    ing.consumer.ack = lambda acks: 0  # type: ignore[method-assign]
    ing.batcher.start()
    ing.handle(f"{ROOT}/gw/gw-7/sightings", GOOD, Ack(1, 1, 1))
    assert ing.batcher.stop(2.0)
    (row,) = store.rows.values()
    assert row == Sighting(
        gateway_id="gw-7", spool_id="sp-x", seq=41, state="closed",
        tag_id="E28011700000020F1A2B3C4D", tag_kind="epc", reader_id="rd-7",
        first_seen=datetime(2026, 11, 28, 6, 14, 50, tzinfo=UTC),
        last_seen=datetime(2026, 11, 28, 6, 14, 52, 500000, tzinfo=UTC), reads=9,
        tag_type=None, antenna=2, antennas=(2, 1), rssi_max_dbm=-52.5, rssi_max_raw=180,
        flags=("low_battery",), reader_time=None)


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not json", b"this is not json", "not_json"),
    ("empty", b"", "not_json"),
    ("binary", b"\xff\xfe\x00\x01garbage", "not_json"),
    ("truncated", GOOD[:-7], "not_json"),
    ("too deep", b"[" * 3000 + b"]" * 3000, "not_json"),
    ("an array", b"[1,2,3]", "not_object"),
    ("wrong version", good(v=2), "bad_version"),
    ("no version", good(v=...), "bad_version"),
    ("no spool id", good(spool_id=...), "bad_envelope"),
    ("an extra envelope key", good(extra=1), "bad_envelope"),
    ("a missing field", good(sighting={"reads": ...}), "bad_sighting"),
    ("nested where a sighting belongs", good(sightings=[[[[[[{"seq": 1}]]]]]]), "bad_sighting"),
    ("no sightings", good(sightings=[]), "bad_field"),
    ("negative seq", good(sighting={"seq": -1}), "bad_field"),
    ("lower-case tag", good(sighting={"tag_id": "e2801170"}), "bad_field"),
    ("a string for reads", good(sighting={"reads": "9"}), "bad_field"),
    ("an array for a tag kind", good(sighting={"tag_kind": []}), "bad_field"),
    ("a nested flag", good(sighting={"flags": [["tamper"]]}), "bad_field"),
    ("an object for a flag", good(sighting={"flags": [{}]}), "bad_field"),
    ("someone else's gateway id", good(gateway_id="gw-8"), "gateway_mismatch"),
    ("a time without millis", good(sent_at="2026-11-28T06:15:00Z"), "bad_time"),
    ("last before first", good(sighting={"last_seen": "2026-11-28T06:14:49.000Z"}),
     "bad_field"),
    # a day past the real clock: in the future of the injected NOW here, and of the real clock
    # that a tracker started by the MQTT tests judges it by, whatever day the suite runs on
    ("a future time", good(sighting={"last_seen": (datetime.now(UTC) + timedelta(days=1))
                                            .strftime("%Y-%m-%dT%H:%M:%S.000Z")}),
     "future_time"),
    ("too large", good(spool_id="sp-x", sighting={"reader_id": "rd-7"}) + b" " * (1 << 20),
     "too_large"),
]


@pytest.mark.parametrize(("payload", "reason"), [(p, r) for _, p, r in HOSTILE],
                         ids=[n for n, _, _ in HOSTILE])
def test_a_bad_sightings_payload_is_a_dead_letter_with_its_reason(
        ingest: tuple[Ingest, MemoryStorage], payload: bytes, reason: str) -> None:
    ing, store = ingest
    ing.handle(f"{ROOT}/gw/gw-7/sightings", payload, Ack(5, 1, 1))
    drain(ing)
    (dead,) = store.dead
    assert dead.reason == reason
    assert dead.topic == f"{ROOT}/gw/gw-7/sightings"
    assert dead.received_at == NOW
    if len(payload) <= DEAD_LETTER_KEEP:
        assert dead.payload == payload
    else:
        assert dead.payload == payload[:DEAD_LETTER_KEEP] and str(len(payload)) in dead.detail
    assert store.rows == {}
    assert sample(ing.metrics.registry, "pak_ingest_dead_letters_total", reason=reason) == 1


def test_an_old_backlog_is_accepted() -> None:
    store = MemoryStorage()
    ing = Ingest(store.as_storage(), "mqtt://127.0.0.1:1", IngestOptions(batch_max_age=0.02),
                 clock=lambda: NOW + timedelta(hours=9))
    ing.consumer.ack = lambda acks: 0  # type: ignore[method-assign]
    ing.batcher.start()
    ing.handle(f"{ROOT}/gw/gw-7/sightings", GOOD, Ack(1, 1, 1))
    assert ing.batcher.stop(2.0)
    assert len(store.rows) == 1 and store.dead == []


def test_state_health_watchlist_and_strangers(ingest: tuple[Ingest, MemoryStorage]) -> None:
    ing, store = ingest
    seen: list[dict[str, Any]] = []

    class Watch:
        def on_watchlist(self, change: dict[str, Any], received_at: datetime) -> None:
            seen.append(change)

    ing._watchlist_hooks.append(Watch())
    health = (b'{"v":1,"gateway_id":"gw-7","at":"2026-11-28T06:10:00.000Z","uptime_s":12,'
              b'"link":{"state":"connected"},"clock":{"status":"ok"},"counters":{"frames_ok":1,'
              b'"frames_bad":{},"reads":1,"sightings":1,"dropped":0,"reconnects":0},'
              b'"spool":{"spool_id":"sp-x","depth":0,"oldest_age_s":null}}')
    retained_state = b'{"v":1,"state":"offline","at":"2026-11-28T05:00:00.000Z"}'
    ing.handle(f"{ROOT}/gw/gw-7/state", retained_state, Ack(1, 1, 1), True)
    ing.handle(f"{ROOT}/gw/gw-7/health", health, Ack(2, 1, 1))
    ing.handle(f"{ROOT}/watchlist",
               b'{"v":1,"op":"add","tag_id":"E2001234","at":"2026-11-28T06:00:00.000Z"}',
               Ack(3, 1, 1))
    ing.handle(f"{ROOT}/gw/gw-8/state", b'{"v":1,"state":"sleeping","at":"x"}', Ack(4, 1, 1))
    ing.handle(f"{ROOT}/gw/gw-8/health", health, Ack(5, 1, 1))  # gw-7's health on gw-8
    ing.handle(f"{ROOT}/watchlist", b'{"v":1,"op":"add","tag_id":"nothex","at":"x"}', None)
    ing.handle(f"{ROOT}/somewhere/else", b"{}", Ack(6, 1, 1))
    drain(ing)
    g = store.gateways["gw-7"]
    # a retained state is a replay: its own time counts; live health is dated on receipt
    assert g["state"] == "offline" and g["state_at"] == datetime(2026, 11, 28, 5, tzinfo=UTC)
    assert g["health"]["uptime_s"] == 12 and g["health_at"] == NOW
    assert "gw-8" not in store.gateways
    assert seen == [{"v": 1, "op": "add", "tag_id": "E2001234",
                     "at": "2026-11-28T06:00:00.000Z"}]
    assert sorted(d.reason for d in store.dead) == [
        "bad_state", "bad_watchlist", "gateway_mismatch", "unknown_topic"]


def test_hooks_see_sightings_before_the_batch_and_their_alerts_are_stored() -> None:
    store = MemoryStorage()
    store.down.set()  # nothing can commit: the hook must still have run
    calls: list[list[Sighting]] = []

    class Hit:
        def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
            calls.append(sightings)
            s = sightings[0]
            return [Alert(f"stolen_hit:{s.gateway_id}:{s.spool_id}:{s.seq}", "stolen_hit",
                          received_at, tag_id=s.tag_id, sighting=s.id)]

    class Broken:
        def on_sightings(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
            raise RuntimeError("hook bug")

    ing = Ingest(store.as_storage(), "mqtt://127.0.0.1:1", IngestOptions(batch_max_age=0.02),
                 hooks=[Broken(), Hit()], clock=lambda: NOW)
    ing.consumer.ack = lambda acks: 0  # type: ignore[method-assign]
    ing.batcher.start()
    ing.handle(f"{ROOT}/gw/gw-7/sightings", GOOD, Ack(1, 1, 1))
    ing.handle(f"{ROOT}/gw/gw-7/sightings", GOOD, Ack(2, 1, 1))  # redelivered
    assert len(calls) == 2 and calls[0][0].seq == 41
    assert store.rows == {} and store.alerts == {}
    store.down.clear()
    assert ing.batcher.stop(2.0)
    assert list(store.alerts) == ["stolen_hit:gw-7:sp-x:41"]
    assert len(store.rows) == 1
    assert sample(ing.metrics.registry, "pak_ingest_hook_errors_total") == 2


@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                              | st.text(max_size=8),
                              lambda c: st.lists(c, max_size=4)
                              | st.dictionaries(st.text(max_size=8), c, max_size=4),
                              max_leaves=20).map(orjson.dumps)),
       st.sampled_from(["sightings", "state", "health"]))
def test_any_payload_gives_exactly_one_item_and_never_raises(payload: bytes, leaf: str) -> None:
    store = MemoryStorage()
    ing = Ingest(store.as_storage(), "mqtt://127.0.0.1:1", clock=lambda: NOW)
    ing.handle(f"{ROOT}/gw/gw-7/{leaf}", payload, Ack(1, 1, 1))
    assert ing.batcher.pending == 1
