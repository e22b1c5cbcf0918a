"""README's storescu section against a running store node: the flags and failures it names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
from pydicom.uid import UID

from tests.conftest import REPO, require_tool, samples_dir, wait_port
from tests.store_helpers import dcmtk_env, make_node

RADIOPHARMACEUTICAL_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.68"


def send(port: int, called: str, *args: str) -> subprocess.CompletedProcess[str]:
    *options, path = args
    argv = [require_tool("storescu"), *options, "-aet", "CT1", "-aec", called,
            "127.0.0.1", str(port), path]
    return subprocess.run(argv, env=dcmtk_env(), capture_output=True, text=True, timeout=60)


def test_the_readme_names_the_flags_and_failures_storescu_shows(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    readme = (REPO / "README.md").read_text()
    rdsr = pydicom.dcmread(samples_dir() / "openrem" / "RF-RDSR-GE-OECEliteMiniView.dcm")
    rdsr.SOPClassUID = rdsr.file_meta.MediaStorageSOPClassUID = UID(RADIOPHARMACEUTICAL_DOSE_SR)
    report = tmp_path / "rrdsr.dcm"
    rdsr.save_as(report)
    image = tmp_path / "dx-jpeg-lossless.dcm"
    subprocess.run([require_tool("dcmcjpeg"), "+e1",
                    str(samples_dir() / "openrem" / "DX-Im-GE_XR220-2.dcm"), str(image)],
                   check=True, capture_output=True, timeout=60)
    node = make_node(ae_title="DOSEPORT")
    spawn("store", "run", str(node.pk))
    wait_port(node.port, timeout=20)

    without_r = send(node.port, "DOSEPORT", str(report))
    assert without_r.returncode != 0
    said = f"E: No presentation context for: (SRr) {RADIOPHARMACEUTICAL_DOSE_SR}"
    assert said in without_r.stderr and said in readme
    assert send(node.port, "DOSEPORT", "-R", str(report)).returncode == 0

    without_xs = send(node.port, "DOSEPORT", "-R", str(image))
    assert without_xs.returncode != 0
    for said in ("unable to convert dataset from 'JPEG Lossless", "DIMSE Failed to send message"):
        assert said in without_xs.stderr and said in readme.replace("\n  ", " ")
    assert send(node.port, "DOSEPORT", "-R", "-xs", str(image)).returncode == 0

    wrong_called = send(node.port, "WRONG", "-R", str(report))
    said = "Reason: Called AE Title Not Recognized"
    assert wrong_called.returncode != 0 and said in wrong_called.stderr and said in readme
