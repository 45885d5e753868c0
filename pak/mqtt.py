"""The one place a pak component builds an MQTT client (paho-mqtt 2.x, callback API 2).

:func:`make_client` applies, the same way for every component: the broker list (fail over to
the next URL when a connection attempt fails), credentials, TLS (CA, client certificate and
key), the protocol (MQTT 5 or 3.1.1; the tracker's automatic fall-back stays in
``ingest.consumer``, which asks for a 3.1.1 client here) and the reconnect back-off, which every
call site passes explicitly so the policy is visible where the client is made:

* the centre's services (tracker, API, watchlist CLI): :data:`CENTRE_BACKOFF`, 1 s doubling
  to 5 s, so they are back within about 5 s of the broker's return;
* gateways: :func:`gateway_backoff` from ``--mqtt-reconnect-max`` (default 5 s, aligned with
  the centre: a small outage is over for everyone within about 5 s of the broker's return;
  the republish a new centre epoch triggers is spread by a jitter, gateway/runtime.py).

The asyncio side (the API's live alert feed, aiomqtt) takes :func:`tls_context`,
:func:`aiomqtt_args` and :meth:`Backoff.delays` from here, so it shares the same settings.

Import this module only where MQTT is used: it imports paho (``pak`` itself does not).
Failures to connect are logged here once per broker and kind until a connection succeeds (a
refused or unreachable broker at DEBUG: the caller says "unreachable" once per outage); a
certificate the CA does not vouch for is an ERROR (``mqtt_tls_refused``) naming the broker and
the CA file.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from pak.broker_url import Brokers, BrokerUrl, TlsFiles
from pak.logs import event

__all__ = ["CENTRE_BACKOFF", "Backoff", "PakClient", "aiomqtt_args", "gateway_backoff",
           "make_client", "tls_context"]

log = logging.getLogger("pak.mqtt")

Protocol = Literal["5", "3.1.1"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait ``first_s`` after a failed attempt, doubling up to ``max_s``."""

    first_s: int = 1
    max_s: int = 5

    def delays(self) -> Iterator[float]:
        """The waits between attempts, for loops that reconnect by themselves (aiomqtt)."""
        d = float(self.first_s)
        while True:
            yield d
            d = min(d * 2, float(self.max_s))


#: Tracker, API, watchlist CLI: capped at 5 s (recovery issue: the centre is back quickly).
CENTRE_BACKOFF = Backoff(1, 5)


def gateway_backoff(max_s: int) -> Backoff:
    """A gateway's back-off: 1 s doubling to ``--mqtt-reconnect-max`` (default 5 s)."""
    return Backoff(1, max(1, max_s))


def tls_context(tls: TlsFiles) -> ssl.SSLContext:
    """A client TLS context: verifies the broker's certificate and host name against ``ca``
    (the system store when None) and presents ``cert``/``key`` when given."""
    ctx = ssl.create_default_context(cafile=tls.ca)
    if tls.cert:
        ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


class PakClient(mqtt.Client):
    """A paho client that knows its broker list: when an attempt to connect fails, the next
    attempt goes to the next URL. Everything else is paho's."""

    def __init__(self, brokers: Brokers, **kw: Any) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, **kw)
        self.brokers = brokers
        self._index = 0
        self._logged: tuple[int, str] | None = None

    @property
    def broker(self) -> BrokerUrl:
        """The broker this client connects (or tries to connect) to now."""
        return self.brokers.urls[self._index]

    def start(self, keepalive: int = 30, **kw: Any) -> None:
        """Connect in the background to the first broker (paho's thread retries with the
        back-off, moving along the list) and start the network thread."""
        self._index = 0
        b = self.broker
        self.connect_async(b.host, b.port, keepalive, **kw)
        self.loop_start()

    def connect_first(self, keepalive: int = 30) -> None:
        """Connect now (blocking), trying each broker once in order; OSError from the last."""
        err: OSError | None = None
        for i, b in enumerate(self.brokers.urls):
            self._index = i
            if b.username is not None:
                self.username_pw_set(b.username, b.password)
            try:
                self.connect(b.host, b.port, keepalive)
                return
            except OSError as e:
                self._note_failure(e)
                err = e
        assert err is not None
        raise err

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as e:
            self._note_failure(e)
            self._next_broker()
            raise
        self._logged = None
        return rc

    def _next_broker(self) -> None:
        if len(self.brokers.urls) < 2:
            return
        self._index = (self._index + 1) % len(self.brokers.urls)
        # paho reads _host/_port in reconnect(); its setters refuse while the failed attempt's
        # state still says "connecting", which is exactly when we move on.
        b = self.broker
        self._host, self._port = b.host, b.port
        if b.username is not None:
            self.username_pw_set(b.username, b.password)
        event(log, logging.INFO, "mqtt_failover", next=self.broker.redacted())

    def _note_failure(self, e: OSError) -> None:
        kind = type(e).__name__
        if self._logged == (self._index, kind):
            return
        self._logged = (self._index, kind)
        b = self.broker.redacted()
        if isinstance(e, ssl.SSLCertVerificationError):
            event(log, logging.ERROR, "mqtt_tls_refused", broker=b,
                  error=e.verify_message or str(e), ca=self.brokers.tls.ca or "system store",
                  hint="the broker's certificate is not signed by this CA (--mqtt-ca) or does "
                       "not name this host")
        elif isinstance(e, ssl.SSLError):
            event(log, logging.ERROR, "mqtt_tls_failed", broker=b, error=str(e))
        else:
            # the caller logs "unreachable" once per outage; this names the broker and error
            event(log, logging.DEBUG, "mqtt_connect_failed", broker=b, error=str(e))


def make_client(
    brokers: Brokers,
    *,
    backoff: Backoff,
    client_id: str = "",
    protocol: Protocol = "5",
    clean_session: bool | None = None,
    manual_ack: bool = False,
) -> PakClient:
    """A paho client for ``brokers``: credentials, TLS, protocol and back-off applied, not yet
    connected (call :meth:`PakClient.start` or :meth:`PakClient.connect_first`).

    ``clean_session`` is for 3.1.1 only (None under MQTT 5, whose ``clean_start`` goes to
    ``start``)."""
    if brokers.password_in_url:
        event(log, logging.WARNING, "mqtt_password_in_url", broker=brokers.redacted(),
              advice="pass it with --mqtt-password-file or the environment: ps shows a URL")
    v5 = protocol == "5"
    c = PakClient(brokers, client_id=client_id,
                  protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                  clean_session=None if v5 else clean_session, manual_ack=manual_ack)
    c.reconnect_delay_set(backoff.first_s, backoff.max_s)
    first = brokers.urls[0]
    if first.username is not None:
        c.username_pw_set(first.username, first.password)
    if brokers.tls_on:
        c.tls_set_context(tls_context(brokers.tls))
    return c


def aiomqtt_args(brokers: Brokers, attempt: int, *, protocol: Protocol = "5") -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client`` for the ``attempt``-th try (0, 1, ...): the
    brokers in turn, with the same credentials and TLS as a paho client."""
    from aiomqtt import ProtocolVersion

    b = brokers.urls[attempt % len(brokers.urls)]
    return {"hostname": b.host, "port": b.port, "username": b.username, "password": b.password,
            "tls_context": tls_context(brokers.tls) if brokers.tls_on else None,
            "protocol": ProtocolVersion.V5 if protocol == "5" else ProtocolVersion.V311}
