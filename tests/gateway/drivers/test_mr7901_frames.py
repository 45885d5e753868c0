"""MR7901 packets: every example of the manual decoded, with the values written out by hand from
the manual's own explanations; checksum known answers; decode(encode(x)) == x for every message
type, tag record and parameter block."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.drivers.mr7901.checksums import crc16_ccitt_false, tag_check_byte
from gateway.drivers.mr7901.errors import DecodeError, EncodeError
from gateway.drivers.mr7901.frames import (
    DataReply,
    DataReport,
    FirmwareReply,
    FirmwareRequest,
    Heartbeat,
    HeartbeatReply,
    Login,
    LoginReply,
    Message,
    ParamsCommand,
    ParamsReport,
    RawMessage,
    Register,
    RegisterReply,
    decode_packet,
    pack_packet,
)
from gateway.drivers.mr7901.params import AntennaInfo, UserConfig
from gateway.drivers.mr7901.timefield import decode_time, encode_time
from gateway.drivers.mr7901.tlv import RawTlv, TagRecord, parse_tlvs
from tests.gateway.drivers import mr7901_manual as manual

ID = manual.DEVICE_ID


def _crc_by_the_book(data: bytes) -> int:
    """The manual's bitwise method 10.1.1, as an independent oracle for the fast CRC."""
    crc = 0xFFFF
    for byte in data:
        val = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if (crc ^ val) & 0x8000 else crc << 1
            crc &= 0xFFFF
            val <<= 1
    return crc


# -- known answers ---------------------------------------------------------------------------

def test_crc16_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_crc_of_the_register_example_is_a75c() -> None:
    # Over header + content: everything between 55 AA and the last two bytes.
    assert crc16_ccitt_false(manual.REGISTER[2:-2]) == 0xA75C
    assert manual.REGISTER[-2:] == b"\xa7\x5c"


@given(st.binary(max_size=64))
def test_crc_matches_the_manuals_bitwise_method(data: bytes) -> None:
    assert crc16_ccitt_false(data) == _crc_by_the_book(data)


@pytest.mark.parametrize("name,packet", manual.ALL)
def test_every_manual_example_checks(name: str, packet: bytes) -> None:
    length = int.from_bytes(packet[2:4], "big")
    assert len(packet) == 2 + length + 2, name
    assert crc16_ccitt_false(packet[2:-2]) == int.from_bytes(packet[-2:], "big"), name


def test_tag_check_byte_known_answers() -> None:
    assert tag_check_byte(bytes.fromhex("20E3AF2232")) == 0xFA  # manual 7.2 / 10.2
    assert tag_check_byte(bytes.fromhex("20782B6AA4")) == 0x2F  # data report, first tag
    assert tag_check_byte(bytes.fromhex("20EB144A33")) == 0x64  # data report, second tag


def test_time_field_known_answer() -> None:
    assert decode_time(bytes.fromhex("11010E111632")) == datetime(2017, 1, 14, 17, 22, 50)
    assert encode_time(datetime(2017, 6, 1, 15, 44, 40)) == bytes.fromhex("1106010F2C28")
    assert decode_time(bytes(6)) is None  # a station whose clock was never set
    assert decode_time(bytes.fromhex("110D01000000")) is None  # month 13
    assert encode_time(None) == bytes(6)
    with pytest.raises(EncodeError):
        encode_time(datetime(1999, 12, 31))


# -- the manual's examples, decoded by hand ----------------------------------------------------

