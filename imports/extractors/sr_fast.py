"""Fast SR content-tree reader: walks the raw bytes of ContentSequence.

pydicom turns every content item into a Dataset with converted elements, which costs
~50 ms for a typical CT RDSR (most of the import time). This reader handles the raw value
pydicom keeps for the still-unconverted top-level ContentSequence (little or big endian,
explicit or implicit VR; defined or undefined lengths) and builds the same `Node` tree.
`imports.reading` scans an undefined-length ContentSequence while it reads the file (it
must find its end anyway) and leaves the scanned items on the dataset. Anything the
reader does not handle raises `Unsupported` and the caller falls back to the pydicom path.
"""

from __future__ import annotations

from mmap import mmap
from struct import Struct
from typing import Any

from pydicom import Dataset
from pydicom.charset import decode_bytes, default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.valuerep import VR

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
# The VR of every kept tag, for implicit VR data (no VR on the wire).
WANTED: dict[int, bytes] = {
    CONTENT_SEQUENCE: b"SQ", CONCEPT_NAME: b"SQ", CONCEPT_CODE: b"SQ", VALUE_TYPE: b"CS",
    MEASURED_VALUE: b"SQ", NUMERIC_VALUE: b"DS", UNITS: b"SQ", CODE_VALUE: b"SH",
    LONG_CODE_VALUE: b"UC", CODE_MEANING: b"LO", VALUE_TAGS["TEXT"]: b"UT",
    VALUE_TAGS["UIDREF"]: b"UI", VALUE_TAGS["PNAME"]: b"PN", VALUE_TAGS["DATETIME"]: b"DT",
    VALUE_TAGS["DATE"]: b"DA", VALUE_TAGS["TIME"]: b"TM",
}
VRS = frozenset(str(vr).encode("ascii") for vr in VR)
PARSED = "_doseport_content_items"  # Dataset attribute set by imports.reading
# Code sequences repeat byte for byte (every KVP item names KVP the same way): see _codes().
CODE_SEQUENCES = frozenset({CONCEPT_NAME, CONCEPT_CODE, UNITS})
PREFIX = 96  # bytes that pick the earlier undefined-length items to compare with
RECENT = 4  # how many of them


class Unsupported(Exception):
    pass


