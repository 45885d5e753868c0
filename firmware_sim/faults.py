"""Line faults a simulated reader can inject: what roadside cabling and cheap adapters do to bytes.

Pure and seeded: every decision comes from the ``random.Random`` handed in, so a run with the same
seed damages the same frames, and tests can compare the decoder's findings with the simulator's
ground truth. The runner (``firmware_sim/pty_reader.py``) owns the timing.

Per frame the host is sent::

    [garbage?] frame (maybe one byte flipped, maybe one byte dropped)

and the whole byte stream may be cut into random small writes (``chunk``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Damage", "FaultConfig", "Faults"]


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which faults to inject. Probabilities are per frame, in [0, 1]."""

    corrupt: float = 0.0  # flip one byte of a frame
    garbage: float = 0.0  # random bytes before a frame
    garbage_max: int = 16  # at most this many garbage bytes at once
    drop: float = 0.0  # a frame loses one byte
    chunk: bool = False  # random writes of 1..chunk_max bytes with small pauses
    chunk_max: int = 16
    chunk_delay: float = 0.001  # longest pause between two chunks, seconds
    echo: bool = False  # received commands come back to the host (RS-485 adapters)
    disconnect_every: float | None = None  # seconds between disconnects
    outage: float = 1.0  # how long a disconnect lasts, seconds
    reappear: bool = False  # after a disconnect come back as a new device (USB re-enumeration)

    def __post_init__(self) -> None:
        for name in ("corrupt", "garbage", "drop"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} probability must be in [0, 1], got {p}")
        if self.garbage_max < 1 or self.chunk_max < 1:
            raise ValueError("garbage_max and chunk_max must be at least 1")
        if self.disconnect_every is not None and self.disconnect_every <= 0:
            raise ValueError("disconnect_every must be positive")
        if self.outage < 0 or self.chunk_delay < 0:
            raise ValueError("outage and chunk_delay must not be negative")

    @property
    def damages_frames(self) -> bool:
        return self.corrupt > 0 or self.drop > 0


@dataclass(frozen=True, slots=True)
class Damage:
    """What happened to one frame on its way to the host."""

    corrupted: bool = False
    dropped: bool = False

    @property
    def intact(self) -> bool:
        return not (self.corrupted or self.dropped)


INTACT = Damage()


class Faults:
    """Applies a :class:`FaultConfig` with one seeded random source."""

    def __init__(self, config: FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng

    def damage(self, frame: bytes) -> tuple[bytes, Damage]:
        """The frame as it reaches the host, and what was done to it."""
        cfg, rng = self.config, self.rng
        if not frame or not cfg.damages_frames:
            return frame, INTACT
        corrupted = dropped = False
        out = bytearray(frame)
        if cfg.corrupt and rng.random() < cfg.corrupt:
            # XOR with a non-zero mask: the byte always changes (a flip to the same value would
            # be logged as corrupted while the frame is intact).
            out[rng.randrange(len(out))] ^= rng.randrange(1, 256)
            corrupted = True
        if cfg.drop and len(out) > 1 and rng.random() < cfg.drop:
            del out[rng.randrange(len(out))]
            dropped = True
        return bytes(out), Damage(corrupted, dropped)

    def garbage(self) -> bytes:
        """Random bytes to put before the next frame (usually none)."""
        cfg, rng = self.config, self.rng
        if cfg.garbage and rng.random() < cfg.garbage:
            return rng.randbytes(rng.randint(1, cfg.garbage_max))
        return b""

    def split(self, data: bytes) -> list[tuple[float, bytes]]:
        """``data`` as writes: (pause before it in seconds, bytes). One write unless ``chunk``."""
        cfg, rng = self.config, self.rng
        if not cfg.chunk or len(data) <= 1:
            return [(0.0, data)]
        out: list[tuple[float, bytes]] = []
        pos = 0
        while pos < len(data):
            n = rng.randint(1, cfg.chunk_max)
            pause = rng.uniform(0.0, cfg.chunk_delay) if out else 0.0
            out.append((pause, data[pos:pos + n]))
            pos += n
        return out
