"""`pak bench` where the benchmarks are (a source checkout, an editable install) and where
they are not (a wheel, which leaves them out): it runs, or it says plainly what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pak import cli

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_from_a_checkout_whatever_the_working_directory(tmp_path: Path) -> None:
    # -m puts tmp_path, not the checkout, on sys.path: the benchmarks are found beside pak
    r = subprocess.run([sys.executable, "-m", "pak.cli", "bench", "--list"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "decode" in r.stdout


def test_bench_without_the_benchmarks_says_they_are_not_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # what a wheel install looks like: pak in site-packages, no benchmarks beside it or on
    # sys.path
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "pak" / "cli.py"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path
                                      if Path(p or ".").resolve() != REPO])
    for name in [m for m in sys.modules if m.partition(".")[0] == "benchmarks"]:
        monkeypatch.delitem(sys.modules, name)
    assert cli.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert "benchmarks are not installed" in err and "source checkout" in err
