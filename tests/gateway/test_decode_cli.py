"""``pak decode``: hex spellings, output, summary, exit codes, and end to end on captures made
by ``pak sim reader`` over a real pty."""

from __future__ import annotations

import binascii
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.decode_cli import main
from gateway.hexinput import HexError, looks_binary, parse_hex
from tests.support.simreader import PAK, ground_truth, play_gateway, sim_reader

# The EM4100 example of the protocols README: STX, "62E3086CED", checksum "08", ETX.
# 62^E3^08^6C^ED = 08, so it is a valid frame; id 62E3086CED (version byte included).
EM_FRAME = "02 36 32 45 33 30 38 36 43 45 44 30 38 03"
EM_READ = {"driver": "em4100", "tag_id": "62E3086CED", "tag_kind": "em4100", "antenna": None,
           "rssi_dbm": None, "rssi_raw": None, "raw": "0236324533303836434544303803"}
# The same frame with checksum "09": every other byte intact.
EM_BAD_CHECKSUM = "02 36 32 45 33 30 38 36 43 45 44 30 39 03"


# The MR7901 manual's data report (chapter 6.4): station "861694034205896", serial 0x8D, two
# 0x8B01 tag records, CRC 83 3F. Decoded by hand from chapter 7: channel 0x01 = antenna 1 with
# bit 7 clear (out of the station's range), type 0x20 (card), ids 782B6AA4 and EB144A33 with
# check bytes 2F and 64 (two's complement of 20+78+2B+6A+A4 = 0x1D1 and of 20+EB+14+4A+33 =
# 0x19C), status 00 (no low voltage, no key), RSSI A9 = -87 dBm and B8 = -72 dBm, reader time
# 11 01 0E 13 26 09 = 2017-01-14 19:38:09.
MR_HEADER = ("55 AA 00 46 00 04 00 00 00 8D 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 "
             "39 36 00")
MR_TLV1 = "8B 01 00 11 01 20 78 2B 6A A4 2F 00 00 00 A9 11 01 0E 13 26 09"
MR_TLV2 = "8B 01 00 11 01 20 EB 14 4A 33 64 00 00 00 B8 11 01 0E 13 26 09"
MR_REPORT = f"{MR_HEADER} {MR_TLV1} {MR_TLV2} 83 3F"
MR_COMMON = {"driver": "mr7901", "tag_kind": "active", "antenna": 1, "tag_type": 0x20,
             "low_battery": False, "key": False, "in_range": False,
             "reader_time": "2017-01-14T19:38:09", "raw": MR_REPORT.replace(" ", "")}
MR_READS = [{**MR_COMMON, "tag_id": "782B6AA4", "rssi_dbm": -87.0, "rssi_raw": 0xA9},
            {**MR_COMMON, "tag_id": "EB144A33", "rssi_dbm": -72.0, "rssi_raw": 0xB8}]


# The R2000 tag frame of the protocols README, decoded there: antenna 1, frequency index 1
# (865.0 + 0.5 MHz), PC 3000, EPC E200301666130121155074EF, RSSI 0x45 = 69 -> 69 - 130 = -61 dBm.
R2_TAG = "A0 13 01 89 04 30 00 E2 00 30 16 66 13 01 21 15 50 74 EF 45 BF"
R2_READ = {"driver": "r2000", "tag_id": "E200301666130121155074EF", "tag_kind": "epc",
           "antenna": 1, "rssi_dbm": -61, "rssi_raw": 69, "frequency_mhz": 865.5, "pc": "3000",
           "raw": R2_TAG.replace(" ", "")}
# Non-tag frames, check bytes worked out by hand (the frame sums to 0 mod 256): a 0x89 summary
# of real firmware (Len 0x0A: ant 0, rate 100, total 10; sum 0x1A2 -> 5E), the V2.2 manual's
# shape (Len 0x08: ant 0, total 10; sum 0x13C -> C4), the README's firmware reply (1.9) and
# set-work-antenna success, and the README's get-firmware command (an echo on RS-485).
R2_OTHERS = ["A0 0A 01 89 00 00 64 00 00 00 0A 5E", "A0 08 01 89 00 00 00 00 0A C4",
             "A0 05 01 72 01 09 DE", "A0 04 01 74 10 D7", "A0 03 01 72 EA"]


