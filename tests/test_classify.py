"""Classification: which extractor, if any, reads an object (issue 3 rules)."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from imports import classify as c
from imports.classify import classify, classify_sop_class
from tests.builders.rdsr import (
    COMPREHENSIVE_SR,
    ENHANCED_SR,
    build_ct_image,
    build_ct_rdsr,
    build_dx_image,
    build_mg_image,
    build_mg_rdsr,
    build_non_dose_sr,
    build_projection_rdsr,
    build_rrdsr,
    code,
)


def _image(sop_class: str, modality: str, **fields: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    for key, value in fields.items():
        setattr(ds, key, value)
    return ds


def test_it_types_xray_dose_reports_by_template() -> None:
    assert classify(build_ct_rdsr(1)).kind == c.CT_RDSR
    assert classify(build_projection_rdsr(1)).kind == c.PROJECTION_RDSR
    assert classify(build_mg_rdsr()).kind == c.PROJECTION_RDSR
    assert classify(build_rrdsr()).kind == c.NM_RDSR


@pytest.mark.parametrize("sop_class", [ENHANCED_SR, COMPREHENSIVE_SR, c.ENHANCED_XRAY_RDSR])
def test_it_accepts_other_sr_classes_with_the_dose_report_root(sop_class: str) -> None:
    ds = build_ct_rdsr(1, sop_class=sop_class)
    assert classify(ds).kind == c.CT_RDSR


def test_it_infers_the_type_when_the_template_is_missing() -> None:
    assert classify(build_ct_rdsr(1, template="")).kind == c.CT_RDSR
    ds = build_projection_rdsr(1)
    del ds.ContentTemplateSequence
    assert classify(ds).kind == c.PROJECTION_RDSR


def test_it_reads_the_siemens_radiation_summary_as_rf() -> None:
    ds = build_non_dose_sr()
    ds.SOPClassUID = ENHANCED_SR
    ds.ConceptNameCodeSequence = Sequence([code("C-10", "Radiation Summary Report",
                                                "99SMS_RADSUM")])
    assert classify(ds).kind == c.RF_SIEMENS_SUMMARY
    ds.SOPClassUID = COMPREHENSIVE_SR  # only the Enhanced SR form is known
    assert not classify(ds).importable


def test_it_rejects_srs_that_are_not_dose_reports_with_the_reason() -> None:
    verdict = classify(build_non_dose_sr())
    assert verdict.kind is None and not verdict.importable
    assert verdict.reason == "structured report is not a dose report (root concept 18748-4, LN)"


@pytest.mark.parametrize(("sop_class", "modality"), [
    (c.CR_IMAGE, "CR"), (c.DX_PRESENTATION, "DX"), (c.DX_PROCESSING, "DX"),
    (c.DX_PRESENTATION, "PX"),
])
def test_it_reads_radiography_images(sop_class: str, modality: str) -> None:
    assert classify(_image(sop_class, modality)).kind == c.DX_IMAGE
    assert classify(build_dx_image()).kind == c.DX_IMAGE


def test_it_reads_mammography_images_and_original_mg_secondary_captures() -> None:
    assert classify(build_mg_image()).kind == c.MG_IMAGE
    assert classify(build_mg_image(for_processing=True)).kind == c.MG_IMAGE
    sc = _image(c.SECONDARY_CAPTURE, "MG", ImageType=["ORIGINAL", "PRIMARY"])
    assert classify(sc).kind == c.MG_IMAGE
    derived = _image(c.SECONDARY_CAPTURE, "MG", ImageType=["DERIVED", "SECONDARY"])
    assert not classify(derived).importable


@pytest.mark.parametrize("description", ["Dose Info", "DOSE INFO", "dose info"])
def test_it_reads_philips_ct_dose_screens(description: str) -> None:
    ds = _image(c.SECONDARY_CAPTURE, "CT", Manufacturer="Philips Medical Systems",
                SeriesDescription=description)
    assert classify(ds).kind == c.CT_PHILIPS_SCREEN
    ds.Manufacturer = "SIEMENS"
    assert "not a known dose screen" in classify(ds).reason


def test_it_reads_nm_and_pet_images() -> None:
    assert classify(_image(c.NM_IMAGE_STORAGE, "NM")).kind == c.NM_IMAGE
    assert classify(_image(c.PET_IMAGE_STORAGE, "PT")).kind == c.NM_IMAGE


def test_it_rejects_other_objects_with_the_reason() -> None:
    verdict = classify(build_ct_image())
    assert verdict.kind is None
    assert verdict.reason == "SOP class 1.2.840.10008.5.1.4.1.1.2 holds no dose data we read"
    assert "(missing)" in classify(Dataset()).reason


def test_it_decides_from_the_sop_class_alone_only_when_that_is_certain() -> None:
    assert classify_sop_class(c.XRAY_RDSR) == "importable"
    assert classify_sop_class(c.RADIOPHARMACEUTICAL_RDSR) == "importable"
    for needs_header in (ENHANCED_SR, COMPREHENSIVE_SR, c.SECONDARY_CAPTURE, c.CR_IMAGE,
                         c.DX_PRESENTATION, c.MG_PROCESSING, c.NM_IMAGE_STORAGE,
                         c.PET_IMAGE_STORAGE):
        assert classify_sop_class(needs_header) == "needs_header", needs_header
    assert classify_sop_class("1.2.840.10008.5.1.4.1.1.2") == "not_importable"
