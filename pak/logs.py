"""Structured logging: one JSON object per line (``--log-format json``) or readable text.

Components log with ``log.info("event_name", extra={"fields": {...}})`` through :func:`event`,
so every line carries a stable event name plus key/value fields a log shipper can index.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["event", "setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = (time.strftime("%H:%M:%S", time.localtime(record.created))
                + f".{int(record.msecs):03d} {record.levelname[0]} {record.name}: "
                + record.getMessage())
        fields = getattr(record, "fields", None)
        if fields:
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once for a command (text for people, json for shippers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def event(logger: logging.Logger, level: int, name: str, **fields: Any) -> None:
    """Log one structured event: a stable name plus fields."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})
