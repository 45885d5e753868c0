"""The watchlist cache (tracker/watchlist.py) and ``pak watchlist`` (tracker/watchlist_cli.py):
announcements, the periodic reload that heals a missed one, the CSV import, the audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pak.timefmt import format_time
from tests.support.wait import eventually
from tests.support.wire_schema import validate
from tests.tracker.alerts.alert_fixtures import T0, at
from tracker.storage import Storage, open_storage
from tracker.usecases.audit import os_user
from tracker.watchlist import (
    WatchlistCache,
    WatchlistError,
    normalise_tag,
)
from tracker.watchlist_cli import main as watchlist_main


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Storage]]:
    url = f"sqlite://{tmp_path}/wl.db"
    s = open_storage(url)
    s.migrate()
    yield url, s
    s.close()


def add(s: Storage, tag: str, case: str, t: float = 0) -> None:
    s.watchlist_add(tag, case_no=case, reporter="r", reported_at=at(t), note="", at=at(t))


def change(op: str, tag: str, t: float = 0, **kw: Any) -> dict[str, Any]:
    return {"v": 1, "op": op, "tag_id": tag, "at": format_time(at(t)), **kw}


# --- tag ids and payloads --------------------------------------------------------------------

def test_normalise_tag() -> None:
    assert normalise_tag(" e2:00-34 12 ") == "E2003412"
    for bad in ("", "E", "XYZ1", "E2" * 33):
        with pytest.raises(WatchlistError):
            normalise_tag(bad)


@given(st.binary(min_size=1, max_size=32), st.sampled_from(["", " ", ":", "-"]))
def test_normalise_tag_accepts_any_separated_hex(raw: bytes, sep: str) -> None:
    text = sep.join(f"{b:02x}" for b in raw)
    assert normalise_tag(text) == raw.hex().upper()


# --- the cache ---------------------------------------------------------------------------------

def test_cache_loads_active_entries_and_applies_announcements(db: tuple[str, Storage]) -> None:
    _, s = db
    add(s, "AA01", "C1")
    add(s, "AA02", "C2")
    s.watchlist_remove("AA02", at=at(1))
    cache = WatchlistCache(s)
    assert cache.load() == 1
    assert cache.lookup("AA02") is None
    (e,) = cache.lookup("AA01") or ()
    assert e.case_no == "C1"
    cache.apply(change("add", "AA01", 2, case="C9", reporter="x", note="second theft"))
    assert [x.case_no for x in cache.lookup("AA01") or ()] == ["C1", "C9"]
    cache.apply(change("remove", "AA01", 3, case="C1"))
    assert [x.case_no for x in cache.lookup("AA01") or ()] == ["C9"]
    cache.apply(change("remove", "AA01", 4))  # no case: every case of the tag
    assert "AA01" not in cache and len(cache) == 0


def test_reload_heals_a_missed_announcement(db: tuple[str, Storage]) -> None:
    _, s = db
    cache = WatchlistCache(s, reload_s=0.05)
    cache.load()
    cache.start()
    try:
        add(s, "BB01", "C1")  # changed in storage; the announcement never came
        eventually(lambda: "BB01" in cache, 5, "the reload finding BB01")
    finally:
        cache.stop()


class _SlowRead:
    """Storage whose watchlist read returns what it read *before* a change arrived."""

    def __init__(self, s: Storage, during: Any) -> None:
        self._s, self._during = s, during

    def watchlist(self, **kw: Any) -> Any:
        rows = self._s.watchlist(**kw)
        self._during()  # an announcement is applied while the rows travel back
        return rows


def test_a_reload_never_undoes_a_newer_announcement(db: tuple[str, Storage]) -> None:
    _, s = db
    add(s, "CC01", "C1")
    caches: list[WatchlistCache] = []
    # a remove announced while the reload reads (the rows still hold the tag)
    slow: Any = _SlowRead(s, lambda: caches[0].apply(change("remove", "CC01", 5)))
    caches.append(WatchlistCache(slow))
    caches[0].load()
    assert "CC01" not in caches[0]
    # an add announced while the reload reads (the rows do not hold it yet)
    slow = _SlowRead(s, lambda: caches[1].apply(change("add", "CC02", 6, case="C2")))
    caches.append(WatchlistCache(slow))
    caches[1].load()
    assert "CC01" in caches[1] and "CC02" in caches[1]


def test_lookups_during_reloads_never_miss(db: tuple[str, Storage]) -> None:
    """The hot path reads while the reload swaps the dict: a watched tag is always found."""
    _, s = db
    for i in range(200):
        add(s, f"DD{i:04d}", "C")
    cache = WatchlistCache(s)
    cache.load()
    stop = threading.Event()
    misses = []

    def reader() -> None:
        while not stop.is_set():
            for i in range(0, 200, 7):
                if cache.lookup(f"DD{i:04d}") is None:
                    misses.append(i)

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(30):
        cache.load()
    stop.set()
    t.join()
    assert misses == []


# --- pak watchlist -----------------------------------------------------------------------------

def test_cli_add_remove_list_and_audit(db: tuple[str, Storage],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    url, s = db
    assert watchlist_main(["add", "e2:00:34:12", "--db", url, "--case", "HZ-1",
                           "--reporter", "Li Wei", "--note", "red e-bike",
                           "--reported-at", "2026-11-27T22:00:00Z"]) == 0
    (e,) = s.watchlist()
    assert (e.tag_id, e.case_no, e.reporter, e.note) == ("E2003412", "HZ-1", "Li Wei",
                                                         "red e-bike")
    assert e.reported_at == T0 - timedelta(hours=8)
    assert watchlist_main(["list", "--db", url, "--json"]) == 0
    assert '"case_no": "HZ-1"' in capsys.readouterr().out
    assert watchlist_main(["remove", "E2003412", "--db", url, "--status", "withdrawn"]) == 0
    assert s.watchlist() == []
    assert s.watchlist(status=None)[0].status == "withdrawn"
    assert watchlist_main(["remove", "E2003412", "--db", url]) == 1  # nothing active left
    log = s.audit_log()
    assert [a.action for a in log] == ["watchlist_add", "watchlist_list", "watchlist_remove",
                                       "watchlist_remove"]
    assert {a.actor for a in log} == {os_user()}
    assert log[0].params["tag_id"] == "E2003412" and log[2].reason == "withdrawn"


def test_cli_import_is_all_or_nothing(db: tuple[str, Storage], tmp_path: Path) -> None:
    from pak.errors import ConfigError

    url, s = db
    good = tmp_path / "good.csv"
    good.write_text("tag_id,case,reporter,reported_at,note\n"
                    "AABB01,C-1,Wang,2026-11-27,blue\n"
                    "aa bb 02,C-2,,,\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("tag_id,case\nAABB03,C-3\nNOTHEX,C-4\n")
    with pytest.raises(ConfigError, match="line 3"):
        watchlist_main(["import", str(bad), "--db", url])
    assert s.watchlist() == []
    assert watchlist_main(["import", str(good), "--db", url]) == 0
    got = {e.tag_id: e for e in s.watchlist()}
    assert set(got) == {"AABB01", "AABB02"}
    assert got["AABB01"].reporter == "Wang" and got["AABB02"].reporter is None
    assert got["AABB01"].reported_at == T0 - timedelta(hours=30)  # 2026-11-27, midnight UTC
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("AABB05,C-5\n")
    with pytest.raises(ConfigError, match="header"):
        watchlist_main(["import", str(nohead), "--db", url])


@pytest.mark.mosquitto
def test_cli_announces_on_the_broker(db: tuple[str, Storage], mqtt_url: str,
                                     topic_root: str) -> None:
    url, _ = db
    got: list[bytes] = []
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = lambda cl, ud, msg: got.append(bytes(msg.payload))
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    c.connect(host, int(port))
    c.subscribe(f"{topic_root}/watchlist", qos=1)
    c.loop_start()
    try:
        assert subscribed.wait(5)
        assert watchlist_main(["add", "AABB10", "--db", url, "--case", "C-10", "--mqtt",
                               mqtt_url, "--topic-root", topic_root]) == 0
        assert watchlist_main(["remove", "AABB10", "--db", url, "--mqtt", mqtt_url,
                               "--topic-root", topic_root]) == 0
        eventually(lambda: len(got) >= 2, 5, "both announcements")
    finally:
        c.loop_stop()
        c.disconnect()
    add_msg, rm_msg = (validate("watchlist", p) for p in got)
    assert (add_msg["op"], add_msg["tag_id"], add_msg["case"]) == ("add", "AABB10", "C-10")
    assert (rm_msg["op"], rm_msg["reason"]) == ("remove", "recovered")
