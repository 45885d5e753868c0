"""Waiting in tests for something that can be observed.

`eventually(predicate, timeout, what)` polls `predicate` until it returns something truthy and
fails the test, naming `what`, once `timeout` seconds pass without it. It is the only polling
loop the tests use: a test waits for the row, the count, the log line or the state it needs,
never for a fixed time. The poll interval is not a wait for anything; it only bounds how often
the predicate runs.

A predicate may raise AssertionError to give up early (a process that has exited will never
write the log line being waited for). `detail`, if given, is called on failure and its text
appended (the tail of a log, the count reached so far).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(predicate: Callable[[], object], timeout: float, what: str, *,
               step: float = 0.01, detail: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(step)
