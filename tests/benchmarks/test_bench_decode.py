"""The decode benchmark measures what it says: every intact frame decodes through the garbage
and chunking, the garbage share is as asked, and the line rate follows the baud."""

from __future__ import annotations

import pytest

from benchmarks import cli
from benchmarks.decode import build_stream, decode_rate, run


@pytest.mark.parametrize("driver", ["r2000", "chafon", "em4100", "mr7901"])
def test_stream_decodes_completely(driver: str) -> None:
    stream = build_stream(driver, reads=400, garbage=0.1, tags_per_round=4, seed=2)
    assert stream.reads == 400
    assert all(1 <= len(c) <= 256 for c in stream.chunks)
    share = stream.garbage_bytes / (stream.garbage_bytes + stream.frame_bytes)
    assert 0.05 < share < 0.15
    decoded, seconds = decode_rate(driver, stream)
    assert decoded == 400 and seconds > 0


def test_result_and_line_rate() -> None:
    result = run(["--drivers", "em4100", "--reads", "300", "--repeat", "1",
                  "--tags-per-round", "1"])
    em = result["drivers"]["em4100"]
    # An EM4100 frame is 14 bytes; at 9600 baud, 10 bits a byte: 9600 / 140 = 68.57 reads/s.
    assert em["bytes_per_read"] == 14.0 and em["baud"] == 9600
    assert em["line_rate_reads_per_s"] == 68.6
    assert em["reads_decoded"] == em["reads_sent"] == 300
    assert em["ratio_to_line_rate"] == pytest.approx(em["reads_per_s"] / (9600 / 140), rel=0.01)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list"]) == 0
    assert "decode\t" in capsys.readouterr().out
    assert cli.main(["nope"]) == 2
    assert cli.main(["decode", "--drivers", "nope"]) == 2
    assert cli.main(["decode", "--drivers", "em4100", "--reads", "50", "--repeat", "1"]) == 0
    assert '"benchmark": "decode"' in capsys.readouterr().out
