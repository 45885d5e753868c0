"""How a tracker instance chooses its presence epoch (ingest/presence.py): strictly above
everything it has seen, even when its clock steps back, and above the retained one at the cost
of one more announcement, never in a loop between instances."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.presence import CentrePresence
from pak.wire.presence import Presence, encode_presence, parse_presence

TOPIC = "pak/v1/centre"


@dataclass
class Clock:
    """A wall clock the test sets (and steps back)."""

    t: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.t


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def retained(epoch: int, issuer: str = "other") -> bytes:
    return encode_presence(Presence(TOPIC, issuer, epoch, datetime.now(UTC)))


def epoch_of(payload: bytes) -> int:
    return parse_presence(payload, TOPIC).epoch


def test_epoch_follows_the_clock_and_always_grows() -> None:
    clock = Clock()
    p = CentrePresence(TOPIC, "pak-tracker", clock=clock)
    first = epoch_of(p.subscribed())
    assert first == ms(clock.t) == p.epoch
    # the same millisecond, then a clock stepped back an hour: still strictly greater
    second = epoch_of(p.subscribed())
    clock.t -= timedelta(hours=1)
    third = epoch_of(p.subscribed())
    assert first < second < third
    clock.t += timedelta(hours=2)
    assert epoch_of(p.subscribed()) == ms(clock.t)


def test_a_retained_epoch_not_below_ours_is_overtaken_once() -> None:
    clock = Clock()
    p = CentrePresence(TOPIC, "a", clock=clock)
    mine = epoch_of(p.subscribed())
    ahead = mine + 3_600_000  # another instance whose clock runs an hour ahead
    again = p.received(retained(ahead), retained=True)
    assert again is not None and epoch_of(again) == ahead + 1 == p.epoch
    # once per subscription: a second retained delivery does not make a loop
    assert p.received(retained(ahead + 5), retained=True) is None
    # a live epoch of another instance raises the floor for our next announcement only
    assert p.received(retained(ahead + 10), retained=False) is None
    assert epoch_of(p.subscribed()) == ahead + 11


def test_an_older_retained_epoch_or_our_own_is_left_alone() -> None:
    clock = Clock()
    p = CentrePresence(TOPIC, "a", clock=clock)
    mine = epoch_of(p.subscribed())
    assert p.received(retained(mine - 1), retained=True) is None
    assert p.received(retained(mine, issuer="a"), retained=True) is None
    assert p.epoch == mine


def test_a_malformed_presence_changes_nothing() -> None:
    p = CentrePresence(TOPIC, "a", clock=Clock())
    mine = epoch_of(p.subscribed())
    assert p.received(b"{not json", retained=True) is None
    assert p.received(encode_presence(Presence("x/centre", "b", mine + 9, datetime.now(UTC))),
                      retained=True) is None
    assert p.epoch == mine