class Scanner:
    """Splits raw ContentSequence bytes into items of the elements the tree needs.

    Per element this is one struct call and a few comparisons: a 300-event fluoroscopy
    report has ~300,000 elements, a third of them inside code sequences that are scanned
    once per distinct value (`_codes`).
    """

    def __init__(self, buf: bytes | mmap, implicit: bool, little: bool = True) -> None:
        self.buf = buf
        self.size = len(buf)
        self.implicit = implicit
        order = "<" if little else ">"
        self.item_head = Struct(order + "HHL").unpack_from
        self.head = self.item_head if implicit else Struct(order + "HH2sH").unpack_from
        self.long = Struct(order + "L").unpack_from
        self.delimiter = Struct(order + "HHL").pack(0xFFFE, 0xE0DD, 0)
        self.seen: dict[bytes, list[Elements]] = {}
        self.seen_items: dict[bytes, Elements] = {}
        self.recent: dict[bytes, list[tuple[bytes, Elements]]] = {}

    def items(self, pos: int, end: int | None) -> tuple[list[Elements], int]:
        """The items of a sequence value, and where it ends (after any delimiter)."""
        buf, head = self.buf, self.item_head
        out: list[Elements] = []
        limit = self.size if end is None else end
        while pos + 8 <= limit:
            group, element, length = head(buf, pos)
            tag = (group << 16) | element
            pos += 8
            if tag == SEQUENCE_END:
                return out, pos
            if tag != ITEM:
                raise Unsupported(f"unexpected tag {tag:08x} in sequence")
            if length == UNDEFINED:
                elements, pos = self._undefined_item(pos)
            else:
                if pos + length > limit:
                    raise Unsupported("item runs past the end of the data")
                # Equal bytes scan equally: repeated items (the same filter, plane or
                # event type in every event) are scanned once.
                key = buf[pos:pos + length]
                found = self.seen_items.get(key)
                if found is None:
                    found = self.seen_items[key] = self.dataset(pos, pos + length)[0]
                elements = found
                pos += length
            out.append(elements)
        if end is None:
            raise Unsupported("sequence of undefined length without its delimiter")
        return out, pos

    def dataset(self, pos: int, end: int | None) -> tuple[Elements, int]:
        """One item's elements; only the tags the tree needs are kept (others skipped)."""
        buf, head, long, implicit, wanted = self.buf, self.head, self.long, self.implicit, WANTED
        out: Elements = {}
        limit = self.size if end is None else end
        while pos + 8 <= limit:
            if implicit:
                group, element, length = head(buf, pos)
                tag = (group << 16) | element
                if tag == ITEM_END:
                    return out, pos + 8
                pos += 8
                vr = wanted.get(tag, b"")  # only kept tags need one
            else:
                group, element, vr, length = head(buf, pos)
                tag = (group << 16) | element
                if tag == ITEM_END:
                    return out, pos + 8
                if vr in LONG_VRS:
                    length = long(buf, pos + 8)[0]
                    pos += 12
                elif vr in VRS:
                    pos += 8
                else:  # an implicit VR item inside explicit VR data
                    raise Unsupported(f"no VR for tag {tag:08x}")
            if length == UNDEFINED:  # must be walked to find its end
                if tag in CODE_SEQUENCES:
                    value, pos = self._codes(pos, None)
                else:
                    value, pos = self.items(pos, None)
                if tag in wanted:
                    out[tag] = (b"SQ", value)
                continue
            if pos + length > limit:
                raise Unsupported("value runs past the end of the data")
            if tag in wanted:
                if tag in CODE_SEQUENCES:
                    out[tag] = (b"SQ", self._codes(pos, pos + length)[0])
                elif vr == b"SQ":
                    out[tag] = (b"SQ", self.items(pos, pos + length)[0])
                else:
                    out[tag] = (vr, buf[pos:pos + length])
            pos += length
        if end is None:
            raise Unsupported("item of undefined length without its delimiter")
        return out, pos

    def _undefined_item(self, pos: int) -> tuple[Elements, int]:
        """An item without a length, compared with recent items that began the same way."""
        buf = self.buf
        candidates = self.recent.setdefault(buf[pos:pos + PREFIX], [])
        for chunk, elements in candidates:
            if buf[pos:pos + len(chunk)] == chunk:  # equal bytes scan equally
                return elements, pos + len(chunk)
        elements, end = self.dataset(pos, None)
        candidates.insert(0, (buf[pos:end], elements))
        del candidates[RECENT:]
        return elements, end

    def _codes(self, pos: int, end: int | None) -> tuple[list[Elements], int]:
        """A code sequence's items, scanned once per distinct byte string.

        Without a length, the candidate ends at the next sequence delimiter. Bytes equal to
        a value scanned before scan the same way (the scan reads nothing past a value's
        end), so a hit is exact whatever the candidate; a miss is scanned and remembered.
        """
        buf = self.buf
        stop = end if end is not None else buf.find(self.delimiter, pos) + 8
        if stop > pos:
            found = self.seen.get(buf[pos:stop])
            if found is not None:
                return found, stop
        value, stop = self.items(pos, end)
        self.seen[buf[pos:stop]] = value
        return value, stop


