"""``pak decode``: a reader capture (hex text or raw bytes) to one JSON object per line.

The technician's tool at the roadside: point it at what a terminal program saved, or paste the
bytes, and see the tag reads the gateway would have made of them, plus, with ``--all``, every
other frame and every rejected byte run. It uses exactly the gateway's driver code (framer,
checksums, TagRead mapping), so what it prints is what the gateway sees.

Exit status: 0 when the input could be read (bad frames in it are findings, not failures);
2 for usage errors (unknown driver or model, unreadable file, text that is not hex).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

import orjson

from gateway.drivers import DRIVER_NAMES, Driver, Rejected, StreamDecoder, driver_class
from gateway.drivers.base import DecodeItem
from gateway.hexinput import HexError, looks_binary, parse_hex

__all__ = ["DecodeSummary", "decode_bytes", "main"]

_READ_CHUNK = 1 << 16

_EPILOG = """\
input:
  Hex text in any spelling ("A0 13 01", "a01301", "0xA0, 0x13", "\\xa0\\x13", across lines,
  '#' comments), or raw bytes. With neither --hex nor --binary the input is auto-detected: bytes
  that cannot occur in text (control or non-ASCII) mean a raw capture. Text that is not hex is
  refused with the line and column of the first bad character.

output:
  stdout: one JSON object per tag read (driver, tag_id, tag_kind, antenna, rssi_dbm, rssi_raw,
  protocol fields where the reader sends them, raw). With --all also one object per other frame
  ({"frame": KIND, ...}) and per rejected byte run ({"frame": "rejected", "reason", "raw"}).
  stderr: a summary (frames by kind, rejections by reason, bytes skipped as garbage).

examples:
  pak decode --driver r2000 --hex "A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF"
  pak decode --driver chafon --model uhfreader18 capture.txt
  pak decode --driver em4100 --binary /tmp/rdm6300.bin --all
  cat capture.bin | pak decode --driver mr7901 -
  pak decode --driver r2000 capture.txt | jq -r .tag_id | sort | uniq -c

exit status: 0 input read (even if it held bad frames); 2 usage error."""


class DecodeSummary:
    """What a decode run found, for the stderr summary (and for callers that want numbers)."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.frames: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.rejected_bytes: Counter[str] = Counter()
        self.reads = 0

    def add(self, item: DecodeItem, reads: int) -> None:
        if isinstance(item, Rejected):
            self.rejected[item.reason] += 1
            self.rejected_bytes[item.reason] += len(item.data)
        else:
            self.frames[item.kind] += 1
            self.reads += reads

    @property
    def bad_frames(self) -> int:
        """Rejections other than garbage: frames that looked like frames but were damaged."""
        return sum(n for reason, n in self.rejected.items() if reason != "garbage")

    def as_dict(self) -> dict[str, Any]:
        return {
            "bytes_in": self.bytes_in,
            "frames": sum(self.frames.values()),
            "frames_by_kind": dict(self.frames),
            "reads": self.reads,
            "bad_frames": self.bad_frames,
            "rejected_by_reason": dict(self.rejected),
            "rejected_bytes_by_reason": dict(self.rejected_bytes),
            "garbage_bytes": self.rejected_bytes["garbage"],
        }

    def text(self) -> str:
        def counts(c: Counter[str]) -> str:
            return ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if n)

        bad = Counter({k: n for k, n in self.rejected.items() if k != "garbage"})
        frames = sum(self.frames.values())
        parts = [
            f"{self.bytes_in} bytes read",
            f"frames: {frames}" + (f" ({counts(self.frames)})" if frames else ""),
            f"tag reads: {self.reads}",
            f"rejected: {self.bad_frames}" + (f" ({counts(bad)})" if self.bad_frames else ""),
            f"skipped as garbage: {self.rejected_bytes['garbage']} bytes",
        ]
        return "decode: " + "; ".join(parts)


def decode_bytes(driver: Driver, chunks: Iterable[bytes], emit: Callable[[dict[str, Any]], None],
                 *, show_all: bool = False) -> DecodeSummary:
    """Feed ``chunks`` (an iterable of bytes) through the driver's stream decoder and call
    ``emit`` with one JSON-able object per tag read (and per other item with ``show_all``)."""
    summary = DecodeSummary()
    decoder: StreamDecoder = driver.decoder()
    for chunk in chunks:
        summary.bytes_in += len(chunk)
        _emit_items(driver, decoder.feed(chunk), emit, summary, show_all)
    _emit_items(driver, decoder.flush(), emit, summary, show_all)
    return summary


