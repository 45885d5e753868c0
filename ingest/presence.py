"""The centre announces itself: after every acknowledged (re)subscription, a tracker instance
publishes a retained presence message (pak/wire/presence.py) on ``{root}/centre`` with a new
epoch, and gateways that see a new epoch republish everything unreceipted at once
(gateway/runtime.py). A broker restart loses shared subscriptions (Mosquitto 2.0.11): what
gateways published before the tracker re-subscribed was dropped, and this brings it back in
about a second instead of at the receipt timer (30 s or more).

How the epoch is chosen (strictly greater than the retained one, without a round trip before
the announcement):

* ``epoch = max(now in Unix milliseconds, highest epoch this process has seen or sent + 1)``.
  Time makes epochs grow across restarts of any instance without shared state; the maximum
  makes them grow within one process even if the clock stands still or steps back.
* The announcement goes out at the SUBACK, before the retained message arrives (Mosquitto
  sends it just after the SUBACK). If that retained epoch is not below ours (another instance
  whose clock runs ahead, or this host's clock stepped back since the last epoch), the
  instance announces once more with ``retained + 1``: at worst one round trip late, never
  stuck below a retained epoch. Only *retained* deliveries trigger this, at most once per
  subscription, so two instances never bump each other in a loop; a live epoch from another
  instance only raises the floor for our next announcement.

Two instances announcing at once may both be "new" to a gateway: it republishes twice, which
costs duplicates (merged by storage), never a loss. Pure: the consumer (ingest/consumer.py)
does the MQTT side and supplies the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from pak.errors import WireError
from pak.logs import event
from pak.timefmt import utcnow
from pak.wire.envelope import SignerLike, VerifierLike
from pak.wire.presence import Presence, encode_presence, parse_presence

__all__ = ["CentrePresence"]

log = logging.getLogger("pak.ingest.presence")


class CentrePresence:
    """The epoch bookkeeping of one tracker instance. Called from paho's network thread only
    (SUBACK and message callbacks), so it needs no lock."""

    def __init__(self, topic: str, issuer: str, *,
                 clock: Callable[[], datetime] = utcnow, signer: SignerLike | None = None,
                 verifier: VerifierLike | None = None) -> None:
        self.topic = topic
        self._signer = signer  # presence goes out signed; another instance's is verified
        self._verifier = verifier
        self.issuer = issuer
        self._clock = clock
        self._floor = 0  # the highest epoch seen or sent: the next one is above it
        self._sent: int | None = None  # our epoch for the current subscription
        self._bumped = False

    @property
    def epoch(self) -> int | None:
        """The epoch announced for the current subscription (None before the first)."""
        return self._sent

    def _announce(self, epoch: int) -> bytes:
        self._sent = epoch
        self._floor = max(self._floor, epoch)
        return encode_presence(Presence(self.topic, self.issuer, epoch, self._clock()),
                               self._signer)

    def subscribed(self) -> bytes:
        """The subscriptions are acknowledged: the payload to publish (retained) now."""
        self._bumped = False
        now_ms = int(self._clock().timestamp() * 1000)
        return self._announce(max(now_ms, self._floor + 1))

    def received(self, payload: bytes, retained: bool) -> bytes | None:
        """A message on the presence topic; the payload to publish again when the retained
        epoch turned out not to be below ours (once per subscription), else None."""
        try:
            p = parse_presence(payload, self.topic, self._verifier)
        except WireError as e:
            event(log, logging.WARNING, "presence_refused", reason=e.reason, detail=e.detail)
            return None
        self._floor = max(self._floor, p.epoch)
        if (retained and not self._bumped and self._sent is not None and p.epoch >= self._sent
                and not (p.epoch == self._sent and p.issuer == self.issuer)):
            self._bumped = True
            return self._announce(p.epoch + 1)
        return None
