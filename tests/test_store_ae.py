"""The store AE factory: every value explicit, dose SR classes present, syntax preference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import config as pydicom_config
from pynetdicom import _config
from pynetdicom.presentation import build_context, negotiate_as_acceptor

from store.ae import DOSE_SR_CLASSES, VERIFICATION, AESettings, make_store_ae

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
# Process-wide options make_store_ae() sets for a node process (store.ae.configure_pynetdicom).
PYNETDICOM_GLOBALS = ("LOG_HANDLER_LEVEL", "STORE_RECV_CHUNKED_DATASET",
                      "ENFORCE_UID_CONFORMANCE")
Globals = tuple[dict[str, object], int]


def _globals() -> Globals:
    return ({name: getattr(_config, name) for name in PYNETDICOM_GLOBALS},
            pydicom_config.settings.reading_validation_mode)


@pytest.fixture(scope="module", autouse=True)
def found() -> Iterator[Globals]:
    """A known state that differs from a node process's (pydicom's default reading mode),
    set for this file whatever earlier files left (an in-process `doseport import` sets
    IGNORE), and put back afterwards."""
    outside = _globals()
    pydicom_config.settings.reading_validation_mode = pydicom_config.WARN
    yield _globals()
    pydicom_config.settings.reading_validation_mode = outside[1]


@pytest.fixture(autouse=True)
def restore_globals() -> Iterator[None]:
    """Building a node AE changes pynetdicom and pydicom globals; later tests get them back."""
    saved = {name: getattr(_config, name) for name in PYNETDICOM_GLOBALS}
    mode = pydicom_config.settings.reading_validation_mode
    yield
    for name, value in saved.items():
        setattr(_config, name, value)
    pydicom_config.settings.reading_validation_mode = mode


def _ae():  # type: ignore[no-untyped-def]
    return make_store_ae(AESettings(ae_title="DOSESTORE", port=11112,
                                    allowed_calling_aets=("CT1", "PACS")))


def test_it_builds_the_ae_with_every_value_explicit() -> None:
    ae = _ae()
    assert ae.ae_title == "DOSESTORE"
    assert ae.maximum_associations == 20
    assert ae.maximum_pdu_size == 4 * 1024 * 1024
    assert (ae.acse_timeout, ae.dimse_timeout, ae.network_timeout) == (30, 60, 60)
    assert ae.require_called_aet is True
    assert ae.require_calling_aet == ["CT1", "PACS"]


def test_it_supports_the_dose_sr_classes_pynetdicom_lacks_and_verification() -> None:
    supported = {str(cx.abstract_syntax) for cx in _ae().supported_contexts}
    assert set(DOSE_SR_CLASSES) | {VERIFICATION, "1.2.840.10008.5.1.4.1.1.88.67"} <= supported
    assert len(supported) > 150


def test_it_keeps_compressed_objects_and_prefers_explicit_over_implicit_vr() -> None:
    ae = _ae()
    proposed = [build_context(DOSE_SR_CLASSES[0], [IMPLICIT, EXPLICIT]),
                build_context("1.2.840.10008.5.1.4.1.1.1.1", [IMPLICIT, EXPLICIT, JPEG_LOSSLESS])]
    for number, cx in enumerate(proposed):
        cx.context_id = 2 * number + 1
    accepted, _ = negotiate_as_acceptor(proposed, ae.supported_contexts)
    assert [cx.transfer_syntax[0] for cx in accepted] == [EXPLICIT, JPEG_LOSSLESS]


@pytest.mark.django_db
def test_it_lets_doseports_own_health_check_through_an_allow_list() -> None:
    from tests.store_helpers import make_node

    node = make_node(allowed_calling_aets="CT1")
    assert AESettings.for_node(node).allowed_calling_aets == ("CT1", "DOSEPORT-HC")
    open_node = make_node(name="open", port=node.port + 1)
    assert AESettings.for_node(open_node).allowed_calling_aets == ()


def test_it_sets_the_node_process_globals() -> None:
    _ae()
    assert _config.ENFORCE_UID_CONFORMANCE is False
    assert _config.STORE_RECV_CHUNKED_DATASET is False
    assert pydicom_config.settings.reading_validation_mode == pydicom_config.IGNORE


def test_it_leaves_the_globals_as_it_found_them_for_later_tests(found: Globals) -> None:
    # Last in the file: every test above built a node AE, and the fixture undid it.
    assert found[1] != pydicom_config.IGNORE  # what a node AE sets: this test can fail
    assert _globals() == found
