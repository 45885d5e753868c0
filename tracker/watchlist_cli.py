"""``pak watchlist``: the stolen-vehicle watchlist in storage, announced to running trackers.

    pak watchlist add TAG --case NO [--reporter WHO] [--note TEXT] [--reported-at WHEN]
    pak watchlist remove TAG [--case NO] [--status recovered|withdrawn]
    pak watchlist list [--all] [--json]
    pak watchlist import FILE.csv

Every command takes ``--db URL`` (default $PAK_DB_URL). Changes are written to storage, to the
audit log (with the operating-system user), and, given ``--mqtt URL``, announced on
``{root}/watchlist`` (QoS 1), so every running tracker applies them at once; without
``--mqtt`` the trackers pick them up at their next periodic reload.

CSV import (tracker.usecases.watchlist.import_watchlist, shared with the API): a header row
naming the columns ``tag_id`` and ``case`` (required), and optionally ``reporter``,
``reported_at`` (RFC 3339 or a date) and ``note``. All rows are checked first; a file with a
bad row changes nothing, and every bad line is named.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pak.broker_url import Brokers
from pak.errors import ConfigError
from pak.settings import add_broker_flags, broker_from_flags
from pak.timefmt import format_time, utcnow
from pak.wire.topics import DEFAULT_ROOT, Topics
from pak.wire.watchlist import watch_entry_json
from tracker.usecases.audit import record_audit
from tracker.usecases.watchlist import (
    Announce,
    import_watchlist,
    report_stolen,
    watchlist_announcer,
    withdraw,
)
from tracker.watchlist import WatchlistError, normalise_tag

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak watchlist", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=None,
                        help="storage URL (default: $PAK_DB_URL)")
    add_broker_flags(common)  # --mqtt URL (announce changes there), TLS, credentials
    common.add_argument("--signing-key", type=Path, default=None, metavar="FILE",
                        help="the centre's private key (centre.key): announcements are signed "
                             "(required unless the broker is on loopback); default: "
                             "$PAK_WATCHLIST_SIGNING_KEY")
    common.add_argument("--topic-root", default=DEFAULT_ROOT, metavar="ROOT",
                        help=f"topic root of the wire contract (default: {DEFAULT_ROOT})")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    add = sub.add_parser("add", parents=[common], help="put a stolen tag on the watchlist")
    add.add_argument("tag", metavar="TAG")
    add.add_argument("--case", required=True, metavar="NO", help="case number")
    add.add_argument("--reporter", default=None, help="who reported the theft")
    add.add_argument("--note", default="", help="free text for the officers")
    add.add_argument("--reported-at", default=None, metavar="WHEN",
                     help="when the theft was reported (default: now)")
    rm = sub.add_parser("remove", parents=[common], help="take a tag off the watchlist")
    rm.add_argument("tag", metavar="TAG")
    rm.add_argument("--case", default=None, metavar="NO",
                    help="only this case (default: every active case of the tag)")
    rm.add_argument("--status", default="recovered", choices=["recovered", "withdrawn"])
    ls = sub.add_parser("list", parents=[common], help="show the watchlist")
    ls.add_argument("--all", action="store_true", help="recovered and withdrawn entries too")
    ls.add_argument("--json", action="store_true", help="one JSON array")
    imp = sub.add_parser("import", parents=[common], help="add many tags from a CSV file")
    imp.add_argument("file", metavar="FILE.csv", type=Path)
    return p


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    from tracker.trail_cli import parse_when

    return parse_when(text, utcnow())


def _read_csv(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


class _Announcer:
    """A short-lived MQTT connection that announces changes (QoS 1, waits for the broker)."""

    def __init__(self, brokers: Brokers | None, root: str,
                 signing_key: Path | None = None) -> None:
        self._client: Any = None
        self._pending: list[Any] = []
        self.announce: Announce | None = None
        if brokers is None:
            return
        from pak.key_settings import SigningSettings, require_keys
        from pak.mqtt import CENTRE_BACKOFF, make_client

        signer = SigningSettings(signing_key).signer("watchlist")
        require_keys("watchlist", "signing_key", brokers, signer is not None)

        c = make_client(brokers, backoff=CENTRE_BACKOFF, protocol="3.1.1")
        try:
            c.connect_first(30)
        except OSError as e:
            raise WatchlistError(f"cannot reach the broker {brokers.redacted()}: {e}") from None
        c.loop_start()
        self._client = c
        self.announce = watchlist_announcer(self._publish, Topics(root), signer)

    def _publish(self, topic: str, payload: bytes, qos: int) -> None:
        self._pending.append(self._client.publish(topic, payload, qos=qos))

    def close(self) -> None:
        if self._client is None:
            return
        try:
            for info in self._pending:
                info.wait_for_publish(10.0)
                if not info.is_published():
                    raise WatchlistError("the broker did not confirm the announcement; the "
                                         "trackers will pick the change up at their next "
                                         "reload")
        finally:
            self._client.disconnect()
            self._client.loop_stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    url = args.db or os.environ.get("PAK_DB_URL")
    if not url:
        raise ConfigError("--db is required (or set PAK_DB_URL)")
    try:
        return _run(args, url)
    except WatchlistError as e:
        raise ConfigError(str(e)) from None


def _run(args: argparse.Namespace, url: str) -> int:
    from tracker.storage import open_storage

    text = _read_csv(args.file) if args.cmd == "import" else ""
    tag = normalise_tag(args.tag) if args.cmd in ("add", "remove") else ""
    with open_storage(url) as storage:
        now = utcnow()
        if args.cmd == "list":
            entries = storage.watchlist(status=None if args.all else "active")
            record_audit(storage, action="watchlist_list", reason="pak watchlist list",
                         params={"all": args.all}, at=now)
            if args.json:
                print(json.dumps([watch_entry_json(e) for e in entries], indent=2))
            else:
                for e in entries:
                    print(f"{e.tag_id:<26} {e.case_no:<16} {e.status:<10} "
                          f"{format_time(e.reported_at)}  {e.reporter or '-':<16} {e.note}")
                print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")
            return 0
        key = args.signing_key or os.environ.get("PAK_WATCHLIST_SIGNING_KEY")
        ann = _Announcer(broker_from_flags(args, "watchlist"), args.topic_root,
                         Path(key) if key else None)
        try:
            if args.cmd == "add":
                report_stolen(storage, tag, case_no=args.case, reporter=args.reporter,
                              note=args.note, reported_at=_when(args.reported_at), actor=None,
                              via="pak watchlist add", announce=ann.announce, at=now)
                print("added 1 tag(s)" + (" and announced" if args.mqtt else ""))
            elif args.cmd == "import":
                added, rejected = import_watchlist(storage, text, actor=None,
                                                   via="pak watchlist import",
                                                   announce=ann.announce, at=now)
                if rejected:  # all or nothing: every refused line named, nothing changed
                    raise ConfigError("; ".join(f"{args.file}, line {r.line}: {r.error}"
                                                for r in rejected))
                print(f"added {added} tag(s)" + (" and announced" if args.mqtt else ""))
            else:
                n = withdraw(storage, tag, status=args.status, case_no=args.case, actor=None,
                             via="pak watchlist remove", announce=ann.announce, at=now)
                if n == 0:
                    print(f"{tag}: no active entry" + (f" for case {args.case}"
                                                       if args.case else ""), file=sys.stderr)
                    return 1
                print(f"{tag}: {n} entr{'y' if n == 1 else 'ies'} {args.status}"
                      + (" and announced" if args.mqtt else ""))
        finally:
            ann.close()
    return 0
