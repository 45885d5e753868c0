"""``pak audit``: the audit log's hash chain.

    pak audit verify --db URL [--json]   check every record; exit 0 when the chain is intact,
                                         1 with the first broken record
    pak audit head   --db URL            log and print the chain's head (id and hash)

``--db`` defaults to the environment variable PAK_DB_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from pak.logs import setup_logging
from tracker.db_cli import _db_url

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pak audit", description="The audit log's hash chain.")
    sub = p.add_subparsers(dest="task", metavar="TASK", required=True)
    for name, text in (("verify", "check every record of the chain; exit 1 at the first "
                                  "broken one"),
                       ("head", "log and print the chain's head")):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument("--db", metavar="URL", default=None,
                        help="storage URL (default: $PAK_DB_URL)")
        sp.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging("info" if args.task == "head" else "warning")
    url = _db_url(args.db, os.environ)
    from tracker.storage import open_storage
    from tracker.usecases.audit import log_head, verify_chain

    with open_storage(url) as storage:
        if args.task == "head":
            head = log_head(storage)
            out = {"id": head.id, "hash": head.hash} if head else {"id": None, "hash": None}
            print(json.dumps(out) if args.json else f"{out['id']} {out['hash']}")
            return 0
        report = verify_chain(storage)
    result = {"intact": report.intact, "records": report.records,
              "unchained": report.unchained, "head_id": report.head_id,
              "head_hash": report.head_hash, "broken_id": report.broken_id,
              "problem": report.problem}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif report.intact:
        print(f"审计链完整 (intact): {report.records} records, head {report.head_id} "
              f"{report.head_hash}" + (f"; {report.unchained} from before the chain"
                                       if report.unchained else ""))
    else:
        print(f"审计链断裂 (broken) at record {report.broken_id}: {report.problem}",
              file=sys.stdout)
    return 0 if report.intact else 1
