"""The MR7901 driver: TagReads from the manual's data report written out by hand, bad tag check
bytes reported, and the replies owed to a station, byte for byte against the manual's replies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers import driver_class, make_driver
from gateway.drivers.base import Rejected
from gateway.drivers.mr7901.checksums import crc16_ccitt_false
from gateway.drivers.mr7901.frames import (
    DataReply,
    DataReport,
    HeartbeatReply,
    LoginReply,
    RegisterReply,
    decode_packet,
    pack_packet,
)
from gateway.drivers.mr7901.protocol import MR7901Driver
from gateway.drivers.mr7901.tlv import TagRecord
from pak.errors import ConfigError
from pak.types import TagRead
from tests.gateway.drivers import mr7901_manual as manual
from tests.gateway.drivers.test_mr7901_frames import messages

ID = manual.DEVICE_ID
BEIJING = timezone(timedelta(hours=8))
ADVERTISE = ("218.17.157.214", 4900)


def driver(**kw: object) -> MR7901Driver:
    return MR7901Driver(advertise=ADVERTISE, station_tz=BEIJING, **kw)  # type: ignore[arg-type]


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


# -- registry and settings ----------------------------------------------------------------------

def test_registered_by_name() -> None:
    assert driver_class("mr7901") is MR7901Driver
    drv = make_driver("mr7901")
    assert isinstance(drv, MR7901Driver) and drv.name == "mr7901"
    assert drv.transport == "tcp-server"
    # A station re-reports a present tag at most every 60 s (its stay-report minimum) and
    # reports a departure after its de-dup window (180 s in the manual's configuration).
    assert drv.default_exit_after > 180


@pytest.mark.parametrize("advertise", [("", 4900), ("h", 0), ("h", 70000), ("h" * 32, 1)])
def test_bad_advertise_is_refused_naming_the_setting(advertise: tuple[str, int]) -> None:
    with pytest.raises(ConfigError, match="advertise"):
        MR7901Driver(advertise=advertise)


# -- reads --------------------------------------------------------------------------------------

def test_reads_of_the_manual_data_report_by_hand() -> None:
    frame = decode_packet(manual.DATA_REPORT)
    reads = driver().reads(frame)
    # Channel 0x01: antenna 1 (east), bit 7 clear. (The manual's 7.1.3 example labels such a
    # 0x01 "in" while its bit table says bit 7 = 1 is in range; we follow the bit table.)
    common = {"driver": "mr7901", "tag_kind": "active", "raw": manual.DATA_REPORT,
              "tag_type": 0x20, "antenna": 1, "low_battery": False, "key": False,
              "in_range": False, "reader_time": datetime(2017, 1, 14, 19, 38, 9)}
    assert reads == [
        TagRead(tag_id="782B6AA4", rssi_dbm=-87.0, rssi_raw=0xA9, **common),  # type: ignore
        TagRead(tag_id="EB144A33", rssi_dbm=-72.0, rssi_raw=0xB8, **common),  # type: ignore
    ]
    assert reads[0].reader_time is not None and reads[0].reader_time.tzinfo is None
    assert driver().rejections(frame) == []


def _report(tlvs_hex: str, serial: int = 9) -> bytes:
    return pack_packet(0x0004, bytes.fromhex(tlvs_hex.replace(" ", "")), device_id=ID,
                       serial=serial)


def test_read_flags_by_hand() -> None:
    # Stay report (bit 6) on antenna 3 (west), an e-bike key (0x31), id 12345678, check BB,
    # excitation 0102, status 11 (low voltage + key), RSSI C4 = -60, 2024-12-31 23:59:59.
    packet = _report("8B01 0011 C3 31 12345678 BB 0102 11 C4 180C1F173B3B")
    (read,) = driver().reads(decode_packet(packet))
    assert read == TagRead(driver="mr7901", tag_id="12345678", tag_kind="active", raw=packet,
                           tag_type=0x31, antenna=3, rssi_dbm=-60.0, rssi_raw=0xC4,
                           reader_time=datetime(2024, 12, 31, 23, 59, 59), low_battery=True,
                           key=True, in_range=None)
    assert read.sighting_flags() == {"low_battery", "key"}
    # In range (bit 7) on antenna 4 (north), e-bike tag 0x30, no flags, clock never set.
    packet = _report("8B01 0011 84 30 00000001 CF 0000 00 B0 000000000000")
    (read,) = driver().reads(decode_packet(packet))
    assert (read.in_range, read.antenna, read.tag_id, read.tag_type) == (True, 4, "00000001", 0x30)
    assert read.reader_time is None and read.rssi_dbm == -80.0
    # Left the station's range: in_range False becomes the out_of_range flag.
    packet = _report("8B01 0011 02 30 00000001 CF 0000 00 B0 000000000000")
    (read,) = driver().reads(decode_packet(packet))
    assert read.in_range is False and read.sighting_flags() == {"out_of_range"}


def test_bad_tag_check_byte_is_reported_not_read() -> None:
    # The manual's report with the first tag's check byte 2F changed to 2E.
    good2 = "8B01 0011 01 20 EB144A33 64 0000 00 B8 11010E132609"
    bad1 = "8B01 0011 01 20 782B6AA4 2E 0000 00 A9 11010E132609"
    packet = _report(bad1 + good2, serial=0x8D)
    frame = decode_packet(packet)
    drv = driver()
    assert [r.tag_id for r in drv.reads(frame)] == ["EB144A33"]
    assert drv.rejections(frame) == [Rejected("bad_tag_check",
                                              bytes.fromhex(bad1.replace(" ", "")))]
    # The packet arrived intact: it is still answered, or the station would send it again.
    (reply,) = drv.replies(frame, utc(2017, 1, 14, 11, 38, 10))
    assert decode_packet(reply) == DataReply(device_id=ID, serial=0x8D, result=0,
                                             time=datetime(2017, 1, 14, 19, 38, 10))
    assert json.loads(json.dumps(drv.frame_json(frame)))["bad_tags"] == 1


def test_malformed_tlvs_are_reported() -> None:
    # A 0x8B01 TLV of 16 bytes, an unknown TLV (kept, not reported), then 3 stray bytes.
    short = "8B01 0010 01 20 782B6AA4 2F 0000 00 A9 11010E1326"
    other = "8801 0002 ABCD"
    packet = _report(short + other + "010203")
    frame = decode_packet(packet)
    assert isinstance(frame, DataReport)
    assert driver().reads(frame) == []
    assert driver().rejections(frame) == [
        Rejected("bad_tlv", bytes.fromhex(short.replace(" ", ""))),
        Rejected("bad_tlv", b"\x01\x02\x03"),
    ]


@given(st.lists(st.tuples(st.binary(min_size=4, max_size=4), st.integers(0, 255),
                          st.booleans()), max_size=8))
def test_every_record_is_a_read_or_a_rejection(tags: list[tuple[bytes, int, bool]]) -> None:
    records = []
    for tid, typ, corrupt in tags:
        rec = TagRecord.make(tid, tag_type=typ)
        records.append(TagRecord(channel=rec.channel, tag_type=typ, tag_id=tid,
                                 check=rec.check ^ (0x5A if corrupt else 0)))
    frame = decode_packet(DataReport(device_id=ID, records=tuple(records)).encode())
    reads, rejected = driver().reads(frame), driver().rejections(frame)
    assert [r.tag_id for r in reads] == [t.hex().upper() for t, _, c in tags if not c]
    assert [r.data[6:10] for r in rejected] == [t for t, _, c in tags if c]
    assert all(r.reason == "bad_tag_check" for r in rejected)


# -- replies --------------------------------------------------------------------------------------

def test_register_reply_is_the_manuals_byte_for_byte() -> None:
    # The manual answers at 2017-01-14 17:22:50 station time; the gateway's clock is UTC.
    (reply,) = driver().replies(decode_packet(manual.REGISTER), utc(2017, 1, 14, 9, 22, 50))
    assert reply == manual.REGISTER_REPLY


def test_login_reply_is_the_manuals_byte_for_byte() -> None:
    (reply,) = driver().replies(decode_packet(manual.LOGIN), utc(2017, 1, 14, 9, 23, 30, 999))
    assert reply == manual.LOGIN_REPLY


def test_heartbeat_reply_is_the_manuals_byte_for_byte() -> None:
    (reply,) = driver().replies(decode_packet(manual.HEARTBEAT), utc(2017, 1, 14, 9, 23, 31))
    assert reply == manual.HEARTBEAT_REPLY


def test_params_report_is_confirmed_as_in_the_manual() -> None:
    # 6.6.2 eg6 (0x800A, 0x80, serial 3) answers a report with serial 3: the status report.
    (reply,) = driver().replies(decode_packet(manual.PARAMS_STATUS), utc(2017, 1, 1))
    assert reply == manual.PARAMS_PLATFORM_CONFIRM
    # The station's own confirmation (0x80) is followed by its restart: nothing to answer.
    assert driver().replies(decode_packet(manual.PARAMS_CONFIRM), utc(2017, 1, 1)) == []


def test_data_reply_by_hand() -> None:
    (reply,) = driver().replies(decode_packet(manual.DATA_REPORT), utc(2017, 1, 14, 11, 38, 10))
    body = bytes.fromhex("0023 8004 0000008D 0001 0000") + ID.encode() + b"\0" \
        + bytes.fromhex("00 11010E13260A")
    assert reply == b"\x55\xaa" + body + crc16_ccitt_false(body).to_bytes(2, "big")


@pytest.mark.parametrize("name", ["REGISTER_REPLY", "LOGIN_REPLY", "HEARTBEAT_REPLY",
                                  "FIRMWARE_INFO_REQUEST", "FIRMWARE_END_REPLY",
                                  "PARAMS_SET_ANTENNA"])
def test_no_reply_to_replies_and_firmware_requests(name: str) -> None:
    assert driver().replies(decode_packet(getattr(manual, name)), utc(2020, 1, 1)) == []


def test_message_of_unknown_layout_is_still_answered() -> None:
    content = bytes.fromhex("0001119502071101 0E11171D 00".replace(" ", ""))
    frame = decode_packet(pack_packet(0x0003, content, device_id=ID, serial=5))
    assert frame.kind == "raw"
    (reply,) = driver().replies(frame, utc(2017, 1, 14, 9, 23, 31))
    assert decode_packet(reply) == HeartbeatReply(device_id=ID, serial=5, result=0,
                                                  time=datetime(2017, 1, 14, 17, 23, 31))
    assert driver().replies(decode_packet(pack_packet(0x0042, b"", device_id=ID)),
                            utc(2020, 1, 1)) == []


def test_station_zone_naive_now_and_unsendable_clock() -> None:
    reg = decode_packet(manual.REGISTER)
    utc_driver = MR7901Driver(advertise=("10.1.2.3", 4901))
    (reply,) = utc_driver.replies(reg, datetime(2026, 11, 28, 6, 15, 2, 125000))  # naive = UTC
    assert decode_packet(reply) == RegisterReply(device_id=ID, result=0, host="10.1.2.3",
                                                 port=4901,
                                                 time=datetime(2026, 11, 28, 6, 15, 2))
    # A gateway whose clock reads 1970 (no RTC) still answers, with the zero time.
    (reply,) = utc_driver.replies(decode_packet(manual.LOGIN), utc(1970, 1, 1))
    assert decode_packet(reply) == LoginReply(device_id=ID, result=0, time=None)
    assert reply[-8:-2] == bytes(6)


def test_register_without_advertise_is_refused() -> None:
    (reply,) = MR7901Driver().replies(decode_packet(manual.REGISTER), utc(2020, 1, 1))
    msg = decode_packet(reply)
    assert isinstance(msg, RegisterReply) and msg.result == 0xFF


def test_refusal_for_stations_not_allowed() -> None:
    now = utc(2017, 1, 14, 9, 22, 50)
    (reg,) = driver().refusal(decode_packet(manual.REGISTER), now)
    assert decode_packet(reg) == RegisterReply(device_id=ID, result=0xFF,
                                               time=datetime(2017, 1, 14, 17, 22, 50))
    (login,) = driver().refusal(decode_packet(manual.LOGIN), now)
    assert decode_packet(login) == LoginReply(device_id=ID, result=0xFF,
                                              time=datetime(2017, 1, 14, 17, 22, 50))
    assert driver().refusal(decode_packet(manual.DATA_REPORT), now) == []


def test_clock_sync_sets_a_drifting_station_clock() -> None:
    hb = decode_packet(manual.HEARTBEAT)  # station clock 17:23:29
    drv = driver(clock_sync_after=30.0)
    (ok,) = drv.replies(hb, utc(2017, 1, 14, 9, 23, 31))  # 2 s apart
    assert decode_packet(ok).result == 0x00  # type: ignore[attr-defined]
    (fix,) = drv.replies(hb, utc(2017, 1, 14, 9, 30, 0))  # 6.5 min apart
    msg = decode_packet(fix)
    assert isinstance(msg, HeartbeatReply) and msg.operation == 0x06
    assert msg.time == datetime(2017, 1, 14, 17, 30, 0)
    # Off by default: a gateway without a trusted clock never pushes its time.
    (plain,) = driver().replies(hb, utc(2017, 1, 14, 9, 30, 0))
    assert decode_packet(plain).result == 0x00  # type: ignore[attr-defined]


@given(messages)
def test_replies_echo_serial_and_device_id(msg: object) -> None:
    frame = decode_packet(msg.encode())  # type: ignore[attr-defined]
    drv = driver()
    assert drv.device_id(frame) == frame.device_id
    for reply in drv.replies(frame, utc(2030, 5, 6, 7, 8, 9)):
        back = decode_packet(reply)
        assert back.serial == frame.serial and back.device_id == frame.device_id
        assert back.command == frame.command | 0x8000
    json.dumps(drv.frame_json(frame))


def test_device_id_of_non_packets_is_none() -> None:
    assert MR7901Driver.device_id(Rejected("garbage", b"\x00")) is None