def _decode(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*PAK, "decode", *args], input=stdin, capture_output=True, timeout=30,
                          check=False)


def _lines(out: bytes | str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


# -- hex text --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "A0 13 01 89",
    "a0130189",
    "A0  13\t01\n89\n",
    "0xA0, 0x13, 0x01, 0x89",
    "0xa0,0x13,0x1,0x89",  # a prefixed single digit is a whole byte
    "\\xa0\\x13\\x01\\x89",
    "A0:13:01:89",
    "A0-13-01-89",
    "A013\n0189  # a comment after the bytes",
    "# capture 2026-11-28\nA 0 1 3 0 1 8 9",  # digits split anywhere still pair up
])
def test_hex_spellings(text: str) -> None:
    assert parse_hex(text) == bytes([0xA0, 0x13, 0x01, 0x89])


@pytest.mark.parametrize(("text", "message"), [
    ("A0 13 0G", "line 1, column 8: 'G'"),
    ("A0 13\nZZ", "line 2, column 1: 'Z'"),
    ("A0 1", "odd number of hex digits"),
    ("0x 13", "prefix without digits"),
    ("hello world", "not hex at line 1, column 1: 'h'"),
])
def test_hex_refusals(text: str, message: str) -> None:
    with pytest.raises(HexError, match=message.replace("(", r"\(")):
        parse_hex(text)


_SEPS = st.sampled_from([" ", ",", ", ", "\n", "\t", ":", " \r\n"])


@given(st.lists(st.tuples(st.integers(0, 255), st.sampled_from(["", "0x", "\\x"]),
                          st.booleans(), _SEPS)))
def test_any_spelling_reads_back(spec: list[tuple[int, str, bool, str]]) -> None:
    text = ""
    for value, prefix, upper, sep in spec:
        digits = f"{value:02X}" if upper else f"{value:02x}"
        text += prefix + digits + sep
    assert parse_hex(text) == bytes(v for v, *_ in spec)


def test_binary_detection() -> None:
    assert not looks_binary(b"A0 13 01\r\n0xFF, 0x02\t# note")
    assert looks_binary(bytes.fromhex(EM_FRAME))  # STX/ETX are control bytes
    assert looks_binary("A0 13 é".encode())


# -- output and summary ------------------------------------------------------------------------


def test_known_frame_from_the_readme_as_a_subprocess() -> None:
    p = _decode("--driver", "em4100", "--hex", EM_FRAME)
    assert p.returncode == 0, p.stderr
    assert _lines(p.stdout) == [EM_READ]
    summary = p.stderr.decode()
    assert "frames: 1 (tag 1)" in summary and "tag reads: 1" in summary
    assert "rejected: 0" in summary and "skipped as garbage: 0 bytes" in summary


