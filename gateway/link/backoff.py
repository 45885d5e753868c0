"""Capped exponential backoff with jitter, for reopening a reader link.

The delay doubles from ``initial`` up to ``maximum`` and never exceeds it; each delay is drawn
uniformly from the upper half of its step (``[base/2, base]``) so that several gateways that
lost the same device server at the same moment do not all come back in lock-step, while the
cap stays a hard bound a technician can rely on.
"""

from __future__ import annotations

import random

from pak.errors import ConfigError

__all__ = ["Backoff"]


class Backoff:
    """``next()`` gives the next delay in seconds; ``reset()`` after a healthy connection."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not initial > 0:
            raise ConfigError(f"backoff initial delay must be > 0 (got {initial})")
        if maximum < initial:
            raise ConfigError(f"backoff maximum ({maximum}) is below the initial delay "
                              f"({initial})")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._step = 0

    @property
    def base(self) -> float:
        """The upper bound of the next delay (before jitter)."""
        # min() before the power would overflow a float after ~1000 steps; cap the exponent.
        return min(self.maximum, self.initial * 2.0 ** min(self._step, 64))

    def next(self) -> float:
        base = self.base
        self._step += 1
        return self._rng.uniform(base / 2, base)

    def reset(self) -> None:
        self._step = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset."""
        return self._step
