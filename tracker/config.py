"""Settings of ``pak tracker``: every one a flag, a TOML key (``[tracker]`` table or the top
level of ``--config FILE``) and an environment variable ``PAK_TRACKER_<NAME>``; defaults <
file < environment < flags. A bad value is refused at start with a
:class:`~pak.errors.ConfigError` that names the setting and where the value came from.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.pipeline import IngestOptions
from pak.checks import between as _between
from pak.checks import one_of as _one_of
from pak.checks import topic_root as _check_root
from pak.checks import valid_id as _check_id
from pak.edge_key import EdgeKeySettings
from pak.key_settings import SigningSettings
from pak.logs import event
from pak.settings import BrokerSettings, MetricsSettings, load, setting
from pak.wire import DEFAULT_ROOT, MAX_PAYLOAD
from tracker.alerts.settings import AlertSettings
from tracker.storage.timeouts import StatementTimeouts

__all__ = ["TrackerSettings", "load_settings"]

SERVICE = "tracker"

log = logging.getLogger("pak.tracker")

def _check_db(v: str) -> str | None:
    if v.startswith(("sqlite://", "postgresql://", "postgres://")):
        return None
    return "must be sqlite://PATH or postgresql://USER@HOST:PORT/DB"

def default_client_id() -> str:
    """``pak-tracker-<host>``: stable across restarts, so the broker resumes the session."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"pak-tracker-{host or 'host'}"[:64]


@dataclass(frozen=True, slots=True)
class TrackerSettings(BrokerSettings, MetricsSettings, AlertSettings, EdgeKeySettings,
                      SigningSettings):
    """Everything ``pak tracker`` can be told (the broker and metrics fields come from
    :class:`~pak.settings.BrokerSettings` and :class:`~pak.settings.MetricsSettings`)."""

    mqtt_protocol: str = setting("auto", metavar="VERSION", check=_one_of("auto", "5", "3.1.1"),
                                 help="MQTT protocol: auto (5, falling back to 3.1.1 when the "
                                      "broker lacks 5), 5 or 3.1.1")
    db: str = setting("sqlite://pak.db", metavar="URL", check=_check_db,
                      help="storage: sqlite://PATH (embedded; sqlite:///abs/path or a path "
                           "relative to the working folder) or postgresql://... (TimescaleDB)")
    migrate: bool = setting(True, help="apply pending database migrations at start-up")
    topic_root: str = setting(DEFAULT_ROOT, metavar="ROOT", check=_check_root,
                              help="topic root of the wire contract")
    group: str = setting("pak-tracker", metavar="NAME", check=_check_id,
                         help="shared-subscription group: trackers in one group split the "
                              "sightings between them")
    client_id: str | None = setting(
        None, metavar="ID", check=_check_id,
        help="MQTT client id; keep it stable across restarts (the broker keeps this id's "
             "session and redelivers what was not acked) and distinct per instance "
             "(default: pak-tracker-<hostname>)")
    session_expiry_s: int = setting(3600, metavar="SECONDS", check=_between(0, 0xFFFFFFFF),
                                    help="how long the broker keeps the session of a stopped "
                                         "tracker (MQTT 5 Session Expiry Interval)")
    batch_size: int = setting(5000, metavar="N", check=_between(1, 100_000),
                              help="sightings per database write (a batch also closes by age)")
    batch_max_age_ms: int = setting(250, metavar="MS", check=_between(1, 60_000),
                                    help="longest a sighting waits for its batch to fill")
    receive_maximum: int = setting(
        20_000, metavar="N", check=_between(1, 65535),
        help="messages the broker may send before the tracker acks (MQTT 5 Receive Maximum). "
             "Acks wait for the commit, so this must hold about two batches' messages or "
             "batches cannot fill; it also bounds the tracker's memory")
    receipt_interval_ms: int = setting(
        2000, metavar="MS", check=_between(10, 60_000),
        help="receipts go out at most this often, each covering everything committed since "
             "the last (one message per gateway and spool; gateways wait far longer before "
             "they republish)")
    future_tolerance_s: float = setting(
        300.0, metavar="SECONDS", check=_between(0, 86400),
        help="a sighting time further than this past the tracker's clock is refused (a "
             "dead letter); old times (a backlog after an outage) are always accepted")
    max_payload: int = setting(MAX_PAYLOAD, metavar="BYTES", check=_between(1024, 268_435_455),
                               help="largest sightings payload accepted")
    db_timeout_s: float = setting(5.0, metavar="SECONDS", check=_between(0.1, 300),
                                  help="PostgreSQL: how long a write waits for a connection "
                                       "before the batch counts as failed and is retried")
    db_lookup_timeout_s: float = setting(
        0.2, metavar="SECONDS", check=_between(0, 3600),
        help="PostgreSQL: statement timeout of the short lookups an alert's enrichment makes "
             "(0: none)")
    db_read_timeout_s: float = setting(5.0, metavar="SECONDS", check=_between(0, 3600),
                                       help="PostgreSQL: statement timeout of queries (0: none)")
    db_write_timeout_s: float = setting(
        30.0, metavar="SECONDS", check=_between(0, 3600),
        help="PostgreSQL: statement timeout of writes (batches, alerts); SQLite: how long a "
             "write waits for the database lock (0: none)")
    db_long_timeout_s: float = setting(
        3600.0, metavar="SECONDS", check=_between(0, 86400),
        help="PostgreSQL: statement timeout of retention and exports (0: none)")
    db_retry_max_s: float = setting(5.0, metavar="SECONDS", check=_between(0.01, 300),
                                    help="longest wait between retries while the database is "
                                         "unavailable")
    shutdown_timeout_s: float = setting(10.0, metavar="SECONDS", check=_between(0, 3600),
                                        help="at shutdown, how long to keep retrying the "
                                             "pending batch if the database is down")
    metrics_port: int | None = setting(None, metavar="PORT", check=_between(0, 65535),
                                       help="deprecated (one release): use --metrics-listen")
    metrics_addr: str | None = setting(None, metavar="ADDR",
                                       help="deprecated (one release): use --metrics-listen")
    log_level: str = setting("info", metavar="LEVEL",
                             check=_one_of("debug", "info", "warning", "error"),
                             help="debug, info, warning or error")
    log_format: str = setting("text", metavar="FORMAT", check=_one_of("text", "json"),
                              help="text (for people) or json (for log shippers)")
    retention_days: float | None = setting(
        None, metavar="N", check=_between(0.01, 36_500),
        help="keep sightings N days: the tracker itself copies what open cases and alerts "
             "need to evidence, then drops older sightings (personal location data may be "
             "kept no longer than the law allows; off when not set)")
    retention_interval_s: float = setting(
        3600.0, metavar="SECONDS", check=_between(0.1, 43_200),
        help="how often retention runs (the first run at start-up; one instance of a group "
             "at a time); at most 12 h, so evidence is copied well ahead of a TimescaleDB "
             "retention policy")

    def metrics_address(self) -> tuple[str, int] | None:
        """``--metrics-listen``, or the deprecated ``--metrics-port``/``--metrics-addr``
        (a warning in the log; the default address was 0.0.0.0)."""
        if self.metrics_listen is not None or (self.metrics_port is None
                                               and self.metrics_addr is None):
            return MetricsSettings.metrics_address(self)
        event(log, logging.WARNING, "setting_deprecated", setting="metrics_port/metrics_addr",
              use=f"--metrics-listen {self.metrics_addr or '0.0.0.0'}:{self.metrics_port}")
        if self.metrics_port is None:
            return None  # an address alone never served anything
        return self.metrics_addr or "0.0.0.0", self.metrics_port

    def statement_timeouts(self) -> StatementTimeouts:
        return StatementTimeouts(lookup_s=self.db_lookup_timeout_s, read_s=self.db_read_timeout_s,
                                 write_s=self.db_write_timeout_s, long_s=self.db_long_timeout_s)

    def ingest_options(self) -> IngestOptions:
        return IngestOptions(
            topic_root=self.topic_root,
            group=self.group,
            client_id=self.client_id or default_client_id(),
            protocol="5" if self.mqtt_protocol == "5" else
                     "3.1.1" if self.mqtt_protocol == "3.1.1" else "auto",
            batch_size=self.batch_size,
            batch_max_age=self.batch_max_age_ms / 1000,
            future_tolerance=self.future_tolerance_s,
            max_payload=self.max_payload,
            receive_maximum=self.receive_maximum,
            session_expiry=self.session_expiry_s,
            retry_max=self.db_retry_max_s,
            receipt_interval=self.receipt_interval_ms / 1000,
        )


