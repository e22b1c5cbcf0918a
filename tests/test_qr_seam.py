"""lib.dicom's session on a real loopback peer: DICOM trouble comes back as a result value,
and no pynetdicom association leaves lib/dicom.py."""

from __future__ import annotations

import re
from pathlib import Path

from pydicom import Dataset

from lib import dicom
from tests.conftest import REPO, free_port
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, series_of

VERIFICATION = "1.2.840.10008.1.1"


def study_key() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    return ds


def peer(port: int) -> dicom.Peer:
    return dicom.Peer(ae_title="FAKEPACS", host="127.0.0.1", port=port,
                      calling_ae_title="DPQUERY", dimse_timeout=10)


def test_it_runs_several_requests_on_one_association_and_releases_it() -> None:
    with FakeRemote(series_of("1.2.3.1", "CT", 1)) as fake:
        contexts = [dicom.STUDY_ROOT_FIND, VERIFICATION]
        with dicom.connect(peer(fake.port), contexts) as session:
            first, second = session.find(study_key()), session.find(study_key())
            assert first.ok and second.ok and len(first.matches) == 1
            echo = session.echo()
            assert echo.ok and echo.status == 0 and echo.rtt_ms is not None
            assert session.is_open
        assert not session.is_open
        assert fake.associations == fake.released == 1 and fake.aborted == 0


def test_it_says_why_it_cannot_associate_instead_of_raising() -> None:
    session = dicom.connect(peer(free_port()), [dicom.STUDY_ROOT_FIND])
    result = session.find(study_key())
    assert not result.ok and result.association_lost
    assert "connection refused" in result.reason
    failure = session.open()
    assert failure is not None and "connection refused" in failure.reason


def test_it_re_associates_after_close() -> None:
    with FakeRemote(series_of("1.2.3.1", "CT", 1)) as fake:
        with dicom.connect(peer(fake.port), [dicom.STUDY_ROOT_FIND]) as session:
            assert session.find(study_key()).ok
            session.close()
            assert session.find(study_key()).ok
        assert fake.associations == fake.released == 2


def test_it_names_a_connection_lost_mid_retrieve() -> None:
    objs = series_of("1.2.3.1", "SR", 5, sop_class=RDSR)
    with StoreSCP() as scp, FakeRemote(
        objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}
    ) as fake:
        fake.die_after = 2
        key = Dataset()
        key.QueryRetrieveLevel = "SERIES"
        key.StudyInstanceUID, key.SeriesInstanceUID = "1.2.3.1", objs[0].series
        with dicom.connect(peer(fake.port), [dicom.STUDY_ROOT_MOVE]) as session:
            result = session.move(key, "DPSTORE")
            assert not session.is_open
    assert not result.ok and result.association_lost
    assert result.reason == "connection to the remote lost during the retrieve"
    assert len(scp.received) == 2


ENGINE = ("session.py", "run.py", "study.py", "series.py", "select.py", "move.py",
          "getstore.py", "jobs.py", "tasks.py", "arrivals.py")


def test_it_keeps_associations_inside_lib_dicom() -> None:
    """The QR engine talks to remotes only through lib.dicom's session."""
    for name in ENGINE:
        text = (Path(REPO) / "qr" / name).read_text()
        for needle in (r"import pynetdicom", r"from pynetdicom", r"open_association",
                       r"\bassoc\b", r"send_c_"):
            assert not re.search(needle, text), f"qr/{name}: {needle}"


def test_it_tells_which_services_the_remote_accepted() -> None:
    with FakeRemote(series_of("1.2.3.1", "CT", 1)) as fake:
        with dicom.connect(peer(fake.port), [dicom.STUDY_ROOT_FIND]) as session:
            assert not session.accepts(dicom.STUDY_ROOT_FIND)  # not associated yet
            assert session.open() is None
            assert session.accepts(dicom.STUDY_ROOT_FIND)
            assert not session.accepts(dicom.STUDY_ROOT_GET)  # not proposed
