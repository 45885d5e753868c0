"""Names the R2000 manual gives to command codes and error codes, and the other constants of
the protocol (IND903 serial protocol V2.2, chapters 2 and 3; 0x8B from the V3 firmwares).

Names are the manual's ``cmd_name_*`` and error names, kept as spelled there (without the
``cmd_name_`` prefix) so a technician can look them up.
"""

from __future__ import annotations

__all__ = [
    "BROADCAST",
    "CMD_FAST_SWITCH_INVENTORY",
    "CMD_GET_FIRMWARE_VERSION",
    "CMD_GET_OUTPUT_POWER",
    "CMD_GET_WORK_ANTENNA",
    "CMD_NAMES",
    "CMD_REAL_TIME_INVENTORY",
    "CMD_RESET",
    "CMD_SESSION_INVENTORY",
    "CMD_SET_OUTPUT_POWER",
    "CMD_SET_WORK_ANTENNA",
    "ERROR_ANTENNA_MISSING",
    "ERROR_CODES",
    "HEAD",
    "MAX_LEN",
    "MIN_LEN",
    "STATUS_REPLY_CMDS",
    "SUCCESS",
    "TAG_CMDS",
    "VALUE_REPLY_CMDS",
    "cmd_name",
    "error_name",
]

#: Every frame, in both directions, starts with this byte.
HEAD = 0xA0
#: Len counts Address + Cmd + Data + Check: at least 3 (no data), at most 255 (257-byte frame).
MIN_LEN = 3
MAX_LEN = 0xFF
#: The public address: every reader obeys it, whatever its own address.
BROADCAST = 0xFF

CMD_RESET = 0x70
CMD_GET_FIRMWARE_VERSION = 0x72
CMD_SET_WORK_ANTENNA = 0x74
CMD_GET_WORK_ANTENNA = 0x75
CMD_SET_OUTPUT_POWER = 0x76
CMD_GET_OUTPUT_POWER = 0x77
CMD_REAL_TIME_INVENTORY = 0x89
CMD_FAST_SWITCH_INVENTORY = 0x8A
#: The V3 firmwares' session (target) inventory; its frames have the 0x89 shapes.
CMD_SESSION_INVENTORY = 0x8B

#: Commands whose rounds report tags as ``FreqAnt | PC | EPC | RSSI`` frames.
TAG_CMDS = frozenset((CMD_REAL_TIME_INVENTORY, CMD_FAST_SWITCH_INVENTORY, CMD_SESSION_INVENTORY))

#: The manual's comprehensive command table (chapter 2), plus 0x8B.
CMD_NAMES: dict[int, str] = {
    0x70: "reset",
    0x71: "set_uart_baudrate",
    0x72: "get_firmware_version",
    0x73: "set_reader_address",
    0x74: "set_work_antenna",
    0x75: "get_work_antenna",
    0x76: "set_output_power",
    0x77: "get_output_power",
    0x78: "set_frequency_region",
    0x79: "get_frequency_region",
    0x7A: "set_beeper_mode",
    0x7B: "get_reader_temperature",
    0x7C: "set_drm_mode",
    0x7D: "get_drm_mode",
    0x60: "read_gpio_value",
    0x61: "write_gpio_value",
    0x62: "set_ant_connection_detector",
    0x63: "get_ant_connection_detector",
    0x80: "inventory",
    0x81: "read",
    0x82: "write",
    0x83: "lock",
    0x84: "kill",
    0x85: "set_access_epc_match",
    0x86: "get_access_epc_match",
    0x89: "real_time_inventory",
    0x8A: "fast_switch_ant_inventory",
    0x8B: "session_inventory",
    0xB0: "iso18000_6b_inventory",
    0xB1: "iso18000_6b_read",
    0xB2: "iso18000_6b_write",
    0xB3: "iso18000_6b_lock",
    0xB4: "iso18000_6b_query_lock",
    0x90: "get_inventory_buffer",
    0x91: "get_and_reset_inventory_buffer",
    0x92: "get_inventory_buffer_tag_count",
    0x93: "reset_inventory_buffer",
    0x94: "set_buffer_data_frame_interval",
    0x95: "get_buffer_data_frame_interval",
}

#: Commands whose 4-byte reply (Len 0x04) carries a value, not an Error_Code: the work antenna,
#: the output power, the DRM mode, the antenna detector state, the buffer frame interval.
VALUE_REPLY_CMDS = frozenset((0x75, 0x77, 0x7D, 0x63, 0x95))
#: Commands whose Len 0x04 reply is one Error_Code byte (``command_success`` or an error).
STATUS_REPLY_CMDS = frozenset(CMD_NAMES) - VALUE_REPLY_CMDS

SUCCESS = 0x10
ERROR_ANTENNA_MISSING = 0x22

#: Chapter 3 of the manual, every entry.
ERROR_CODES: dict[int, str] = {
    0x10: "command_success",
    0x11: "command_fail",
    0x20: "mcu_reset_error",
    0x21: "cw_on_error",
    0x22: "antenna_missing_error",
    0x23: "write_flash_error",
    0x24: "read_flash_error",
    0x25: "set_output_power_error",
    0x31: "tag_inventory_error",
    0x32: "tag_read_error",
    0x33: "tag_write_error",
    0x34: "tag_lock_error",
    0x35: "tag_kill_error",
    0x36: "no_tag_error",
    0x37: "inventory_ok_but_access_fail",
    0x38: "buffer_is_empty_error",
    0x40: "access_or_password_error",
    0x41: "parameter_invalid",
    0x42: "parameter_invalid_wordCnt_too_long",
    0x43: "parameter_invalid_membank_out_of_range",
    0x44: "parameter_invalid_lock_region_out_of_range",
    0x45: "parameter_invalid_lock_action_out_of_range",
    0x46: "parameter_reader_address_invalid",
    0x47: "parameter_invalid_antenna_id_out_of_range",
    0x48: "parameter_invalid_output_power_out_of_range",
    0x49: "parameter_invalid_frequency_region_out_of_range",
    0x4A: "parameter_invalid_baudrate_out_of_range",
    0x4B: "parameter_beeper_mode_out_of_range",
    0x4C: "parameter_epc_match_len_too_long",
    0x4D: "parameter_epc_match_len_error",
    0x4E: "parameter_invalid_epc_match_mode",
    0x4F: "parameter_invalid_frequency_range",
    0x50: "fail_to_get_RN16_from_tag",
    0x51: "parameter_invalid_drm_mode",
    0x52: "pll_lock_fail",
    0x53: "rf_chip_fail_to_response",
    0x54: "fail_to_achieve_desired_output_power",
    0x55: "copyright_authentication_fail",
    0x56: "spectrum_regulation_error",
    0x57: "output_power_too_low",
}


def cmd_name(cmd: int) -> str | None:
    """The manual's name of a command code, or None for a code it does not list."""
    return CMD_NAMES.get(cmd)


def error_name(code: int) -> str:
    """The manual's name of an error code; ``unknown_0xNN`` for one it does not list."""
    return ERROR_CODES.get(code) or f"unknown_0x{code:02X}"