HAND_DECODED: list[tuple[bytes, Message]] = [
    (manual.REGISTER, Register(device_id=ID, serial=0, version=1, security=0, device_type=0x01,
                               device_model=0x01, reg_code=bytes([0x78, 0x56, 0x34, 0x12]))),
    (manual.REGISTER_REPLY, RegisterReply(device_id=ID, serial=0, result=0x00,
                                          time=datetime(2017, 1, 14, 17, 22, 50),
                                          host="218.17.157.214", port=4900)),
    (manual.LOGIN, Login(device_id=ID, serial=0, sw_version=0x0207, param_crc=0x0269)),
    (manual.LOGIN_REPLY, LoginReply(device_id=ID, serial=0, result=0x00,
                                    time=datetime(2017, 1, 14, 17, 23, 30))),
    (manual.LOGIN_REPLY_UPDATE, LoginReply(device_id=ID, serial=0, result=0x02,
                                           time=datetime(2017, 1, 20, 16, 20, 34))),
    (manual.HEARTBEAT, Heartbeat(device_id=ID, serial=1, work_status=0x0001,
                                 device_status=0x1195, sw_version=0x0207,
                                 time=datetime(2017, 1, 14, 17, 23, 29))),
    (manual.HEARTBEAT_V32, Heartbeat(device_id=ID, serial=3, work_status=0x0A01,
                                     device_status=0x1001, sw_version=0x0302,
                                     time=datetime(2017, 6, 1, 15, 44, 40))),
    (manual.HEARTBEAT_REPLY, HeartbeatReply(device_id=ID, serial=1, result=0x00,
                                            time=datetime(2017, 1, 14, 17, 23, 31))),
    (manual.FIRMWARE_INFO_REQUEST, FirmwareRequest(device_id=ID, serial=1, file_type=1,
                                                   data_type=0, body=bytes(4))),
    (manual.FIRMWARE_BLOCK_REQUEST, FirmwareRequest(device_id=ID, serial=2, file_type=1,
                                                    data_type=1,
                                                    body=bytes([0x02, 0x00, 0x00, 0x00]))),
    (manual.FIRMWARE_DONE, FirmwareRequest(device_id=ID, serial=0x5E, file_type=1, data_type=2,
                                           body=bytes([0x01, 0x02, 0x08, 0x00]))),
    (manual.FIRMWARE_INFO_REPLY, FirmwareReply(
        device_id=ID, serial=1, data_type=0x01,
        body=bytes(5) + bytes(3) + bytes(2) + bytes([0xB5, 0x87]) + bytes([0, 1, 0x0A, 0xEE]))),
    (manual.FIRMWARE_END_REPLY, FirmwareReply(device_id=ID, serial=0x18, data_type=0x05)),
    (manual.PARAMS_CONFIRM, ParamsReport(device_id="4355103003E0039", serial=6,
                                         param_type=0x80, data=bytes([0x01]))),
    (manual.PARAMS_SET_ANTENNA, ParamsCommand(device_id=ID, serial=2, param_type=0x02,
                                              data=bytes([0x1F] * 4 + [0xA8] * 4))),
    (manual.PARAMS_SET_TAG_REPORTING, ParamsCommand(device_id=ID, serial=3, param_type=0x03,
                                                    data=bytes([0x01]))),
    (manual.PARAMS_PLATFORM_CONFIRM, ParamsCommand(device_id=ID, serial=3, param_type=0x80)),
]


@pytest.mark.parametrize("packet,expected", HAND_DECODED,
                         ids=[type(m).__name__ + str(i) for i, (_, m) in enumerate(HAND_DECODED)])
def test_manual_example_decodes_as_written(packet: bytes, expected: Message) -> None:
    msg = decode_packet(packet)
    assert msg == expected
    assert msg.raw == packet
    assert msg.encode() == packet  # and our encoder writes the manual's bytes


def test_manual_data_report_by_hand() -> None:
    msg = decode_packet(manual.DATA_REPORT)
    assert isinstance(msg, DataReport)
    assert (msg.device_id, msg.serial, msg.version, msg.security) == (ID, 0x8D, 1, 0)
    assert msg.trailing == b""
    first, second = msg.records
    # 01 | 20 | 78 2B 6A A4 | 2F | 00 00 | 00 | A9 | 11 01 0E 13 26 09
    assert first == TagRecord(channel=0x01, tag_type=0x20, tag_id=bytes.fromhex("782B6AA4"),
                              check=0x2F, excitation=0, status=0x00, rssi_dbm=-87,
                              time=datetime(2017, 1, 14, 19, 38, 9))
    # 01 | 20 | EB 14 4A 33 | 64 | 00 00 | 00 | B8 | 11 01 0E 13 26 09
    assert second == TagRecord(channel=0x01, tag_type=0x20, tag_id=bytes.fromhex("EB144A33"),
                               check=0x64, excitation=0, status=0x00, rssi_dbm=-72,
                               time=datetime(2017, 1, 14, 19, 38, 9))
    assert first.raw == manual.DATA_REPORT[30:51]  # after 55 AA and the 28-byte header
    assert first.check_ok and second.check_ok
    assert msg.tags == (first, second) and msg.bad_tags == ()
    assert msg.encode() == manual.DATA_REPORT


