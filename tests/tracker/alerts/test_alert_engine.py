"""The alert engine (tracker/alerts/engine.py) against a real SQLite storage: what a stolen hit
carries, one alert id per cause however often it is delivered, repeated hits folded into one
open alert, instances that agree through storage, and every other alert kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pak.timefmt import format_time, to_millis
from tests.support.wait import eventually
from tests.tracker.alerts.alert_fixtures import (
    STOLEN,
    T0,
    Published,
    at,
    engine,
    make_storage,
    sighting,
    watch,
)
from tracker.alerts.engine import AlertEngine
from tracker.alerts.lifecycle import AlertTransitionError, can_move
from tracker.storage import Storage, Vehicle
from tracker.usecases.alerts import move_alert


@pytest.fixture
def st(tmp_path: Path) -> Iterator[Storage]:
    s = make_storage(tmp_path)
    yield s
    s.close()


@pytest.fixture
def engines() -> Iterator[list[AlertEngine]]:
    started: list[AlertEngine] = []
    yield started
    for e in started:
        e.stop()


def run(e: AlertEngine, st: Storage, *ss: Any, received: float | None = None) -> list[Any]:
    """One message through the hook, then stored with its alerts as the pipeline does."""
    got = e.on_sightings(list(ss), at(received if received is not None else 0))
    st.write_batch(list(ss), alerts=got)
    return got


# --- stolen_hit -----------------------------------------------------------------------------

AID = f"stolen_hit:{STOLEN}:HZ-2026-0415"


def enriched(pub: Published, n: int = 1) -> list[dict[str, Any]]:
    """The enriched updates published, once the worker has published ``n`` of them."""
    def got() -> list[dict[str, Any]]:
        return [o for _, o in list(pub.items) if o["detail"]["enriched"]]
    eventually(lambda: len(got()) >= n, 10, f"{n} enriched updates")
    return got()


def test_stolen_hit_is_published_from_memory_then_enriched(
        st: Storage, engines: list[AlertEngine]) -> None:
    watch(st)
    # earlier passes of the tag, already stored (another instance's share, say)
    st.write_batch([sighting(1, "R2", -900, -890, gw="gw-2", spool="sp-9"),
                    sighting(2, "R3", -300, -295, gw="gw-3", spool="sp-9")])
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    s = sighting(7, "R1", 0, 4, antennas=(1, 3))
    got = e.on_sightings([s], at(4.2))
    assert [a.alert_id for a in got] == [AID]
    (topic, obj), = pub.items  # at once: what memory holds, nothing from storage yet
    assert topic == "pak/v1/alerts/stolen_hit"
    d = obj["detail"]
    assert obj["tag_id"] == STOLEN and obj["reader_id"] == "R1" and obj["status"] == "new"
    assert d["case"] == "HZ-2026-0415" and d["cases"][0]["reporter"] == "owner"
    assert d["enriched"] is False and d["vehicle"] is None and d["recent_passes"] == []
    assert d["reader"] == {"reader_id": "R1", "name": "Wulin Sq. north", "latitude": 30.2741,
                           "longitude": 120.1551}
    # heard first on antenna 1 (facing east), last on 3 (west): came from the east, going west
    assert d["seen"]["direction"] == {"from": "E", "towards": "W", "heading_deg": 270.0}
    assert d["delay_s"] == pytest.approx(0.2)
    st.write_batch([s], alerts=got)  # the pipeline stores the alert with its batch
    (up,) = enriched(pub)
    assert up["alert_id"] == AID and up["rev"] > obj["rev"] and up["status"] is None
    d = up["detail"]
    # the vehicle that carried the tag at that time, not its previous one
    assert d["vehicle"] == {"vehicle_id": "V-1", "plate": "ZJ-A1234", "kind": "e-bike",
                            "colour": "red"}
    assert [p["reader_id"] for p in d["recent_passes"]] == ["R3", "R2"]
    assert d["recent_passes"][0]["first_seen"] == format_time(at(-300))
    assert d["came_from"] == "R3"
    eventually(lambda: st.alerts()[0].detail["enriched"], 10, "the enrichment stored")
    (stored,) = st.alerts()
    assert stored.detail["vehicle"]["plate"] == "ZJ-A1234" and stored.status == "new"


def test_prediction_comes_from_the_learned_model(st: Storage,
                                                 engines: list[AlertEngine]) -> None:
    # ten trips R2 -> R1 -> R3 stored: after R1 (coming from R2) the next is R3, ~60 s later
    rows = []
    for i in range(10):
        base = -86_400 + i * 3600
        rows += [sighting(100 + 3 * i, "R2", base, base + 5, tag=f"AA{i:04d}"),
                 sighting(101 + 3 * i, "R1", base + 600, base + 605, tag=f"AA{i:04d}"),
                 sighting(102 + 3 * i, "R3", base + 665, base + 670, tag=f"AA{i:04d}")]
    st.write_batch(rows)
    watch(st)
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    assert e.movement.ready.wait(10)
    # learned in a child process (the tracker's own interpreter stays free for ingest)
    assert e.movement._in_child() and e.movement.learned_from == 30
    st.write_batch([sighting(1, "R2", -700, -695)])
    run(e, st, sighting(2, "R1", 0, 5))
    (obj,) = enriched(pub)
    nxt = obj["detail"]["predicted_next"]
    assert nxt[0]["reader_id"] == "R3" and nxt[0]["probability"] == 1.0
    assert nxt[0]["name"] == "Wulin Sq. south"
    eta = (nxt[0]["expected_at"], nxt[0]["earliest"], nxt[0]["latest"])
    assert all(x is not None for x in eta)
    from pak.timefmt import parse_time

    expected = parse_time(nxt[0]["expected_at"]) - at(5)
    assert timedelta(seconds=45) < expected < timedelta(seconds=80)


def test_a_redelivered_sighting_makes_no_second_alert(st: Storage,
                                                      engines: list[AlertEngine]) -> None:
    watch(st)
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    opened = sighting(7, "R1", 0, 0, state="open", antennas=(1,))
    first = run(e, st, opened)
    again = run(e, st, opened)  # MQTT redelivery of the same message
    closed = run(e, st, sighting(7, "R1", 0, 6, antennas=(1, 3)))  # its closed form
    closed_again = run(e, st, sighting(7, "R1", 0, 6, antennas=(1, 3)))
    assert [a.alert_id for a in first] == [AID]
    assert again == [] and closed_again == []
    assert [a.alert_id for a in closed] == [AID]
    eventually(lambda: list(pub.items)[-1][1]["detail"]["enriched"]
               and list(pub.items)[-1][1]["detail"]["seen"]["direction"] is not None, 10,
               "the closed form's enrichment published last")
    # raised, then updated with the direction, enriched after: one id, revs growing in the
    # order they were published (the open form's enrichment is skipped once the closed form
    # is the alert's latest in storage)
    hot = [o for _, o in pub.items if not o["detail"]["enriched"]]
    assert [(o["alert_id"], o["status"], o["detail"]["update"]) for o in hot] == [
        (AID, "new", False), (AID, None, True)]
    assert hot[1]["detail"]["seen"]["direction"]["towards"] == "W"
    revs = [o["rev"] for _, o in pub.items]
    assert revs == sorted(set(revs))
    assert pub.items[-1][1]["detail"]["enriched"]
    stored = st.alerts()
    assert [a.alert_id for a in stored] == [AID]
    assert len(stored[0].sightings) == 1


def test_instances_derive_the_same_id_without_storage(
        st: Storage, engines: list[AlertEngine]) -> None:
    """A redelivery to another instance, or the next pass landing there: the id comes from
    the watchlist entry, so both instances name the one alert storage holds."""
    watch(st)
    a_pub, b_pub = Published(), Published()
    a, b = engine(st, a_pub), engine(st, b_pub)
    engines += [a, b]
    run(a, st, sighting(7, "R1", 0, 3))
    assert [x.alert_id for x in run(b, st, sighting(7, "R1", 0, 3))] == [AID]
    # the next pass, ten minutes later, lands on the other instance: same alert, moved on
    got = run(b, st, sighting(8, "R2", 600, 604, gw="gw-2", spool="sp-2"))
    assert [x.alert_id for x in got] == [AID]
    assert [o for _, o in b_pub.items if not o["detail"]["enriched"]][-1]["reader_id"] == "R2"
    (stored,) = st.alerts()
    assert stored.reader_id == "R2" and stored.at == at(0) and stored.last_at == at(604)
    assert [x.seq for x in stored.sightings] == [7, 8]
    # b's enrichment tells the alert's real first hit, learned from storage
    def latest() -> list[dict[str, Any]]:
        return [o for _, o in list(b_pub.items)
                if o["detail"]["enriched"] and o["reader_id"] == "R2"]
    eventually(latest, 10, "b's enrichment of the pass at R2")
    assert latest()[0]["detail"]["first_at"] == format_time(at(0))


def test_an_update_never_moves_the_status(st: Storage, engines: list[AlertEngine]) -> None:
    watch(st)
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    run(e, st, sighting(7, "R1", 0, 3))
    enriched(pub)
    move_alert(st, AID, "acknowledged", actor="desk 1", at=at(10))
    run(e, st, sighting(8, "R2", 600, 604))
    enriched(pub, 2)
    assert [o["status"] for _, o in pub.items] == ["new", None, None, None]
    (stored,) = st.alerts()
    assert stored.status == "acknowledged" and stored.reader_id == "R2"


def test_closed_alert_is_not_reopened_but_a_new_pass_raises_anew(
        st: Storage, engines: list[AlertEngine]) -> None:
    watch(st)
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    run(e, st, sighting(7, "R1", 0, 3))
    move_alert(st, AID, "closed", actor="officer 0415", at=at(100), outcome="recovered")
    fresh = engine(st, Published())  # a restarted instance: what it knows comes from storage
    engines.append(fresh)
    assert run(fresh, st, sighting(7, "R1", 0, 3)) == []  # a late redelivery: stays closed
    got = run(fresh, st, sighting(9, "R2", 7200, 7205))
    again = f"{AID}:{to_millis(at(7200))}"
    assert [x.alert_id for x in got] == [again]
    assert {a.alert_id: a.status for a in st.alerts()} == {AID: "closed", again: "new"}


def test_watchlist_announcements_change_the_check_at_once(st: Storage,
                                                          engines: list[AlertEngine]) -> None:
    pub = Published()
    e = engine(st, pub)
    engines.append(e)
    assert run(e, st, sighting(1, "R1", 0, 1)) == []
    e.on_watchlist({"v": 1, "op": "add", "tag_id": STOLEN, "at": format_time(at(5)),
                    "case": "HZ-9"}, at(5))
    assert len(run(e, st, sighting(2, "R1", 10, 11))) == 1
    e.on_watchlist({"v": 1, "op": "remove", "tag_id": STOLEN, "at": format_time(at(20)),
                    "reason": "recovered"}, at(20))
    assert run(e, st, sighting(3, "R1", 30, 31)) == []


def test_lifecycle_steps_forward_only(st: Storage, engines: list[AlertEngine]) -> None:
    watch(st)
    e = engine(st, Published())
    engines.append(e)
    run(e, st, sighting(7, "R1", 0, 3))
    aid = AID
    move_alert(st, aid, "acknowledged", actor="desk 1", at=at(10))
    move_alert(st, aid, "dispatched", actor="desk 1", at=at(20), unit="car 12")
    with pytest.raises(AlertTransitionError):
        move_alert(st, aid, "acknowledged", actor="desk 2", at=at(30))
    done = move_alert(st, aid, "closed", actor="car 12", at=at(900), outcome="recovered")
    assert [(h.from_status, h.to_status, h.actor) for h in done.history] == [
        ("new", "acknowledged", "desk 1"), ("acknowledged", "dispatched", "desk 1"),
        ("dispatched", "closed", "car 12")]
    assert can_move("new", "dispatched") and not can_move("closed", "new")


# --- clone_suspect ------------------------------------------------------------------------------

def test_clone_across_two_instances_from_storage(st: Storage,
                                                 engines: list[AlertEngine]) -> None:
    a_pub, b_pub = Published(), Published()
    a, b = engine(st, a_pub), engine(st, b_pub)
    engines += [a, b]
    tag = "E200AAAA0001"
    # R1 and R2 are 5.56 km apart: 20 s between the passes (+5 s slack) is 800 km/h
    run(a, st, sighting(1, "R1", 0, 5, tag=tag))
    run(b, st, sighting(2, "R2", 25, 30, tag=tag, gw="gw-2", spool="sp-2"))
    # each instance checks what it received against storage (both passes are there)
    found = a.clones.check(now_mono=1e12) + b.clones.check(now_mono=1e12)
    assert {x.alert_id for x in found} == {"clone_suspect:gw-2:sp-2:2"}
    (stored,) = st.alerts(kind="clone_suspect")
    d = stored.detail
    assert d["reason"] == "too_fast" and d["gap_s"] == 20.0
    assert d["speed_kmh"] == pytest.approx(d["distance_m"] / 25 * 3.6, abs=0.1)
    assert d["distance_m"] == pytest.approx(5560, abs=5)
    assert [p["reader_id"] for p in d["passes"]] == ["R1", "R2"]
    assert len(a_pub.ids("clone_suspect") + b_pub.ids("clone_suspect")) >= 1


def test_neighbouring_readers_and_plausible_hops_are_not_clones(
        st: Storage, engines: list[AlertEngine]) -> None:
    e = engine(st, Published())
    engines.append(e)
    tag = "E200AAAA0002"
    run(e, st, sighting(1, "R1", 0, 5, tag=tag), sighting(2, "R3", 3, 8, tag=tag))  # 111 m
    run(e, st, sighting(3, "R2", 600, 605, tag=tag))  # 5.6 km in 10 min: 34 km/h
    assert e.clones.check(now_mono=1e12) == []


def test_simultaneous_passes_are_clones(st: Storage, engines: list[AlertEngine]) -> None:
    e = engine(st, Published())
    engines.append(e)
    tag = "E200AAAA0003"
    run(e, st, sighting(1, "R1", 0, 60, tag=tag), sighting(2, "R2", 20, 40, tag=tag))
    (found,) = e.clones.check(now_mono=1e12)
    assert found.detail["reason"] == "simultaneous"


# --- tamper, unaccompanied ----------------------------------------------------------------------

def test_tamper_threshold_and_debounce(st: Storage, engines: list[AlertEngine]) -> None:
    pub = Published()
    e = engine(st, pub, tamper_threshold=2, tamper_window_s=600, tamper_cooldown_s=3600)
    engines.append(e)
    tag = "E200BBBB0001"

    def flagged(seq: int, reader: str, first: float, last: float, **kw: Any) -> list[str]:
        # the hot path only counts (it never reads storage for these kinds): no alert there
        assert run(e, st, sighting(seq, reader, first, last, tag=tag, flags=("tamper",),
                                   **kw)) == []
        return [a.alert_id for a in e.flags.raise_fired()]  # the timer's step

    # open and closed of one sighting count once
    assert flagged(1, "R1", 0, 0, state="open") == []
    assert flagged(1, "R1", 0, 5) == []
    assert flagged(2, "R2", 900, 905) == []  # 15 min after the first: outside the window
    assert flagged(3, "R1", 1000, 1005) == ["tamper:gw-1:sp-1:3"]
    # cooling down: more flags do not raise again
    assert flagged(4, "R1", 1100, 1105) == []
    assert pub.ids() == ["tamper:gw-1:sp-1:3"]
    assert [a.alert_id for a in st.alerts(kind="tamper")] == ["tamper:gw-1:sp-1:3"]


def _pair(st: Storage, e: AlertEngine) -> None:
    st.upsert_vehicles([Vehicle("V-7", "ZJ-P777", kind="e-bike", key_tag_id="31000007",
                                unaccompanied_check=True)])
    st.assign_tag("E200CCCC0007", "V-7", at=T0 - timedelta(days=30))
    e.registry.refresh()


def test_unaccompanied_when_the_key_is_not_there(st: Storage,
                                                 engines: list[AlertEngine]) -> None:
    pub = Published()
    e = engine(st, pub, pairing_window_s=30, pairing_lag_s=2)
    engines.append(e)
    _pair(st, e)
    run(e, st, sighting(1, "R1", 0, 4, tag="E200CCCC0007"))
    assert e.pairing.check(at(20)) == []  # its window is not over yet
    (got,) = e.pairing.check(at(40))
    assert got.alert_id == "unaccompanied:gw-1:sp-1:1"
    assert got.detail["vehicle_id"] == "V-7" and got.detail["key_tag_id"] == "31000007"
    assert [a.alert_id for a in st.alerts(kind="unaccompanied")] == [got.alert_id]


def test_accompanied_by_its_key_on_this_or_another_instance(
        st: Storage, engines: list[AlertEngine]) -> None:
    a, b = engine(st, Published(), pairing_window_s=30), engine(st, Published(),
                                                                pairing_window_s=30)
    engines += [a, b]
    _pair(st, a)
    _pair(st, b)
    # key seen by this instance, 10 s after the vehicle
    run(a, st, sighting(1, "R1", 0, 4, tag="E200CCCC0007"),
        sighting(2, "R1", 14, 15, tag="31000007", tag_type=0x31, flags=("key",)))
    assert a.pairing.check(at(60)) == []
    # vehicle on instance a, key on instance b (stored): still accompanied
    run(a, st, sighting(3, "R2", 1000, 1004, tag="E200CCCC0007"))
    run(b, st, sighting(4, "R2", 990, 992, tag="31000007", gw="gw-2", spool="sp-2"))
    assert a.pairing.check(at(1100)) == []
    # the key at another reader does not count
    run(a, st, sighting(5, "R1", 2000, 2004, tag="E200CCCC0007"),
        sighting(6, "R2", 2000, 2004, tag="31000007"))
    assert len(a.pairing.check(at(2100))) == 1


# --- gateways, clocks, readers --------------------------------------------------------------------

def _health(gw: str, gateway_at: Any, backlog_s: float = 0.0) -> dict[str, Any]:
    return {"v": 1, "gateway_id": gw, "at": format_time(gateway_at), "uptime_s": 100,
            "link": {"state": "connected"}, "clock": {"status": "ok"},
            "counters": {"frames_ok": 1, "frames_bad": {}, "reads": 1, "sightings": 1,
                         "dropped": 0, "reconnects": 0},
            "spool": {"spool_id": "sp", "depth": 0, "oldest_age_s": backlog_s}}


def test_gateway_offline_after_grace_then_cleared(st: Storage,
                                                  engines: list[AlertEngine]) -> None:
    pub = Published()
    e = engine(st, pub, offline_grace_s=60, offline_clear_s=30, health_timeout_s=300)
    engines.append(e)
    st.record_gateway("gw-5", state="online", at=at(0))
    st.record_gateway("gw-5", health=_health("gw-5", at(0)), at=at(0))
    st.record_gateway("gw-5", state="offline", at=at(10))  # its will
    assert e.monitors.check_gateways(at(40)) == []  # a reboot would be back by now
    (raised,) = e.monitors.check_gateways(at(80))
    assert raised.alert_id == "gateway_offline:gw-5:" + str(1795845610000)
    assert raised.detail["cause"] == "will"
    assert e.monitors.check_gateways(at(90)) == []  # no flood while it stays down
    st.record_gateway("gw-5", state="online", at=at(100))
    st.record_gateway("gw-5", health=_health("gw-5", at(100)), at=at(100))
    assert e.monitors.check_gateways(at(110)) == []  # back, but not for long enough
    (cleared,) = e.monitors.check_gateways(at(140))
    assert cleared.status == "closed"
    stored = st.get_alert(raised.alert_id)
    assert stored is not None and stored.status == "closed"
    assert stored.history[-1].actor == "pak-tracker"
    assert pub.ids() == [raised.alert_id, raised.alert_id]


def test_gateway_offline_when_health_stops(st: Storage, engines: list[AlertEngine]) -> None:
    e = engine(st, Published(), health_timeout_s=300)
    engines.append(e)
    st.record_gateway("gw-6", state="online", at=at(0))
    st.record_gateway("gw-6", health=_health("gw-6", at(0)), at=at(0))
    assert e.monitors.check_gateways(at(200)) == []
    (raised,) = e.monitors.check_gateways(at(301))
    assert raised.detail["cause"] == "no_health"


def test_clock_skew_beyond_backlog(st: Storage, engines: list[AlertEngine]) -> None:
    e = engine(st, Published(), skew_tolerance_s=120, skew_hold_s=60, skew_window_s=600)
    engines.append(e)
    # gw-7's clock runs 2 h behind; gw-8 drains a 2 h backlog (its health says so)
    got = []
    for t in (0, 30, 60, 90, 120):
        st.record_gateway("gw-7", health=_health("gw-7", at(t - 7200)), at=at(t))
        st.record_gateway("gw-8", health=_health("gw-8", at(t - 7200), backlog_s=7300),
                          at=at(t))
        got.append([(a.kind, a.gateway_id) for a in e.monitors.check_gateways(at(t))])
    # raised once, after holding for 60 s; never for the gateway whose backlog explains it
    assert got == [[], [], [("clock_skew", "gw-7")], [], []]
    (stored,) = st.alerts(kind="clock_skew")
    assert stored.detail["skew_s"] == pytest.approx(-7200)
    assert stored.detail["ahead"] is False


def test_clock_skew_ahead_seen_in_sightings(st: Storage, engines: list[AlertEngine]) -> None:
    e = engine(st, Published(), skew_tolerance_s=60, skew_hold_s=0)
    engines.append(e)
    # received at t, stamped t + 200 s: the gateway's clock is ahead
    e.on_sightings([sighting(1, "R1", 200, 200, gw="gw-9")], at(0))
    (got,) = e.monitors.check_gateways(at(1))
    assert got.kind == "clock_skew" and got.detail["ahead"] is True


def test_reader_silent_against_its_usual_hour(st: Storage,
                                              engines: list[AlertEngine]) -> None:
    # the previous day, 06:00-07:00: R1 saw 240 sightings (60 per 15 min), R2 8 (quiet)
    rows = [sighting(i, "R1", -86_400 + 15 * i, tag=f"BB{i:04d}") for i in range(240)]
    rows += [sighting(1000 + i, "R2", -86_400 + 400 * i, tag=f"CC{i:04d}") for i in range(8)]
    # today R1 sees 3 sightings in the window, R2 none
    rows += [sighting(2000 + i, "R1", 100 + 60 * i, tag=f"DD{i:04d}") for i in range(3)]
    st.write_batch(rows)
    e = engine(st, Published(), silent_window_s=900, silent_check_s=60, silent_hold_s=120,
               silent_baseline_days=1, silent_min_usual=20, silent_ratio=0.1)
    engines.append(e)
    assert e.monitors.check_readers(at(900 + 10)) == []  # silent, but not yet for long enough
    assert e.monitors.check_readers(at(960 + 10)) == []
    (got,) = e.monitors.check_readers(at(1020 + 10))
    assert got.kind == "reader_silent" and got.reader_id == "R1"
    assert got.detail["usual"] == 60.0 and got.detail["count"] <= 3
    assert got.detail["reader"]["name"] == "Wulin Sq. north"


def test_hot_path_and_timer_share_state_safely(st: Storage,
                                               engines: list[AlertEngine]) -> None:
    """The MQTT thread adds clock samples and flag counts while the timer reads and prunes
    them: neither may ever see a container change under its feet."""
    import threading

    e = engine(st, Published(), tamper_threshold=1000)
    engines.append(e)
    stop = threading.Event()
    errors: list[BaseException] = []

    def feed() -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                e.on_sightings([sighting(i, "R1", i, i + 1, gw=f"gw-{i % 50}",
                                         tag=f"AB{i % 3000:04d}", flags=("tamper",))], at(i))
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    t = threading.Thread(target=feed)
    t.start()
    try:
        for _ in range(200):
            e.monitors.clocks.check(at(0))
            e.flags.prune()
    finally:
        stop.set()
        t.join()
    assert errors == []


def test_readers_without_a_position_are_not_judged(st: Storage,
                                                   engines: list[AlertEngine]) -> None:
    e = engine(st, Published())
    engines.append(e)
    tag = "E200AAAA0004"
    # R9 is not in the register: no distance, so no verdict (and no storage read for it)
    run(e, st, sighting(1, "R1", 0, 5, tag=tag), sighting(2, "R9", 6, 8, tag=tag))
    run(e, st, sighting(3, "R9", 10, 12, tag="E200AAAA0005"))
    assert e.clones.check(now_mono=1e12) == []


def test_clone_found_by_the_earlier_sighting_pins_the_later(
        st: Storage, engines: list[AlertEngine]) -> None:
    """A backlog: the earlier pass arrives after the later one is stored. The alert still
    goes on the later sighting, as the instance that received that one would have made it."""
    e = engine(st, Published())
    engines.append(e)
    tag = "E200AAAA0006"
    st.write_batch([sighting(2, "R2", 25, 30, tag=tag, gw="gw-2", spool="sp-2")])
    run(e, st, sighting(1, "R1", 0, 5, tag=tag))
    (found,) = e.clones.check(now_mono=1e12)
    assert found.alert_id == "clone_suspect:gw-2:sp-2:2"
    assert found.reader_id == "R2"
    assert [p["reader_id"] for p in found.detail["passes"]] == ["R1", "R2"]
