"""The ingest pipeline: MQTT message -> check -> hooks -> batch -> commit -> ack -> receipts.

Every message the broker delivers becomes exactly one :class:`~ingest.batcher.Item`, good or
bad, in arrival order; it is acked only after the batch holding it has committed, so acks keep
the broker's order and nothing is acked that is not stored (a refused message is stored too,
as a dead letter, then acked: it would never get better by coming again).

Per message, in the network thread:

* ``{root}/gw/{id}/sightings``: :func:`pak.wire.parse_sightings` with the topic's gateway id and
  the tracker's clock; the hooks see the sightings at once (an alert must not wait for a batch);
* ``{root}/gw/{id}/state`` and ``.../health``: checked, then recorded with the batch;
* ``{root}/watchlist``: checked, handed to the watchlist hooks;
* anything else, or anything refused: a dead letter with the reason and the raw bytes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ingest.batcher import Batch, Batcher, Item
from ingest.consumer import Ack, MqttConsumer, Protocol
from ingest.hooks import SightingHook, WatchlistHook
from ingest.metrics import IngestMetrics
from ingest.ports import BatchSink
from ingest.presence import CentrePresence
from ingest.receipts import PendingReceipts
from ingest.validate import dead_letter, parse_health, parse_state, parse_watchlist
from pak.alert import Alert
from pak.broker_url import Brokers, BrokerUrl
from pak.errors import WireError
from pak.logs import event
from pak.timefmt import utcnow
from pak.types import Sighting
from pak.wire import DEFAULT_ROOT, MAX_PAYLOAD, Topics, parse_sightings
from pak.wire.envelope import Revisions, SignerLike, VerifierLike, accept_control

__all__ = ["Ingest", "IngestOptions"]

log = logging.getLogger("pak.ingest")

#: A refused payload larger than this is kept truncated in its dead letter (its size is in the
#: detail): dead letters are for diagnosis, and a hostile sender must not fill the database.
DEAD_LETTER_KEEP: Final = 65_536
#: Publishes not yet acked by the broker past which receipts wait (paho numbers in-flight
#: messages with 16-bit packet ids).
_MAX_OUTSTANDING: Final = 30_000
#: Room for the topic and the MQTT header above the largest accepted payload.
_PACKET_OVERHEAD: Final = 4096


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How the pipeline runs; the tracker's settings map onto these (tracker/config.py)."""

    topic_root: str = DEFAULT_ROOT
    group: str = "pak-tracker"
    client_id: str = "pak-tracker"
    protocol: Protocol = "auto"
    batch_size: int = 5000
    batch_max_age: float = 0.25
    future_tolerance: float = 300.0
    max_payload: int = MAX_PAYLOAD
    receive_maximum: int = 20_000
    session_expiry: int = 3600
    retry_max: float = 5.0
    tls_ca: str | None = None
    #: protocol "auto": an MQTT 5 CONNECT unanswered this long means a 3.1.1-only broker
    connack_timeout: float = 5.0
    #: receipts go out at most this often (what commits cover is gathered meanwhile)
    receipt_interval: float = 2.0


