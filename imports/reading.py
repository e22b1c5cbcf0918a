"""How every importer reads DICOM files: one pydicom configuration, one file reader.

pydicom parses a sequence of undefined length into Datasets while it reads the file, and
most vendors write the SR ContentSequence that way: a 300-event fluoroscopy report became
50,000 Datasets (0.7 s) before the extractor saw it, and the content-tree reader that
works on raw bytes (`imports.extractors.sr_fast`) could not be used. `read_file` stops
pydicom at an undefined-length ContentSequence, scans the sequence with that reader (to
find its end, keeping what the tree needs), stores its bytes as the raw element pydicom
keeps for a defined-length sequence, and lets pydicom read the rest of the file. Anything
the scanner does not handle leaves the sequence and the rest of the file to pydicom."""

from __future__ import annotations

import logging
import mmap
from pathlib import Path
from struct import error as StructError
from typing import BinaryIO

from pydicom import Dataset
from pydicom import config as pydicom_config
from pydicom.dataelem import RawDataElement
from pydicom.filereader import dcmread, read_dataset, read_partial
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from imports.extractors.sr_fast import PARSED, Scanner, Unsupported

CONTENT_SEQUENCE = 0x0040A730
CONTENT_SEQUENCE_LE = b"\x40\x00\x30\xa7"
CONTENT_SEQUENCE_BE = b"\x00\x40\xa7\x30"
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
UNDEFINED = 0xFFFFFFFF

log = logging.getLogger(__name__)


def configure_pydicom() -> None:
    """pydicom settings shared by the worker and `doseport import`.

    Vendor objects often break VR rules (IS '161.3', DS with a comma): read them
    leniently and quietly rather than failing or logging each value.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


def _stop(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS or (tag == CONTENT_SEQUENCE and length == UNDEFINED)


def _at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def read_file(path: Path, force: bool = False) -> Dataset:
    """Like `dcmread(path, stop_before_pixels=True)`, with the ContentSequence kept raw."""
    with path.open("rb") as fp:
        ds = read_partial(fp, stop_when=_stop, force=force)
        if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            # read_partial inflated into a buffer of its own: our file position means
            # nothing. Rare enough to read the plain way.
            fp.seek(0)
            return dcmread(fp, stop_before_pixels=True, force=force)
        _read_rest(fp, ds)
    return ds


def _read_rest(fp: BinaryIO, ds: Dataset) -> None:
    """After a stop: scan the ContentSequence, then let pydicom read to the end."""
    implicit, little = ds.original_encoding
    start = fp.tell()
    header = fp.read(8)
    fp.seek(start)
    if implicit is None or little is None or len(header) < 8:
        return
    if header[:4] != (CONTENT_SEQUENCE_LE if little else CONTENT_SEQUENCE_BE):
        return  # stopped at pixel data: nothing more to read
    # The element itself says how it is encoded (some files contradict their meta).
    implicit = header[4:8] == b"\xff\xff\xff\xff"
    _keep_raw_content(fp, ds, start, implicit, little)
    rest = read_dataset(
        fp, implicit, little, stop_when=_at_pixel_data, parent_encoding=ds._character_set,
    )
    ds._dict.update(rest._dict)  # raw, as one dcmread would have left them


def _keep_raw_content(
    fp: BinaryIO, ds: Dataset, start: int, implicit: bool, little: bool
) -> None:
    """Keep the sequence's bytes as a raw element and move past it; or leave fp alone."""
    value_start = start + (8 if implicit else 12)
    try:
        with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            items, end = Scanner(buf, implicit, little).items(value_start, None)
            value = buf[value_start:end - 8]  # without the sequence delimiter
    except (Unsupported, StructError, ValueError, OSError) as exc:
        log.debug("content sequence left to pydicom: %s", exc)
        return
    ds._dict[BaseTag(CONTENT_SEQUENCE)] = RawDataElement(
        BaseTag(CONTENT_SEQUENCE), None if implicit else "SQ", len(value), value, value_start,
        implicit, little,
    )
    setattr(ds, PARSED, items)  # the tree builder uses them: no second scan
    fp.seek(end)
