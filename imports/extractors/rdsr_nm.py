"""Radiopharmaceutical Radiation Dose SR (TID 10021)."""

from __future__ import annotations

from typing import Any

from pydicom import Dataset

from imports.classify import NM_RDSR
from imports.extractors.data import ReportData
from imports.extractors.rdsr_common import limit, read_report
from imports.extractors.sr import Node

ADMINISTRATION = "113502"
AGENT = ("F-61FDB", "349358000")
RADIONUCLIDE = ("C-10072", "89457008")
HALF_LIFE = ("R-42806", "304283003")
ROUTE = ("G-C340", "410675002")
SUBJECT_AGE = "121033"
SUBJECT_SEX = "121032"


def extract(ds: Dataset) -> ReportData:
    root, study = read_report(ds, modality_type="NM")
    administrations = [
        _administration(node, i) for i, node in enumerate(root.all(ADMINISTRATION))
    ]
    return ReportData(kind=NM_RDSR, study=study, administrations=administrations)


def _administration(node: Node, ordinal: int) -> dict[str, Any]:
    agent = node.first(*AGENT)
    nuclide = (agent.first(*RADIONUCLIDE) if agent else None) or node.first(*RADIONUCLIDE)
    half_life_node = (agent.first(*HALF_LIFE) if agent else None) or node.first(*HALF_LIFE)
    effective = node.find_deep("113839")
    return {
        "ordinal": ordinal,
        "from_report": True,
        "event_uid": limit(node.txt("113503"), 128),
        "radiopharmaceutical_agent": limit(agent.as_text() if agent else "", 128),
        "radionuclide": limit(nuclide.as_text() if nuclide else "", 128),
        "radionuclide_half_life_s": half_life_node.as_number("s") if half_life_node else None,
        "administered_activity_MBq": node.num("113507", "MBq"),
        "radiopharmaceutical_start_datetime": node.datetime("123003"),
        "radiopharmaceutical_stop_datetime": node.datetime("123004"),
        "route_of_administration": limit(node.txt(*ROUTE), 128),
        "effective_dose_mSv": effective.as_number("mSv") if effective else None,
    }