class _Throttled:
    """At most one log line per ``every`` seconds for a noisy condition; counts the rest."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._next = 0.0
        self._suppressed = 0

    def __call__(self, level: int, name: str, **fields: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        self._next = now + self._every
        if self._suppressed:
            fields["suppressed_since_last"] = self._suppressed
            self._suppressed = 0
        event(log, level, name, **fields)


class Ingest:
    """Sightings from MQTT into ``storage``, exactly once; see the module docstring."""

    def __init__(
        self,
        storage: BatchSink,
        mqtt_url: str | BrokerUrl | Brokers,
        options: IngestOptions | None = None,
        *,
        hooks: Sequence[SightingHook] = (),
        watchlist_hooks: Sequence[WatchlistHook] = (),
        metrics: IngestMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        signer: SignerLike | None = None,
        verifier: VerifierLike | None = None,
    ) -> None:
        opt = options or IngestOptions()
        # Receipts go out signed by ``signer``; watchlist changes are applied only when
        # ``verifier`` accepts them and their revision is newer than the tag's last one.
        self._verifier = verifier
        self._watch_revs = Revisions()
        self.options = opt
        self.topics = Topics(opt.topic_root)
        self.metrics = metrics or IngestMetrics()
        self._hooks = list(hooks)
        self._watchlist_hooks = list(watchlist_hooks)
        self._clock = clock
        self._tolerance = timedelta(seconds=opt.future_tolerance)
        self._max_payload = opt.max_payload
        self._gw_prefix = f"{opt.topic_root}/gw/"
        self._watchlist_topic = self.topics.watchlist
        self._accepting = True
        self._warn_dead = _Throttled()
        self._warn_hook = _Throttled()
        self._warn_receipts = _Throttled()
        m = self.metrics
        self._count = {k: m.messages.labels(k) for k in
                       ("sightings", "state", "health", "watchlist", "other")}
        self.batcher = Batcher(storage, on_committed=self._committed,
                               batch_size=opt.batch_size, max_age=opt.batch_max_age,
                               metrics=m, retry_max=opt.retry_max)
        self.consumer = MqttConsumer(
            mqtt_url,
            client_id=opt.client_id,
            on_message=self.handle,
            shared=[self.topics.all_gateways("sightings")],
            plain=[self.topics.all_gateways("state"), self.topics.all_gateways("health"),
                   self.topics.watchlist],
            group=opt.group,
            protocol=opt.protocol,
            receive_maximum=opt.receive_maximum,
            session_expiry=opt.session_expiry,
            max_packet_size=opt.max_payload + _PACKET_OVERHEAD,
            tls_ca=opt.tls_ca,
            connack_timeout=opt.connack_timeout,
            presence=CentrePresence(self.topics.centre, issuer=opt.client_id, signer=signer,
                                    verifier=verifier),
        )
        m.connected.set_function(lambda: 1.0 if self.consumer.connected else 0.0)
        self.receipts = PendingReceipts(self.topics, signer)
        self._receipt_thread = threading.Thread(target=self._receipt_loop,
                                                name="pak-ingest-receipts", daemon=True)
        self._stopping = threading.Event()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.batcher.start()
        self._receipt_thread.start()
        self.consumer.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop taking messages, commit and ack what is pending, send the last receipts and
        disconnect. False when the database stayed down for ``timeout`` seconds: what is left
        is not acked, and the broker delivers it to this client id's next session."""
        self._accepting = False
        ok = self.batcher.stop(timeout)
        self._stopping.set()
        if self._receipt_thread.is_alive():
            self._receipt_thread.join(5.0)
        self._publish_receipts()
        self.consumer.flush(2.0)
        self.consumer.stop()
        return ok

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish on the tracker's connection (the alert engine publishes alerts here)."""
        self.consumer.publish(topic, payload, qos, retain)

    # --- per message (network thread) -------------------------------------------------------

    def handle(self, topic: str, payload: bytes, ack: Ack | None, retained: bool = False) -> None:
        """Take one delivered message; never raises (a failure becomes a dead letter)."""
        if not self._accepting:
            return  # shutting down: unacked, so the broker keeps it for the next session
        received_at = self._clock()
        try:
            self._route(topic, payload, ack, retained, received_at)
        except Exception as e:
            log.exception("unexpected failure handling a message on %s", topic)
            self._dead(topic, payload, WireError("internal_error", repr(e)[:300]),
                       received_at, ack)

    def _route(self, topic: str, payload: bytes, ack: Ack | None, retained: bool,
               received_at: datetime) -> None:
        if topic.startswith(self._gw_prefix):
            gid, _, leaf = topic[len(self._gw_prefix):].partition("/")
            if leaf == "sightings":
                self._count["sightings"].inc()
                self._sightings(topic, payload, gid, ack, received_at)
                return
            if leaf in ("state", "health"):
                self._count[leaf].inc()
                try:
                    rec = (parse_state(payload, gid) if leaf == "state"
                           else parse_health(payload, gid))
                except WireError as e:
                    self._dead(topic, payload, e, received_at, ack)
                    return
                if not retained:
                    # A live message is news now; a retained one is a replay of the past.
                    rec = dataclasses.replace(rec, at=received_at)
                self.batcher.add(Item(topic, payload, received_at, ack, gateway=rec))
                return
        elif topic == self._watchlist_topic:
            self._count["watchlist"].inc()
            try:
                change = parse_watchlist(accept_control(payload, topic, self._verifier))
                self._watch_revs.check(change["tag_id"], change.get("rev"))
            except WireError as e:
                self._dead(topic, payload, e, received_at, ack)
                return
            for wh in self._watchlist_hooks:
                try:
                    wh.on_watchlist(change, received_at)
                except Exception as e:
                    self.metrics.hook_errors.inc()
                    self._warn_hook(logging.ERROR, "hook_failed", hook=type(wh).__name__,
                                    error=repr(e)[:300])
            self.batcher.add(Item(topic, payload, received_at, ack))
            return
        self._count["other"].inc()
        self._dead(topic, payload, WireError("unknown_topic", topic[:200]), received_at, ack)

    def _sightings(self, topic: str, payload: bytes, gid: str, ack: Ack | None,
                   received_at: datetime) -> None:
        try:
            msg = parse_sightings(payload, topic_gateway_id=gid, now=received_at,
                                  future_tolerance=self._tolerance,
                                  max_bytes=self._max_payload)
        except WireError as e:
            self._dead(topic, payload, e, received_at, ack)
            return
        sightings = msg.sightings
        alerts = self._run_hooks(sightings, received_at) if self._hooks else ()
        self.batcher.add(Item(topic, payload, received_at, ack, sightings, alerts))
        self.metrics.received.inc(len(sightings))

    def _run_hooks(self, sightings: list[Sighting], received_at: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        for hook in self._hooks:
            try:
                alerts.extend(hook.on_sightings(sightings, received_at))
            except Exception as e:
                # A broken hook must not cost sightings: they are stored all the same.
                self.metrics.hook_errors.inc()
                self._warn_hook(logging.ERROR, "hook_failed", hook=type(hook).__name__,
                                error=repr(e)[:300])
        if alerts:
            self.metrics.alerts.inc(len(alerts))
        return alerts

    def _dead(self, topic: str, payload: bytes, error: WireError, received_at: datetime,
              ack: Ack | None) -> None:
        if len(payload) > DEAD_LETTER_KEEP:
            error = WireError(error.reason, f"{error.detail} (kept the first {DEAD_LETTER_KEEP} "
                                            f"of {len(payload)} bytes)")
            payload = payload[:DEAD_LETTER_KEEP]
        self.metrics.dead_letters.labels(error.reason).inc()
        self._warn_dead(logging.WARNING, "dead_letter", reason=error.reason, topic=topic[:200],
                        detail=error.detail[:200])
        self.batcher.add(Item(topic, payload, received_at, ack,
                              dead_letter=dead_letter(topic, payload, error, received_at)))

    # --- after each commit (writer thread) ----------------------------------------------------

    def _committed(self, batch: Batch) -> None:
        acks = [it.ack for it in batch.items if it.ack is not None]
        stale = self.consumer.ack(acks)
        if stale:
            self.metrics.stale_acks.inc(stale)
        if batch.sightings:
            self.receipts.add(batch.sightings)

    # --- receipts (own thread) ----------------------------------------------------------------

    def _receipt_loop(self) -> None:
        while not self._stopping.wait(self.options.receipt_interval):
            try:
                self._publish_receipts()
            except Exception:
                log.exception("publishing receipts failed")

    def _publish_receipts(self) -> None:
        if not self.receipts.count:
            return
        if self.consumer.outstanding > _MAX_OUTSTANDING:
            # The broker is not acking our publishes (gone, or swamped): hold the receipts
            # (they accumulate) rather than run paho out of packet ids.
            self._warn_receipts(logging.WARNING, "receipts_held",
                                outstanding=self.consumer.outstanding)
            return
        receipts = self.receipts.take(self._clock())
        for topic, payload in receipts:
            self.consumer.publish(topic, payload, 1)
        self.metrics.receipts.inc(len(receipts))
