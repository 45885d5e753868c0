"""Every complete example packet of the MR7901 manual (v1.6), copied from its "eg" lines.

Each constant names the manual's section. The manual's byte tables under the examples disagree
with the example lines in places (e.g. "32 35 38" for "30 35 38" in the device id, "78 56 32 12"
for the registration code); the example lines are the ones whose CRC checks, and the prose
decodes below them agree with the lines. One example is incomplete in the manual (6.5.2 eg2,
a firmware block with "..." for its data) and is left out.
"""

from __future__ import annotations

__all__ = ["ALL", "DEVICE_ID", "DEVICE_ID_BYTES"]

DEVICE_ID = "861694034205896"
DEVICE_ID_BYTES = "38 36 31 36 39 34 30 33 34 32 30 35 38 39 36 00"


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


# 5.2 / 6.1.1 register, serial 0
REGISTER = _hex(
    "55 AA 00 22 00 08 00 00 00 00 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 01 01 78 56 34 12 A7 5C")
# 6.1.2 register reply: success, 2017-01-14 17:22:50, "218.17.157.214", port 24 13 = 4900
REGISTER_REPLY = _hex(
    "55 AA 00 45 80 08 00 00 00 00 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 00 11 01 0E 11 16 32 32 31 38 2E 31 37 2E 31 35 37 2E 32 31 34 00 00 00 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 24 13 B6 41")
# 6.2.1 login: software V2.7, parameter CRC 02 69
LOGIN = _hex(
    "55 AA 00 20 00 01 00 00 00 00 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 02 07 02 69 C5 0C")
# 6.2.2 login reply: success, 2017-01-14 17:23:30
LOGIN_REPLY = _hex(
    "55 AA 00 23 80 01 00 00 00 00 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 00 11 01 0E 11 17 1E F6 C5")
# 6.2.2 eg2 login reply asking for a firmware update (0x02), 2017-01-20 16:20:34
LOGIN_REPLY_UPDATE = _hex(
    "55 AA 00 23 80 01 00 00 00 00 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 02 11 01 14 10 14 22 70 96")
# 6.3.1 heartbeat (V2.6-V2.8), serial 1: work status 00 01, parameter CRC 11 95, V2.7,
# 2017-01-14 17:23:29. (The prose gives the CRC as 0xDEC6; the line's DE 46 is the one that
# checks.)
HEARTBEAT = _hex(
    "55 AA 00 28 00 03 00 00 00 01 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 00 01 11 95 02 07 11 01 0E 11 17 1D DE 46")
# 6.3.1 eg2 heartbeat (V3.2), serial 3: work status 0A 01 (GPRS, battery 10), device status
# 10 01 (signal 16, via GPRS), V3.2, 2017-06-01 15:44:40
HEARTBEAT_V32 = _hex(
    "55 AA 00 28 00 03 00 00 00 03 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39 36"
    " 00 0A 01 10 01 03 02 11 06 01 0F 2C 28 BD CE")
# 6.3.2 heartbeat reply, serial 1: no operation, 2017-01-14 17:23:31
HEARTBEAT_REPLY = _hex(
    "55 AA 00 23 80 03 00 00 00 01 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 00 11 01 0E 11 17 1F 70 FC")
# 6.4.1 data report, serial 0x8D, two 0x8B01 tags
DATA_REPORT = _hex(
    "55 AA 00 46 00 04 00 00 00 8D 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 8B 01 00 11 01 20 78 2B 6A A4 2F 00 00 00 A9 11 01 0E 13 26 09 8B 01 00 11 01"
    " 20 EB 14 4A 33 64 00 00 00 B8 11 01 0E 13 26 09 83 3F")
# 6.5.1 eg1 firmware request: host firmware, file information, serial 1
FIRMWARE_INFO_REQUEST = _hex(
    "55 AA 00 22 00 0D 00 00 00 01 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 01 00 00 00 00 00 5E 5E")
# 6.5.1 eg2: file content, block size 02 00, block 0, serial 2
FIRMWARE_BLOCK_REQUEST = _hex(
    "55 AA 00 22 00 0D 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 01 01 02 00 00 00 26 CD")
# 6.5.1 eg3: update done, success, V2.8, serial 0x5E
FIRMWARE_DONE = _hex(
    "55 AA 00 22 00 0D 00 00 00 5E 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30"
    " 35 38 39 36 00 01 02 01 02 08 00 05 C6")
# 6.5.2 eg1 firmware reply: host file information, CRC B5 87, size 00 01 0A EE, serial 1
FIRMWARE_INFO_REPLY = _hex(
    "55 AA 00 2D 80 0D 00 00 00 01 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 01 00 00 00 00 00 00 00 00 00 00 B5 87 00 01 0A EE 5F 29")
# 6.5.2 eg3: the update file ends, serial 0x18
FIRMWARE_END_REPLY = _hex(
    "55 AA 00 1D 80 0D 00 00 00 18 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35"
    " 38 39 36 00 05 47 04")
