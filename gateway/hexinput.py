"""Reading reader captures as technicians save them: hex text in many spellings, or raw bytes.

Hex text is what terminal programs, logic-analyser exports and chat messages hold, spelled every
way: ``A0 13 01``, ``a01301``, ``0xA0, 0x13, 0x01``, ``\\xa0\\x13``, split over lines, with
``#`` comments. :func:`parse_hex` accepts all of these and refuses anything else with the line
and column of the first offending character, because silently skipping a typo would shift every
later byte and turn a good capture into garbage.
"""

from __future__ import annotations

import re

from pak.errors import PakError

__all__ = ["HexError", "looks_binary", "parse_hex"]


class HexError(PakError):
    """Text that is not a hex capture; the message names the line and column."""


# Separators between bytes or groups of bytes. Dashes and colons appear in MAC-style dumps.
_SEPARATORS = " \t\r\n\f\v,;:-|"
_HEX = frozenset("0123456789abcdefABCDEF")
_DROP_SEPARATORS = str.maketrans("", "", _SEPARATORS)
_HEX_RUN = re.compile(r"[0-9a-fA-F]*")
_TOKEN = re.compile(r"[^" + re.escape(_SEPARATORS) + r"]+")
# Bytes that never occur in hex text: control characters other than whitespace, and anything
# outside ASCII. Their presence means the input is a raw binary capture.
_TEXT_BYTES = frozenset(b"\t\n\r\f\v") | frozenset(range(0x20, 0x7F))


def looks_binary(data: bytes) -> bool:
    """True when ``data`` cannot be hex text (it holds control or non-ASCII bytes)."""
    return not _TEXT_BYTES.issuperset(data)


def parse_hex(text: str) -> bytes:
    """The bytes spelled by hex text.

    Tokens are separated by whitespace, ``,``, ``;``, ``:``, ``-`` or ``|``. A token may carry
    a ``0x`` or ``\\x`` prefix (then one digit is a whole byte: ``0x5`` = 05) or be a bare run of
    digits (``A01301``); bare runs are joined, so a byte split by a line break still reads, and
    the total must be an even number of digits. ``#`` starts a comment to the end of the line.
    """
    digits: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0]
        if "x" not in line and "X" not in line:
            # The common case, a line of bare digits and separators: one C-speed check.
            bare = line.translate(_DROP_SEPARATORS)
            if _HEX_RUN.fullmatch(bare):
                digits.append(bare)
                continue
        for m in _TOKEN.finditer(line):
            token = m.group()
            for piece in _split_prefixed(token):
                bad = next((i for i, c in enumerate(piece.body) if c not in _HEX), None)
                if bad is not None:
                    col = m.start() + piece.offset + bad + 1
                    raise HexError(
                        f"not hex at line {lineno}, column {col}: "
                        f"{piece.body[bad]!r} in {token!r} (use --binary for a raw capture)")
                if piece.prefixed and len(piece.body) % 2:
                    digits.append("0")
                digits.append(piece.body)
    joined = "".join(digits)
    if len(joined) % 2:
        raise HexError(f"odd number of hex digits ({len(joined)}): a byte is cut in half")
    return bytes.fromhex(joined)


class _Piece:
    __slots__ = ("body", "offset", "prefixed")

    def __init__(self, body: str, offset: int, prefixed: bool) -> None:
        self.body = body
        self.offset = offset  # of body within the token
        self.prefixed = prefixed


def _split_prefixed(token: str) -> list[_Piece]:
    """Split ``token`` at ``0x`` / ``\\x`` prefixes: ``\\xa0\\x13`` is two bytes, ``0xA0`` one."""
    pieces: list[_Piece] = []
    low = token.lower()
    if "\\x" not in low and not low.startswith("0x"):
        return [_Piece(token, 0, False)]
    pos = 0
    while pos < len(token):
        if low.startswith("\\x", pos) or (low.startswith("0x", pos) and pos == 0):
            start = pos + 2
            nxt = low.find("\\x", start)
            end = len(token) if nxt < 0 else nxt
            if end == start:
                raise HexError(f"a {token[pos:pos + 2]!r} prefix without digits in {token!r}")
            pieces.append(_Piece(token[start:end], start, True))
            pos = end
        else:
            nxt = low.find("\\x", pos)
            end = len(token) if nxt < 0 else nxt
            pieces.append(_Piece(token[pos:end], pos, False))
            pos = end
    return pieces
