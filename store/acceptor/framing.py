"""Is this a data set? A streaming check of a data set's framing (PS3.5 7.1, 7.5).

The node stores objects as sent and parses them later, in the worker; but it must not
answer Success for bytes that are not a data set at all (random bytes sent as an
image, an SR whose sequence never ends). `Framing` walks the element headers as the
fragments arrive, skipping values, and descends into sequences of undefined length:
every element must have a known VR (explicit VR), every value must end inside the data
set, every sequence and item of undefined length must be closed, and the data set must
end exactly at an element boundary. It reads nothing but headers, so its cost follows
the number of elements, not the size of the object.
"""

from __future__ import annotations

import struct

VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC "
    b"UI UL UN UR US UT UV".split()
)
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
UNDEFINED_OK = frozenset((b"SQ", b"UN", b"OB", b"OW"))
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
SEQ, ITEM_CTX = "sequence", "item"
MAX_DEPTH = 64


class Framing:
    """Feed the data set's bytes in order; `finish()` returns '' or what is wrong."""

    def __init__(self, implicit: bool, little: bool = True) -> None:
        self.implicit = implicit
        self.order = "<" if little else ">"
        self.tag_of = struct.Struct(self.order + "HH").unpack_from
        self.u16 = struct.Struct(self.order + "H").unpack_from
        self.u32 = struct.Struct(self.order + "I").unpack_from
        self.pending = bytearray()
        self.want = 0
        self.skip = 0
        self.skipping_tag = 0
        self.stack: list[str] = []
        self.error = ""
        self.size = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        self.size += end
        while pos < end and not self.error:
            if not self.skip and not self.pending and end - pos >= 12:
                pos = self._run(view, pos, end)
                continue
            if self.skip:
                step = min(self.skip, end - pos)
                self.skip -= step
                pos += step
                continue
            if len(self.pending) < 8:
                take = min(8 - len(self.pending), end - pos)
                self.pending += view[pos:pos + take]
                pos += take
                if len(self.pending) < 8:
                    continue
            if not self.want:
                self.want = 12 if not self.implicit and self._long_form() else 8
                if self.error:
                    break
            if len(self.pending) < self.want:
                take = min(self.want - len(self.pending), end - pos)
                self.pending += view[pos:pos + take]
                pos += take
                if len(self.pending) < self.want:
                    continue
            self._element(bytes(self.pending))
            self.pending.clear()
            self.want = 0

    def _long_form(self) -> bool:
        group = struct.unpack_from(self.order + "H", self.pending, 0)[0]
        if group == 0xFFFE:
            return False
        vr = bytes(self.pending[4:6])
        if vr not in VRS:
            self.error = f"element ({self._tag_text(self.pending)}) has no valid VR"
            return False
        return vr in LONG_VRS

    def _tag_text(self, header: bytes | bytearray) -> str:
        group, elem = struct.unpack_from(self.order + "HH", header, 0)
        return f"{group:04X},{elem:04X}"

    def _run(self, view: memoryview, pos: int, end: int) -> int:
        """Whole element headers straight from the buffer (the common case)."""
        tag_of, u16, u32 = self.tag_of, self.u16, self.u32
        implicit = self.implicit
        while end - pos >= 12 and not self.error:
            group, elem = tag_of(view, pos)
            if implicit or group == 0xFFFE:
                vr = b""
                length = u32(view, pos + 4)[0]
                pos += 8
            else:
                vr = bytes(view[pos + 4:pos + 6])
                if vr in LONG_VRS:
                    length = u32(view, pos + 8)[0]
                    pos += 12
                elif vr in VRS:
                    length = u16(view, pos + 6)[0]
                    pos += 8
                else:
                    self.error = f"element ({group:04X},{elem:04X}) has no valid VR"
                    break
            stack = self.stack
            if length != UNDEFINED and (
                (group != 0xFFFE and (not stack or stack[-1] is ITEM_CTX))
                or (elem == ITEM and group == 0xFFFE and stack and stack[-1] is SEQ)
            ):
                if end - pos >= length:  # the value is here: step over it
                    pos += length
                    continue
                self.skip, self.skipping_tag = length - (end - pos), (group << 16) | elem
                return end
            self._dispatch(group, elem, vr, length)
        return pos

    def _element(self, header: bytes) -> None:
        group, elem = struct.unpack_from(self.order + "HH", header, 0)
        if group == 0xFFFE or self.implicit:
            length = struct.unpack_from(self.order + "I", header, 4)[0]
            vr = b""
        else:
            vr = header[4:6]
            fmt = self.order + ("I" if len(header) == 12 else "H")
            length = struct.unpack_from(fmt, header, 8 if len(header) == 12 else 6)[0]
        self._dispatch(group, elem, vr, length)

    def _dispatch(self, group: int, elem: int, vr: bytes, length: int) -> None:
        in_sequence = bool(self.stack) and self.stack[-1] == SEQ
        if in_sequence:
            self._in_sequence(group, elem, length)
        elif group == 0xFFFE:
            if elem == ITEM_END and self.stack and self.stack[-1] == ITEM_CTX:
                self.stack.pop()
            else:
                self.error = f"unexpected delimiter (FFFE,{elem:04X}) in a data set"
        elif length == UNDEFINED:
            if not self.implicit and vr not in UNDEFINED_OK:
                self.error = f"element ({group:04X},{elem:04X}) has an undefined length"
            else:
                self._push(SEQ)
        else:
            self.skip, self.skipping_tag = length, (group << 16) | elem

    def _in_sequence(self, group: int, elem: int, length: int) -> None:
        if group != 0xFFFE or elem not in (ITEM, SEQUENCE_END):
            self.error = f"({group:04X},{elem:04X}) where a sequence item was expected"
        elif elem == SEQUENCE_END:
            self.stack.pop()
        elif length == UNDEFINED:
            self._push(ITEM_CTX)
        else:
            self.skip, self.skipping_tag = length, (group << 16) | elem

    def _push(self, kind: str) -> None:
        if len(self.stack) >= MAX_DEPTH:
            self.error = f"sequences nested deeper than {MAX_DEPTH}"
        else:
            self.stack.append(kind)

    def finish(self, complete: bool = True) -> str:
        """What is wrong with the data set ('' when nothing is). `complete=False`: the
        bytes were only a prefix (a capped inflation), so an open end is no fault."""
        if self.error:
            return self.error
        if not self.size:
            return "empty data set"
        if not complete:
            return ""
        if self.skip:
            tag = self.skipping_tag
            return f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) runs past the end of the data set"
        if self.pending:
            return "data set ends inside an element header"
        if self.stack:
            return f"data set ends inside an unterminated {self.stack[-1]}"
        return ""


def check(data: bytes | bytearray | memoryview, implicit: bool, little: bool = True) -> str:
    framing = Framing(implicit, little)
    framing.feed(data)
    return framing.finish()
