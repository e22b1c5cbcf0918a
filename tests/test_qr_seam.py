"""lib.dicom find/move on a real loopback peer: DICOM trouble comes back as a result."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pydicom import Dataset
from pynetdicom.association import Association

from lib import dicom
from tests.fake_remote import FakeRemote, series_of


def study_key() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    return ds


@contextmanager
def associated(model: str) -> Iterator[Association]:
    """An association with a loopback fake remote; the remote stops at the end."""
    fake = FakeRemote(series_of("1.2.3.1", "CT", 1)).start()
    try:
        peer = dicom.Peer(ae_title=fake.ae_title, host="127.0.0.1", port=fake.port,
                          calling_ae_title="DPQUERY")
        assoc = dicom.open_association(peer, [model])
        assert not isinstance(assoc, dicom.AssocFailure), assoc.reason
        yield assoc
    finally:
        fake.stop()


def test_it_reports_a_find_on_a_released_association_instead_of_raising() -> None:
    with associated(dicom.STUDY_ROOT_FIND) as assoc:
        found = dicom.find(assoc, study_key())
        assert found.ok and len(found.matches) == 1
        dicom.close(assoc)
        result = dicom.find(assoc, study_key())
    assert not result.ok and result.association_lost and result.matches == []
    assert result.reason.startswith("C-FIND failed: ")


def test_it_reports_a_move_on_a_released_association_instead_of_raising() -> None:
    with associated(dicom.STUDY_ROOT_MOVE) as assoc:
        dicom.close(assoc)
        result = dicom.move(assoc, study_key(), "NOWHERE")
    assert not result.ok and result.association_lost
    assert result.reason.startswith("retrieve failed: ")