DESCRIPTION = """\
The central tracker: takes sightings from MQTT (a shared subscription, so several trackers
split the load), checks them, hands them to the alert hooks, stores them in batches exactly
once (TimescaleDB, or SQLite for small sites), acknowledges each message only after its batch
has committed, and tells every gateway what is stored (receipts), so gateways can let go.
Refused payloads are kept as dead letters with their reason and raw bytes."""

EPILOG = """\
Every setting is also a TOML key (--config FILE, in a [tracker] table or at the top level)
and an environment variable PAK_TRACKER_<NAME>, e.g. PAK_TRACKER_BATCH_SIZE=2000.
Precedence: defaults < file < environment < flags.

examples:
  pak tracker --mqtt mqtt://127.0.0.1:1883 --db sqlite:///var/lib/pak/pak.db
  pak tracker --mqtt mqtt://tracker@broker:1883 --db postgresql://pak@db/pak \\
              --client-id tracker-a --metrics-listen 0.0.0.0:9108 --config /etc/pak/tracker.toml

The broker must let the tracker read {root}/gw/+/sightings|state|health and {root}/watchlist
and write {root}/gw/+/receipts and {root}/alerts/#, read {root}/gw/+/hits (the priority lane)
and, with --edge-key, write {root}/edge/watchlist: see deploy/mosquitto/."""


def load_settings(argv: Sequence[str] | None = None,
                  env: dict[str, str] | None = None) -> TrackerSettings:
    """Settings from ``argv``, the environment and ``--config``; ConfigError when refused."""
    settings, _ = load(TrackerSettings, SERVICE, argv, prog="pak tracker",
                       description=DESCRIPTION, epilog=EPILOG, env=env)
    settings.broker()  # cross-field checks (password without a user, TLS files)
    return settings