def test_tag_format_example_of_chapter_7() -> None:
    # 7.1.3: 01 20 E3 AF 22 32 FA 00 00 00 B2 11 01 0E 13 26 09: antenna 1, card (0x20), id
    # E3AF2232, check FA, no excitation, no low voltage, -78 dBm, 2017-01-14 19:38:09.
    rec = TagRecord.parse(bytes.fromhex("0120E3AF2232FA000000B211010E132609"))
    assert rec.antenna == 1 and rec.tag_type == 0x20 and rec.tag_hex == "E3AF2232"
    assert rec.check == 0xFA and rec.check_ok
    assert rec.excitation == 0 and not rec.low_battery and not rec.key
    assert rec.rssi_dbm == -78 and rec.rssi_raw == 0xB2
    assert rec.time == datetime(2017, 1, 14, 19, 38, 9)
    # 7.1.2: the same kind of record as attendance type 0x8B02 is kept as a raw TLV.
    records, trailing = parse_tlvs(bytes.fromhex("8B0200118120782B6AA42F000000A911010E132609"))
    assert records == (RawTlv(0x8B02, bytes.fromhex("8120782B6AA42F000000A911010E132609")),)
    assert trailing == b""


def test_channel_and_status_bits() -> None:
    # Bit 7 in range, bit 6 station stay (bit 7 then invalid), low nibble antenna. Fields:
    # channel | type | id (4) | check | excitation (2) | status | RSSI | time (6).
    rec = TagRecord.parse(bytes.fromhex("84 30 00000001 CF 0000 00 C4 000000000000"))
    assert rec.in_range is True and rec.antenna == 4 and not rec.stay and rec.check_ok
    rec = TagRecord.parse(bytes.fromhex("C3 31 12345678 BB 0102 11 C4 180C1F173B3B"))
    assert rec.in_range is None and rec.stay and rec.antenna == 3 and rec.check_ok
    assert rec.low_battery and rec.key and rec.rssi_dbm == -60 and rec.rssi_raw == 0xC4
    assert rec.excitation == 0x0102 and rec.time == datetime(2024, 12, 31, 23, 59, 59)
    rec = TagRecord.parse(bytes.fromhex("02 30 00000000 00 0000 10 7F 000000000000"))
    assert rec.in_range is False and rec.antenna == 2 and rec.key and not rec.low_battery
    assert rec.rssi_dbm == 127 and rec.time is None and not rec.check_ok  # D0 was due


def test_heartbeat_status_bits() -> None:
    v32 = decode_packet(manual.HEARTBEAT_V32)
    assert isinstance(v32, Heartbeat)
    # 0x0A01: GPRS connection, tags uploaded, external power normal, battery 10 (100 %).
    assert v32.gprs and not v32.lan and not v32.tags_suppressed and not v32.power_lost
    assert v32.battery_tenths == 10


def test_firmware_block_request_fields() -> None:
    msg = decode_packet(manual.FIRMWARE_BLOCK_REQUEST)
    assert isinstance(msg, FirmwareRequest)
    assert msg.block == (0x0200, 0)  # 512-byte blocks, block 0


def test_params_antenna_information_by_hand() -> None:
    msg = decode_packet(manual.PARAMS_ANTENNA)
    assert isinstance(msg, ParamsReport) and msg.param_type == 0x02 and msg.serial == 2
    info = AntennaInfo.parse(msg.data)
    # Antennas 1-3 firmware V1.6, antenna 4 not read (FF FF); gains 31, 31, 31, not read;
    # thresholds -88, -88, -88, not read (01).
    assert info == AntennaInfo(versions=(0x0106, 0x0106, 0x0106, 0xFFFF),
                               gains=(31, 31, 31, 0xFF), rssi_thresholds=(-88, -88, -88, 1))
    assert info.encode() == msg.data


def test_params_user_configuration_by_hand() -> None:
    msg = decode_packet(manual.PARAMS_USER_CONFIG)
    assert isinstance(msg, ParamsReport) and msg.param_type == 0x10 and len(msg.data) == 182
    cfg = UserConfig.parse(msg.data)
    # The manual's item list under 6.6.1 eg2 (its prose gives the GPRS server port as F8 11;
    # the bytes at that place are 24 13 = 4900, and F8 11 = 4600 is the LAN server's).
    assert cfg.marker == 0x55
    assert cfg.mode == 0x01  # GPRS, tags sent
    assert cfg.firmware == (2, 9)
    assert cfg.buzzer == 1
    assert cfg.dedup_window_s == 180  # B4 00
    assert cfg.device_id == ID
    assert cfg.stay_report_s == 0  # periodic stay reports off
    assert cfg.dhcp == 1
    assert (cfg.lan_ip, cfg.lan_mask, cfg.lan_gateway) == \
        ("192.168.1.199", "255.255.255.0", "192.168.1.1")
    assert cfg.lan_port == 100
    assert (cfg.gprs_host, cfg.gprs_port) == ("218.17.157.214", 4900)
    assert (cfg.lan_host, cfg.lan_server_port) == ("218.17.157.214", 4600)
    assert cfg.mac == bytes([0x00, 0x2E, 0x12, 0x3C, 0x00, 0x25])
    assert cfg.antenna_versions == (0x0106, 0x0106, 0x0106, 0xFFFF)
    assert cfg.gprs_signal == 16
    assert cfg.product_id == "MR7901-003C0025"
    assert cfg.rssi_thresholds == (-88, -88, -88, -88)
    assert cfg.gains == (31, 31, 31, 31)
    assert cfg.bluetooth == 0
    assert cfg.link_status == 0xA1  # connected over GPRS
    assert cfg.encode() == msg.data