# 6.6.1 eg1 parameters: antenna information, serial 2
PARAMS_ANTENNA = _hex(
    "55 AA 00 2D 00 0A 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 02 01 06 01 06 01 06 FF FF 1F 1F 1F FF A8 A8 A8 01 83 F3")
# 6.6.1 eg2 parameters: user configuration (182 bytes), serial 2
PARAMS_USER_CONFIG = _hex(
    "55 AA 00 D3 00 0A 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39"
    " 36 00 10 55 01 02 09 01 00 B4 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39 36 00 00 00"
    " 01 C0 A8 01 C7 FF FF FF 00 C0 A8 01 01 64 00 32 31 38 2E 31 37 2E 31 35 37 2E 32 31 34"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 24 13 32 31 38 2E 31 37 2E 31 35"
    " 37 2E 32 31 34 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 F8 11 00 2E 12 3C"
    " 00 25 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    " 00 01 06 01 06 01 06 FF FF 10 4D 52 37 39 30 31 2D 30 30 33 43 30 30 32 35 00 A8 A8 A8"
    " A8 1F 1F 1F 1F 00 A1 00 00 00 00 30 47")
# 6.6.1 eg6 parameters: device status (106 bytes), serial 3
PARAMS_STATUS = _hex(
    "55 AA 00 87 00 0A 00 00 00 03 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 11 03 00 32 31 38 2E 31 37 2E 31 35 37 2E 32 31 34 00 00 00 00 00 00 00 00 00"
    " 00 00 00 00 00 00 00 00 00 24 13 01 32 31 38 2E 31 37 2E 31 35 37 2E 32 31 34 00 00 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 25 13 00 18 00 18 00 08 00 FF FF FF FF 01"
    " 06 FF FF FF FF 01 FF 01 01 D8 01 00 00 00 00 00 00 00 00 74 00 00 00 D9 AA")
# 6.6.1 eg7 parameters: hardware information (127 bytes), serial 2
PARAMS_HARDWARE = _hex(
    "55 AA 00 9C 00 0A 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39"
    " 36 00 12 38 36 31 36 39 34 30 33 34 32 30 35 38 39 36 00 34 33 35 35 31 30 35 30 30 33"
    " 43 30 30 32 35 00 4D 52 37 39 30 31 2D 30 30 33 43 30 30 32 35 00 38 36 31 36 39 34 30"
    " 33 34 32 30 35 38 39 36 00 38 39 38 36 30 32 62 31 31 39 31 36 39 30 30 30 32 33 32 39"
    " 00 09 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 25 3E")
# 6.6.1 eg8 parameters: configuration confirmed (success), another station, serial 6
PARAMS_CONFIRM = _hex(
    "55 AA 00 1E 00 0A 00 00 00 06 00 01 00 00 34 33 35 35 31 30 33 30 30 33 45 30 30 33"
    " 39 00 80 01 47 84")
# 6.6.2 eg3 parameter command: antenna gains 1F x4, RSSI thresholds A8 x4 (-88), serial 2
PARAMS_SET_ANTENNA = _hex(
    "55 AA 00 25 80 0A 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39"
    " 36 00 02 1F 1F 1F 1F A8 A8 A8 A8 C4 88")
# 6.6.2 eg4: do not report tag data (03 01), serial 3
PARAMS_SET_TAG_REPORTING = _hex(
    "55 AA 00 1E 80 0A 00 00 00 03 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 03 01 6A CD")
# 6.6.2 eg5: write the user configuration (an older layout: see the test), serial 2
PARAMS_SET_USER_CONFIG = _hex(
    "55 AA 00 D3 80 0A 00 00 00 02 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39 36"
    " 00 10 55 01 02 07 01 01 3C 00 38 36 31 36 39 34 30 33 34 32 30 35 38 39 36 00 00 00 01"
    " C0 A8 01 C7 FF FF FF 00 C0 A8 01 02 DC FF 32 31 38 2E 31 37 2E 31 35 37 2E 32 31 34 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 24 13 4D 54 49 49 00 00 00 00 00 00"
    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 23 6D 74 69 32"
    " 36 35 34 36 33 39 32 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    " 00 00 00 00 00 00 00 00 14 4D 52 37 39 30 31 2D 30 30 33 43 30 30 32 35 00 A8 A8 A8 A8"
    " 1F 1F 1F 1F 00 A1 00 00 00 00 0E 47")
# 6.6.2 eg6: platform confirmation (0x80), serial 3
PARAMS_PLATFORM_CONFIRM = _hex(
    "55 AA 00 1D 80 0A 00 00 00 03 00 01 00 00 38 36 31 36 39 34 30 33 34 32 30 35 38"
    " 39 36 00 80 A6 E0")

#: (name, packet) in manual order: the stream tests send them back to back.
ALL: list[tuple[str, bytes]] = [
    (name, value) for name, value in list(globals().items())
    if isinstance(value, bytes) and name.isupper()
]