class _Tree:
    """Builds Nodes from scanned items, decoding text with the dataset's character set."""

    def __init__(self, encodings: list[str]) -> None:
        self.encodings = encodings
        # Code values and meanings repeat in every event: decode each distinct value once.
        self.decoded: dict[tuple[bytes, bytes], str] = {}
        # Items of code sequences are shared between nodes (Scanner._codes): by id.
        self.codes: dict[int, tuple[str, str, str]] = {}
        self.numbers: dict[str, list[float]] = {}  # read-only lists, like the nodes
        self.nodes: dict[int, Node] = {}

    def text(self, elements: Elements, tag: int) -> str:
        found = elements.get(tag)
        if found is None or found[0] == b"SQ":
            return ""
        text = self.decoded.get(found)
        if text is None:
            vr, raw = found
            if vr in TEXT_VRS:
                delimiters = {0x5E, 0x3D} if vr == b"PN" else set()
                text = decode_bytes(raw, self.encodings, delimiters).strip("\x00").strip()
            else:
                text = raw.decode("latin-1").strip("\x00").strip()
            self.decoded[found] = text
        return text

    def first(self, elements: Elements, tag: int) -> Elements | None:
        found = elements.get(tag)
        if found is None or found[0] != b"SQ" or not found[1]:
            return None
        item: Elements = found[1][0]
        return item

    def code(self, elements: Elements, tag: int) -> tuple[str, str, str]:
        """Code value, long code value and meaning of a code sequence's first item."""
        item = self.first(elements, tag)
        if item is None:
            return "", "", ""
        found = self.codes.get(id(item))
        if found is None:
            found = (self.text(item, CODE_VALUE), self.text(item, LONG_CODE_VALUE),
                     self.text(item, CODE_MEANING))
            self.codes[id(item)] = found
        return found

    def node(self, elements: Elements) -> Node:
        """Items the scanner found equal (same object) share one Node: the tree is read-only."""
        node = self.nodes.get(id(elements))
        if node is None:
            node = self.nodes[id(elements)] = self._node(elements)
        return node

    def _node(self, elements: Elements) -> Node:
        code, long_code, meaning = self.code(elements, CONCEPT_NAME)
        vt = self.text(elements, VALUE_TYPE)
        node = Node(code=code or long_code, meaning=meaning, vt=vt)
        if vt == "NUM":
            measured = self.first(elements, MEASURED_VALUE)
            if measured is not None:
                raw = self.text(measured, NUMERIC_VALUE)
                if raw:
                    values = self.numbers.get(raw)
                    if values is None:
                        values = self.numbers[raw] = numbers(raw.split("\\"))
                    node.values = values
                    node.number = node.values[0]
                    node.unit = self.code(measured, UNITS)[0]
        elif vt == "CODE":
            node.value_code, _, node.value_meaning = self.code(elements, CONCEPT_CODE)
        elif vt in VALUE_TAGS:
            node.text = self.text(elements, VALUE_TAGS[vt])
        children = elements.get(CONTENT_SEQUENCE)
        if children is not None and children[0] == b"SQ":
            node.children = [self.node(child) for child in children[1]]
        return node


def fast_children(ds: Dataset) -> list[Node]:
    """The root's children from the raw ContentSequence, or Unsupported."""
    items: list[Elements] | None = getattr(ds, PARSED, None)
    raw = ds._dict.get(CONTENT_SEQUENCE)  # type: ignore[call-overload]
    if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
        raise Unsupported("content sequence already decoded")
    if items is None:  # scanned here unless imports.reading did it while reading the file
        scanner = Scanner(raw.value, raw.is_implicit_VR, raw.is_little_endian)
        items, _ = scanner.items(0, len(raw.value))
    builder = _Tree(encodings(ds))
    return [builder.node(item) for item in items]


def encodings(ds: Dataset) -> list[str]:
    """The Python codecs of the dataset's text, as decode_bytes wants them.

    pydicom gives a list of codecs when the dataset has a Specific Character Set and its
    default (a single str, 'iso8859') when it has none: list() of that is its letters, and
    every decoded text then logged "Unknown encoding 'i'".
    """
    charset = ds._character_set  # already Python codec names (pydicom converted them)
    names = [charset] if isinstance(charset, str) else list(charset)
    return [name or default_encoding for name in names] or [default_encoding]