def test_params_write_user_configuration_example() -> None:
    # 6.6.2 eg5 is laid out like chapter 8 at both ends only (its prose is a copy of eg2's):
    # check what the bytes say there: V2.7, buzzer on, window 3C 00 = 60 s, the product number,
    # thresholds and gains.
    msg = decode_packet(manual.PARAMS_SET_USER_CONFIG)
    assert isinstance(msg, ParamsCommand) and msg.param_type == 0x10 and len(msg.data) == 182
    cfg = UserConfig.parse(msg.data)
    assert cfg.firmware == (2, 7) and cfg.buzzer == 1 and cfg.dedup_window_s == 60
    assert cfg.device_id == ID and cfg.gprs_port == 4900
    assert cfg.product_id == "MR7901-003C0025"
    assert cfg.rssi_thresholds == (-88,) * 4 and cfg.gains == (31,) * 4


def test_params_status_and_hardware_examples_stay_bytes() -> None:
    status = decode_packet(manual.PARAMS_STATUS)
    assert isinstance(status, ParamsReport)
    assert (status.param_type, len(status.data), status.serial) == (0x11, 106, 3)
    assert status.data[:2] == bytes([0x03, 0x00])  # host firmware V3.0
    hardware = decode_packet(manual.PARAMS_HARDWARE)
    assert isinstance(hardware, ParamsReport)
    assert (hardware.param_type, len(hardware.data)) == (0x12, 127)
    assert hardware.data[:16] == ID.encode() + b"\0"  # the current device id


# -- packets this driver does not decode ----------------------------------------------------------

def test_unknown_command_is_kept_raw() -> None:
    packet = pack_packet(0x0042, b"\x01\x02", device_id=ID, serial=7)
    msg = decode_packet(packet)
    assert msg == RawMessage(device_id=ID, serial=7, code=0x0042, body=b"\x01\x02")
    assert msg.command == 0x0042 and msg.kind == "raw" and not msg.is_reply


def test_known_command_with_unexpected_length_is_kept_raw() -> None:
    # A heartbeat with one extra byte (a firmware version this driver has not seen).
    content = bytes.fromhex("0001119502071101 0E11171D".replace(" ", "")) + b"\x00"
    msg = decode_packet(pack_packet(0x0003, content, device_id=ID, serial=1))
    assert isinstance(msg, RawMessage) and msg.command == 0x0003 and msg.body == content


@pytest.mark.parametrize("packet,reason", [
    (manual.REGISTER[:-1] + b"\x00", "bad_checksum"),
    (manual.REGISTER[:-3], "truncated"),
    (b"\x55\xaa\x00\x05" + manual.REGISTER[4:], "bad_length"),
    (b"\xa0" + manual.REGISTER, "garbage"),
])
def test_decode_packet_refuses(packet: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_packet(packet)
    assert info.value.reason == reason


def test_encode_refuses_what_does_not_fit() -> None:
    with pytest.raises(EncodeError):
        Register(device_id="x" * 17).encode()
    with pytest.raises(EncodeError):
        RegisterReply(device_id=ID, host="h" * 32, port=1).encode()
    with pytest.raises(EncodeError):
        RegisterReply(device_id=ID, host="h", port=70000).encode()
    with pytest.raises(EncodeError):
        TagRecord.make("1234")


# -- round trips ----------------------------------------------------------------------------------

device_ids = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
times = st.none() | st.datetimes(min_value=datetime(2000, 1, 1),
                                 max_value=datetime(2255, 12, 31, 23, 59, 59)).map(
    lambda t: t.replace(microsecond=0))
hosts = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=31)

tag_records = st.builds(TagRecord, channel=u8, tag_type=u8, tag_id=st.binary(min_size=4,
                        max_size=4), check=u8, excitation=u16, status=u8,
                        rssi_dbm=st.integers(-128, 127), time=times)
# Raw TLVs: any type, except a 17-byte 0x8B01 (that is a tag record).
raw_tlvs = st.builds(RawTlv, type=u16, value=st.binary(max_size=40)).filter(
    lambda t: not (t.type == 0x8B01 and len(t.value) == 17))


