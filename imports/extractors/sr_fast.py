"""Fast SR content-tree reader: walks the raw bytes of ContentSequence.

pydicom turns every content item into a Dataset with converted elements, which costs
~50 ms for a typical CT RDSR (most of the import time). This reader handles the raw value
pydicom keeps for the still-unconverted top-level ContentSequence (little endian, explicit
or implicit VR; defined or undefined lengths) and builds the same `Node` tree. Anything it
does not handle raises `Unsupported` and the caller falls back to the pydicom path.
"""

from __future__ import annotations

from struct import unpack_from
from typing import Any

from pydicom import Dataset
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement

from imports.extractors.sr import Node, numbers

CONTENT_SEQUENCE = 0x0040A730
CONCEPT_NAME = 0x0040A043
CONCEPT_CODE = 0x0040A168
VALUE_TYPE = 0x0040A040
MEASURED_VALUE = 0x0040A300
NUMERIC_VALUE = 0x0040A30A
UNITS = 0x004008EA
CODE_VALUE = 0x00080100
LONG_CODE_VALUE = 0x00080119
CODE_MEANING = 0x00080104
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
TEXT_VRS = {b"LO", b"LT", b"PN", b"SH", b"ST", b"UC", b"UT"}
VALUE_TAGS = {
    "TEXT": 0x0040A160, "UIDREF": 0x0040A124, "PNAME": 0x0040A123,
    "DATETIME": 0x0040A120, "DATE": 0x0040A121, "TIME": 0x0040A122,
}

Elements = dict[int, tuple[bytes, Any]]
WANTED = frozenset({
    CONTENT_SEQUENCE, CONCEPT_NAME, CONCEPT_CODE, VALUE_TYPE, MEASURED_VALUE, NUMERIC_VALUE,
    UNITS, CODE_VALUE, LONG_CODE_VALUE, CODE_MEANING, *VALUE_TAGS.values(),
})
_IMPLICIT_VRS: dict[int, bytes] = {}


def _implicit_vr(tag: int) -> bytes:
    vr = _IMPLICIT_VRS.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag).encode("ascii")
        except KeyError:
            vr = b"UN"
        _IMPLICIT_VRS[tag] = vr
    return vr


class Unsupported(Exception):
    pass


class _Reader:
    def __init__(self, buf: bytes, implicit: bool, encodings: list[str]) -> None:
        self.buf = buf
        self.implicit = implicit
        self.encodings = encodings

    def items(self, pos: int, end: int | None) -> tuple[list[Elements], int]:
        buf, out = self.buf, []
        limit = len(buf) if end is None else end
        while pos + 8 <= limit:
            group, element, length = unpack_from("<HHL", buf, pos)
            tag = (group << 16) | element
            pos += 8
            if tag == SEQUENCE_END:
                break
            if tag != ITEM:
                raise Unsupported(f"unexpected tag {tag:08x} in sequence")
            if length == UNDEFINED:
                elements, pos = self.dataset(pos, None)
            else:
                elements, _ = self.dataset(pos, pos + length)
                pos += length
            out.append(elements)
        return out, pos

    def dataset(self, pos: int, end: int | None) -> tuple[Elements, int]:
        """One item's elements; only the tags the tree needs are kept (others skipped)."""
        buf, implicit = self.buf, self.implicit
        out: Elements = {}
        limit = len(buf) if end is None else end
        while pos + 8 <= limit:
            group, element = unpack_from("<HH", buf, pos)
            tag = (group << 16) | element
            if tag == ITEM_END:
                return out, pos + 8
            if implicit:
                length = unpack_from("<L", buf, pos + 4)[0]
                pos += 8
                vr = _implicit_vr(tag)
            else:
                vr = buf[pos + 4:pos + 6]
                if vr in LONG_VRS:
                    length = unpack_from("<L", buf, pos + 8)[0]
                    pos += 12
                else:
                    length = unpack_from("<H", buf, pos + 6)[0]
                    pos += 8
            if length == UNDEFINED:  # must be walked to find its end
                value, pos = self.items(pos, None)
                if tag in WANTED:
                    out[tag] = (b"SQ", value)
                continue
            if pos + length > len(buf):
                raise Unsupported("value runs past the end of the data")
            if tag in WANTED:
                if vr == b"SQ":
                    out[tag] = (b"SQ", self.items(pos, pos + length)[0])
                else:
                    out[tag] = (vr, buf[pos:pos + length])
            pos += length
        return out, pos

    def text(self, elements: Elements, tag: int) -> str:
        found = elements.get(tag)
        if found is None or found[0] == b"SQ":
            return ""
        vr, raw = found
        if vr in TEXT_VRS:
            delimiters = {0x5E, 0x3D} if vr == b"PN" else set()
            return decode_bytes(raw, self.encodings, delimiters).strip("\x00").strip()
        return raw.decode("latin-1").strip("\x00").strip()

    def first(self, elements: Elements, tag: int) -> Elements | None:
        found = elements.get(tag)
        if found is None or found[0] != b"SQ" or not found[1]:
            return None
        item: Elements = found[1][0]
        return item

    def node(self, elements: Elements) -> Node:
        name = self.first(elements, CONCEPT_NAME)
        code = meaning = ""
        if name is not None:
            code = self.text(name, CODE_VALUE) or self.text(name, LONG_CODE_VALUE)
            meaning = self.text(name, CODE_MEANING)
        vt = self.text(elements, VALUE_TYPE)
        node = Node(code=code, meaning=meaning, vt=vt)
        if vt == "NUM":
            measured = self.first(elements, MEASURED_VALUE)
            if measured is not None:
                raw = self.text(measured, NUMERIC_VALUE)
                if raw:
                    node.values = numbers(raw.split("\\"))
                    node.number = node.values[0]
                    units = self.first(measured, UNITS)
                    node.unit = self.text(units, CODE_VALUE) if units is not None else ""
        elif vt == "CODE":
            concept = self.first(elements, CONCEPT_CODE)
            if concept is not None:
                node.value_code = self.text(concept, CODE_VALUE)
                node.value_meaning = self.text(concept, CODE_MEANING)
        elif vt in VALUE_TAGS:
            node.text = self.text(elements, VALUE_TAGS[vt])
        children = elements.get(CONTENT_SEQUENCE)
        if children is not None and children[0] == b"SQ":
            node.children = [self.node(child) for child in children[1]]
        return node


def fast_children(ds: Dataset) -> list[Node]:
    """The root's children from the raw ContentSequence, or Unsupported."""
    raw = ds._dict.get(CONTENT_SEQUENCE)  # type: ignore[call-overload]
    if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
        raise Unsupported("content sequence already decoded")
    if not raw.is_little_endian:
        raise Unsupported("big endian")
    reader = _Reader(raw.value, raw.is_implicit_VR, list(ds._character_set))
    items, _ = reader.items(0, None)
    return [reader.node(item) for item in items]
