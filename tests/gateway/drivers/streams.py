"""What the framers' stream tests share: feeding a decoder in pieces, and reading back what came
out (the frames; every byte, frames and rejections, in order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.drivers.base import DecodeItem, Rejected, StreamDecoder

__all__ = ["feed_in_pieces", "frames_of", "stream_bytes"]


def feed_in_pieces(dec: StreamDecoder, data: bytes,
                   sizes: Sequence[int] | None = None) -> list[DecodeItem]:
    """Feed ``data`` to ``dec`` in writes of ``sizes`` (cycled; whole when None); no flush."""
    if sizes is None:
        return dec.feed(data)
    out: list[DecodeItem] = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out += dec.feed(data[i:i + n])
        i += n
        k += 1
    return out


def frames_of(items: Sequence[DecodeItem]) -> list[Any]:
    return [x for x in items if not isinstance(x, Rejected)]


def stream_bytes(items: Sequence[DecodeItem]) -> bytes:
    """Every byte the decoder took, in order: a framer never loses or invents one."""
    return b"".join(x.data if isinstance(x, Rejected) else x.raw for x in items)