def test_r2000_frames_from_the_readme(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join([R2_TAG, *R2_OTHERS])
    assert main(["--driver", "r2000", "--hex", text]) == 0
    out, err = capsys.readouterr()
    assert _lines(out) == [R2_READ]
    assert "frames: 6" in err and "tag reads: 1" in err and "rejected: 0" in err
    assert main(["--driver", "r2000", "--hex", text, "--all"]) == 0
    lines = _lines(capsys.readouterr().out)
    assert lines[0] == R2_READ
    assert [x["raw"] for x in lines[1:]] == [o.replace(" ", "") for o in R2_OTHERS]
    assert all(x["frame"] not in ("rejected", "tag") and "tag_id" not in x for x in lines[1:])


def test_r2000_stray_headers_and_a_bad_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Stray 0xA0 bytes before the frame are skipped; the same frame with its check byte off by
    one is a bad checksum and costs nothing behind it."""
    bad = R2_TAG[:-2] + "C0"
    assert main(["--driver", "r2000", "--hex", f"A0 A0 {bad} {R2_TAG}", "--summary",
                 "json"]) == 0
    out, err = capsys.readouterr()
    assert _lines(out) == [R2_READ]
    summary = orjson.loads(err)
    assert summary["reads"] == 1 and summary["bad_frames"] >= 1


def test_mr7901_report_from_the_manual(capsys: pytest.CaptureFixture[str]) -> None:
    # As a technician pastes it: split over lines, lower case.
    text = "\n".join([MR_HEADER.lower(), MR_TLV1, MR_TLV2.lower(), "83 3f"])
    assert main(["--driver", "mr7901", "--hex", text]) == 0
    out, err = capsys.readouterr()
    assert _lines(out) == MR_READS
    assert "frames: 1 (data_report 1)" in err and "tag reads: 2" in err


def test_mr7901_bad_tag_check_inside_an_intact_packet(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The first record's check byte 2F -> 2E, the packet's CRC made right again (CRC-16/CCITT-
    FALSE from the standard library, over header and content): the packet is intact, its first
    tag is not. Only the second read comes out; the bad record is counted and shown."""
    body = bytes.fromhex(f"{MR_HEADER} {MR_TLV1} {MR_TLV2}"[6:].replace(
        "A4 2F", "A4 2E"))
    packet = b"\x55\xaa" + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")
    assert main(["--driver", "mr7901", "--hex", packet.hex(), "--all",
                 "--summary", "json"]) == 0
    out, err = capsys.readouterr()
    lines = _lines(out)
    assert [x.get("tag_id") for x in lines] == ["EB144A33", None]
    assert lines[1]["frame"] == "rejected" and lines[1]["reason"] == "bad_tag_check"
    assert lines[1]["raw"] == MR_TLV1.replace(" ", "").replace("A42F", "A42E")
    assert orjson.loads(err)["rejected_by_reason"] == {"bad_tag_check": 1}


def test_all_shows_every_rejection_in_stream_order(capsys: pytest.CaptureFixture[str]) -> None:
    text = f"FF FE {EM_BAD_CHECKSUM} {EM_FRAME} 02 36 32"
    assert main(["--driver", "em4100", "--hex", text, "--all", "--summary", "json"]) == 0
    out, err = capsys.readouterr()
    assert _lines(out) == [
        {"frame": "rejected", "reason": "garbage", "raw": "FFFE"},
        {"frame": "rejected", "reason": "bad_checksum", "raw": EM_BAD_CHECKSUM.replace(" ", "")},
        EM_READ,
        {"frame": "rejected", "reason": "truncated", "raw": "023632"},
    ]
    summary = orjson.loads(err)
    assert summary["frames"] == 1 and summary["reads"] == 1
    assert summary["rejected_by_reason"] == {"garbage": 1, "bad_checksum": 1, "truncated": 1}
    assert summary["garbage_bytes"] == 2
    assert summary["bytes_in"] == 2 + 14 + 14 + 3


def test_without_all_only_reads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--driver", "em4100", "--hex", f"FF {EM_BAD_CHECKSUM} {EM_FRAME}"]) == 0
    out, err = capsys.readouterr()
    assert _lines(out) == [EM_READ]
    assert "rejected: 1 (bad_checksum 1)" in err and "skipped as garbage: 1 bytes" in err


def test_non_tag_frames_with_all(capsys: pytest.CaptureFixture[str]) -> None:
    # A Chafon "get reader information" command seen on the line (README: 04 FF 21 19 95) is
    # an echo of the host's own command: --all names it, it makes no tag read.
    assert main(["--driver", "chafon", "--hex", "04 FF 21 19 95", "--all"]) == 0
    out, _ = capsys.readouterr()
    [obj] = _lines(out)
    assert obj["frame"] != "rejected" and obj["raw"] == "04FF211995"
    assert "tag_id" not in obj


def test_inputs_file_stdin_binary_and_text(tmp_path: Path) -> None:
    binary = tmp_path / "cap.bin"
    binary.write_bytes(bytes.fromhex(EM_FRAME) * 2)
    text = tmp_path / "cap.txt"
    text.write_text(f"# two reads\n{EM_FRAME}\n{EM_FRAME.lower()}\n")
    for args, stdin in [((str(binary),), b""), (("--binary", str(binary)), b""),
                        ((str(text),), b""), (("-",), binary.read_bytes()),
                        ((), text.read_bytes())]:
        p = _decode("--driver", "em4100", *args, stdin=stdin)
        assert p.returncode == 0, (args, p.stderr)
        assert _lines(p.stdout) == [EM_READ, EM_READ], args
    # Forced the wrong way: hex text read as raw bytes is all garbage, yet readable (exit 0).
    p = _decode("--driver", "em4100", "--binary", str(text))
    assert p.returncode == 0 and p.stdout == b"" and b"rejected: 0" in p.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["--driver", "nope", "--hex", "00"], "unknown driver 'nope'"),
    (["--driver", "chafon", "--model", "x", "--hex", "00"], "unknown model 'x'"),
    (["--driver", "em4100", "/nonexistent/capture.bin"], "cannot read /nonexistent/capture.bin"),
    (["--driver", "em4100", "--hex", "02 3G"], "not hex at line 1, column 5"),
    (["--driver", "em4100", "--hex", "02", "file.bin"], "either --hex or a FILE"),
    (["--driver", "em4100", "--hex", "02", "--binary"], "--binary does not apply"),
])
def test_usage_errors_exit_2(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_and_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    assert main([]) == 2  # --driver is required


def test_bad_frames_only_still_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--driver", "em4100", "--hex", EM_BAD_CHECKSUM]) == 0
    assert main(["--driver", "em4100", "--hex", ""]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 bytes read" in err and "rejected: 1 (bad_checksum 1)" in err


def test_non_hex_text_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("reader at the north gate\n")
    p = _decode("--driver", "em4100", str(f))
    assert p.returncode == 2 and b"not hex at line 1, column 1: 'r'" in p.stderr


# -- end to end: pak sim reader over a pty -> capture -> pak decode ---------------------------

E2E_DRIVERS = ["r2000", "chafon", "em4100", "mr7901"]


@pytest.mark.parametrize("driver", E2E_DRIVERS)
def test_decode_a_capture_from_the_simulator(driver: str, tmp_path: Path) -> None:
    """The test plays the gateway on the simulator's pty and saves what it received, raw and
    as hex text; ``pak decode`` (a subprocess) must print exactly the reads the simulator's
    ground truth says arrived intact, and count the damaged ones as rejections."""
    sent = tmp_path / "sent.jsonl"
    args = ["--driver", driver, "--random", "5", "--count", "80", "--rate", "2000",
            "--seed", "11", "--corrupt", "0.1", "--garbage", "0.2", "--chunk",
            "--log-sent", str(sent)]
    with sim_reader(args) as (proc, path):
        run = play_gateway(path, driver, proc, watchdog=0.05)
    raw = tmp_path / "capture.bin"
    raw.write_bytes(run.received)
    text = tmp_path / "capture.txt"
    text.write_text("\n".join(run.received[i:i + 16].hex(" ")
                              for i in range(0, len(run.received), 16)))
    truth = ground_truth(sent)
    intact = [t for t in truth if not t["corrupted"]]
    assert len(intact) < len(truth), "the seed should corrupt some frames"
    for capture in (raw, text):
        p = _decode("--driver", driver, str(capture), "--summary", "json")
        assert p.returncode == 0, p.stderr
        got = _lines(p.stdout)
        assert [(g["tag_id"], g["raw"]) for g in got] == [(t["tag_id"], t["raw"])
                                                          for t in intact]
        assert all(g["driver"] == driver for g in got)
        summary = orjson.loads(p.stderr)
        assert summary["reads"] == len(intact)
        assert summary["bad_frames"] > 0