def _emit_items(driver: Driver, items: list[DecodeItem], emit: Callable[[dict[str, Any]], None],
                summary: DecodeSummary, show_all: bool) -> None:
    for item in items:
        if isinstance(item, Rejected):
            summary.add(item, 0)
            if show_all:
                emit({"frame": "rejected", "reason": item.reason, "raw": item.data.hex().upper()})
            continue
        try:
            reads = driver.reads(item)
        except Exception as e:  # a driver bug must not cost the technician the rest of the file
            rej = Rejected("driver_error", item.raw)
            summary.add(rej, 0)
            if show_all:
                emit({"frame": "rejected", "reason": rej.reason, "raw": item.raw.hex().upper(),
                      "error": f"{type(e).__name__}: {e}"})
            continue
        summary.add(item, len(reads))
        for read in reads:
            emit(read.to_json())
        if show_all and not reads:
            emit(driver.frame_json(item))
        # Damage inside an intact frame (an MR7901 tag record whose check byte fails).
        for rej in driver.rejections(item):
            summary.add(rej, 0)
            if show_all:
                emit({"frame": "rejected", "reason": rej.reason, "raw": rej.data.hex().upper()})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pak decode",
        description="Decode a reader capture (hex text or raw bytes) into one JSON object per "
                    "tag read, with the gateway's own driver code.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--driver", required=True, metavar="NAME",
                   help=f"reader protocol: {', '.join(DRIVER_NAMES)}")
    p.add_argument("--model", metavar="M",
                   help="reader model where the protocol has several (e.g. chafon: uhfreader288, "
                        "uhfreader18); default: the driver's first")
    p.add_argument("--hex", metavar="TEXT", action="append",
                   help="the capture as hex text on the command line (repeatable, joined)")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="capture file, or - for stdin (default: stdin when it is not a terminal)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--binary", dest="format", action="store_const", const="binary",
                     help="the input is raw bytes (default: auto-detect)")
    fmt.add_argument("--text", dest="format", action="store_const", const="hex",
                     help="the input is hex text, even if it looks binary")
    p.add_argument("--all", action="store_true",
                   help="also print non-tag frames and rejected bytes")
    p.add_argument("--summary", choices=("text", "json", "none"), default="text",
                   help="the summary on stderr (default: text)")
    return p


def _usage_error(msg: str) -> int:
    print(f"pak decode: {msg}", file=sys.stderr)
    return 2


def _read_input(args: argparse.Namespace, stdin: IO[bytes]) -> list[bytes]:
    """The capture as bytes (hex already parsed). Raises OSError or HexError."""
    if args.hex:
        return [parse_hex("\n".join(args.hex))]
    if args.file in (None, "-"):
        data = stdin.read()
    else:
        with open(args.file, "rb") as f:
            data = f.read()
    fmt = args.format or ("binary" if looks_binary(data) else "hex")
    if fmt == "binary":
        return [data[i:i + _READ_CHUNK] for i in range(0, len(data), _READ_CHUNK)]
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise HexError(f"not hex text: byte {data[e.start]:#04x} at offset {e.start} "
                       "(use --binary for a raw capture)") from None
    return [parse_hex(text)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    try:
        driver = driver_class(args.driver)(args.model)
    except (ValueError, ImportError) as e:
        return _usage_error(str(e))
    if args.hex and args.file:
        return _usage_error("give either --hex or a FILE, not both")
    if args.hex and args.format == "binary":
        return _usage_error("--binary does not apply to --hex")
    if not args.hex and args.file is None and sys.stdin.isatty():
        return _usage_error("no input: give --hex TEXT, a FILE, or pipe bytes into stdin "
                            "(see --help)")
    try:
        chunks = _read_input(args, sys.stdin.buffer)
    except OSError as e:
        return _usage_error(f"cannot read {args.file or 'stdin'}: {e.strerror or e}")
    except HexError as e:
        return _usage_error(str(e))

    out = sys.stdout.buffer
    dumps = orjson.dumps

    def emit(obj: dict[str, Any]) -> None:
        out.write(dumps(obj) + b"\n")

    try:
        summary = decode_bytes(driver, chunks, emit, show_all=args.all)
        out.flush()
    except BrokenPipeError:
        # `pak decode ... | head` closed the pipe: not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain.
        _silence_stdout()
        return 0
    if args.summary == "text":
        print(summary.text(), file=sys.stderr)
    elif args.summary == "json":
        print(orjson.dumps(summary.as_dict()).decode(), file=sys.stderr)
    return 0


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