def _header() -> dict[str, st.SearchStrategy[object]]:
    return {"device_id": device_ids, "serial": u32, "version": u16, "security": u16}


messages = st.one_of(
    st.builds(Register, device_type=u8, device_model=u8, reg_code=st.binary(min_size=4,
              max_size=4), **_header()),
    st.builds(RegisterReply, result=u8, time=times, host=hosts, port=u16, **_header()),
    st.builds(Login, sw_version=u16, param_crc=u16, **_header()),
    st.builds(LoginReply, result=u8, time=times, **_header()),
    st.builds(Heartbeat, work_status=u16, device_status=u16, sw_version=u16, time=times,
              **_header()),
    st.builds(HeartbeatReply, result=u8, time=times, **_header()),
    st.builds(DataReport, records=st.lists(tag_records | raw_tlvs, max_size=6).map(tuple),
              trailing=st.binary(max_size=3), **_header()),
    st.builds(DataReply, result=u8, time=times, **_header()),
    st.builds(FirmwareRequest, file_type=u8, data_type=u8, body=st.binary(min_size=4,
              max_size=4), **_header()),
    st.builds(FirmwareReply, data_type=u8, body=st.binary(max_size=600), **_header()),
    st.builds(ParamsReport, param_type=u8, data=st.binary(max_size=200), **_header()),
    st.builds(ParamsCommand, param_type=u8, data=st.binary(max_size=200), **_header()),
    st.builds(RawMessage, code=u16.filter(lambda c: c not in {1, 3, 4, 8, 0xA, 0xD}
                                          and c & 0x7FFF not in {1, 3, 4, 8, 0xA, 0xD}),
              body=st.binary(max_size=50), **_header()),
)


@given(messages)
def test_decode_encode_round_trip(msg: Message) -> None:
    packet = msg.encode()
    back = decode_packet(packet)
    assert back == msg
    assert type(back) is type(msg)
    assert back.raw == packet


@given(tag_records)
def test_tag_record_round_trip(rec: TagRecord) -> None:
    tlv = rec.encode()
    assert tlv[:4] == bytes([0x8B, 0x01, 0x00, 0x11])
    assert parse_tlvs(tlv) == ((rec,), b"")


@given(st.binary(min_size=4, max_size=4), u8, st.integers(0, 15), st.none() | st.booleans(),
       st.booleans(), st.booleans(), st.integers(-128, 127))
def test_tag_record_make(tid: bytes, typ: int, antenna: int, in_range: bool | None,
                         low: bool, key: bool, rssi: int) -> None:
    rec = TagRecord.make(tid, tag_type=typ, antenna=antenna, in_range=in_range,
                         low_battery=low, key=key, rssi_dbm=rssi)
    assert rec.check_ok
    assert (sum(rec.value()[1:7]) & 0xFF) == 0  # type + id + check sum to 0 mod 256
    assert rec.in_range is in_range and rec.low_battery is low and rec.key is key
    assert rec.antenna == (antenna or None) and rec.tag_id == tid and rec.rssi_dbm == rssi


@given(st.builds(AntennaInfo, versions=st.tuples(u16, u16, u16, u16),
                 gains=st.tuples(u8, u8, u8, u8),
                 rssi_thresholds=st.tuples(*[st.integers(-128, 127)] * 4)))
def test_antenna_info_round_trip(info: AntennaInfo) -> None:
    assert AntennaInfo.parse(info.encode()) == info


ipv4 = st.tuples(u8, u8, u8, u8).map(lambda t: ".".join(map(str, t)))
short_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=15)


@given(st.builds(
    UserConfig, marker=u8, mode=u8, firmware=st.tuples(u8, u8), buzzer=u8, dedup_window_s=u16,
    device_id=short_text, stay_report_s=u16, dhcp=u8, lan_ip=ipv4, lan_mask=ipv4,
    lan_gateway=ipv4, lan_port=u16, gprs_host=hosts, gprs_port=u16, lan_host=hosts,
    lan_server_port=u16, mac=st.binary(min_size=6, max_size=6),
    antenna_versions=st.tuples(u16, u16, u16, u16), gprs_signal=u8, product_id=short_text,
    rssi_thresholds=st.tuples(*[st.integers(-128, 127)] * 4), gains=st.tuples(u8, u8, u8, u8),
    bluetooth=u8, link_status=u8, reserved=st.binary(min_size=33, max_size=33)))
def test_user_config_round_trip(cfg: UserConfig) -> None:
    data = cfg.encode()
    assert len(data) == 182
    assert UserConfig.parse(data) == cfg
