"""Signed control messages: keys, sign/verify, rotation, refusals, revisions, key settings."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pak.edge_key import read_edge_key
from pak.errors import ConfigError, WireError
from pak.key_settings import CentreKeySettings, SigningSettings, require_keys
from pak.keys import Signer, Verifier, init_keys, key_id, load_signer
from pak.mqtt import Brokers
from pak.wire.envelope import (
    Refusals,
    Revisions,
    accept_control,
    control,
    parse_envelope,
)
from pak.wire.receipts import encode_receipts, parse_receipts

TOPIC = "pak/v1/gw/gw-1/receipts"


def receipt(gid: str = "gw-1", ranges: list[tuple[int, int]] | None = None) -> bytes:
    return encode_receipts(gid, "sp-1", ranges or [(0, 9)], datetime.now(UTC))


def test_signed_receipt_round_trip_keeps_the_message() -> None:
    s = Signer.generate("tracker")
    body = accept_control(control(receipt(), s, TOPIC), TOPIC, s.verifier())
    r = parse_receipts(body)
    assert (r.gateway_id, r.spool_id, r.closed) == ("gw-1", "sp-1", [(0, 9)])
    env = parse_envelope(control(receipt(), s, TOPIC))
    signed = orjson.loads(env.body)
    assert signed["topic"] == TOPIC and signed["issuer"] == "tracker"
    assert isinstance(signed["rev"], int) and env.kid == key_id(s.public_key)


@pytest.mark.parametrize("forge", ["unsigned", "other_key", "tampered", "bad_base64",
                                   "other_topic"])
def test_forgeries_are_refused(forge: str) -> None:
    centre, thief = Signer.generate("tracker"), Signer.generate("tracker")
    v = centre.verifier()
    payload = control(receipt(), centre, TOPIC)
    reason = {"unsigned": "unsigned", "other_key": "unknown_key", "tampered": "bad_signature",
              "bad_base64": "bad_signature", "other_topic": "wrong_topic"}[forge]
    topic = TOPIC
    if forge == "unsigned":
        payload = receipt(ranges=[(0, 100_000_000)])
    elif forge == "other_key":
        payload = control(receipt(ranges=[(0, 100_000_000)]), thief, TOPIC)
    elif forge == "tampered":
        payload = payload.replace(b"[[0,9]]", b"[[0,99]]")
    elif forge == "bad_base64":
        env = orjson.loads(payload)
        env["sig"] = "not base64!"
        payload = orjson.dumps(env)
    else:  # a receipt genuinely signed for another gateway, replayed onto this one's topic
        payload = control(receipt("gw-2"), centre, "pak/v1/gw/gw-2/receipts")
    with pytest.raises(WireError) as e:
        accept_control(payload, topic, v)
    assert e.value.reason == reason


def test_two_keys_during_a_rotation_and_the_old_one_dropped_after() -> None:
    old, new = Signer.generate("tracker"), Signer.generate("tracker")
    both = Verifier([old.public_key, new.public_key])
    for s in (old, new):
        accept_control(control(receipt(), s, TOPIC), TOPIC, both)
    with pytest.raises(WireError) as e:
        accept_control(control(receipt(), old, TOPIC), TOPIC, new.verifier())
    assert e.value.reason == "unknown_key"
    with pytest.raises(ValueError):
        Verifier([Signer.generate("x").public_key for _ in range(3)])


def test_unsigned_trial_passes_plain_bodies_and_unwraps_envelopes() -> None:
    plain = receipt()
    assert control(plain) is plain
    assert accept_control(plain, TOPIC, None) is plain
    s = Signer.generate("tracker")
    assert parse_receipts(accept_control(control(plain, s, TOPIC), TOPIC, None)).closed


def test_signer_revisions_grow_even_when_the_clock_stands_or_steps_back() -> None:
    t = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=400)]
    s = Signer.generate("tracker", clock=lambda: t[0])
    a, b = s.next_rev(), s.next_rev()
    t[0] -= timedelta(hours=1)
    c = s.next_rev()
    assert a < b < c


def test_revisions_refuse_what_is_not_newer_per_key() -> None:
    r = Revisions()
    r.check("TAG1", 10)
    r.check("TAG2", 5)  # another key has its own history
    for stale in (10, 9):
        with pytest.raises(WireError) as e:
            r.check("TAG1", stale)
        assert e.value.reason == "stale_revision"
    r.check("TAG1", 11)
    r.check("TAG1", None)  # unsigned trial: no revision to judge


def test_refusals_counted_each_time_and_logged_once_per_source(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    ref = Refusals(logging.getLogger("test.refusals"), "receipts", seen.append)
    with caplog.at_level(logging.WARNING, "test.refusals"):
        for _ in range(3):
            ref.refuse("t/a", WireError("unsigned"))
        ref.refuse("t/b", WireError("unsigned"))
    assert ref.counts == {"unsigned": 4} and seen == ["unsigned"] * 4
    assert len(caplog.records) == 2


def test_keys_init_writes_private_key_600_public_key_and_edge_key(tmp_path: Path) -> None:
    paths = init_keys(tmp_path / "k")
    key, pub, edge = paths
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(edge).st_mode) == 0o600
    assert len(read_edge_key(str(edge))) == 32
    signer = load_signer(key, "tracker")
    verifier = CentreKeySettings(centre_key=(pub,)).verifier()
    assert verifier is not None
    accept_control(control(receipt(), signer, TOPIC), TOPIC, verifier)
    with pytest.raises(FileExistsError):
        init_keys(tmp_path / "k")


def test_centre_key_accepts_a_comma_list_and_refuses_three(tmp_path: Path) -> None:
    a, b, c = (init_keys(tmp_path / n)[1] for n in "abc")
    v = CentreKeySettings(centre_key=(Path(f"{a},{b}"),)).verifier()
    assert v is not None and len(v.kids) == 2
    with pytest.raises(ConfigError, match="centre_key"):
        CentreKeySettings(centre_key=(a, b, c)).verifier()
    with pytest.raises(ConfigError, match="signing_key"):
        SigningSettings(signing_key=a).signer("tracker")  # a public key cannot sign


def test_no_key_allowed_on_loopback_only(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "pak.keys"):
        require_keys("gateway", "centre_key", Brokers.parse("mqtt://127.0.0.1:1883"), False)
    assert "unsigned_trial" in caplog.text
    with pytest.raises(ConfigError, match="setting centre_key"):
        require_keys("gateway", "centre_key",
                     Brokers.parse("mqtt://127.0.0.1:1883,mqtt://10.1.2.3:1883"), False)
    require_keys("gateway", "centre_key", Brokers.parse("mqtt://10.1.2.3:1883"), True)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
_SIGNER = Signer.generate("tracker")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=10).filter(lambda k: k not in ("topic", "issuer",
                                                                         "rev")),
                       _json, max_size=6),
       st.text(min_size=1, max_size=40))
def test_envelope_round_trip(obj: dict[str, object], topic: str) -> None:
    body = orjson.dumps(obj)
    out = orjson.loads(accept_control(control(body, _SIGNER, topic), topic,
                                      _SIGNER.verifier()))
    rev = out.pop("rev")
    assert isinstance(rev, int) and out.pop("topic") == topic
    assert out.pop("issuer") == "tracker" and out == obj


def test_a_message_keeps_its_own_issuer_and_rev_and_the_body_is_returned_as_signed() -> None:
    s = Signer.generate("tracker")
    topic = "pak/v1/centre"
    body = orjson.dumps({"v": 1, "topic": topic, "issuer": "trk-a", "rev": 7})
    payload = control(body, s, topic)
    got = accept_control(payload, topic, s.verifier())
    assert got == parse_envelope(payload).body.encode()
    assert orjson.loads(got) == {"v": 1, "topic": topic, "issuer": "trk-a", "rev": 7}
    with pytest.raises(ValueError):
        control(body, s, "pak/v1/elsewhere")
