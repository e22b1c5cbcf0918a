"""A private Orthanc on free loopback ports with its own JSON config, for interop tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Orthanc:
    def __init__(self, folder: Path, modalities: dict[str, tuple[str, int]],
                 aet: str = "ORTHANC") -> None:
        """`modalities`: {AE title: (host, port)} allowed to query and to receive moves."""
        self.folder = folder
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.modalities = modalities
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}  # e.g. {"TCP_NODELAY": "1"} (DCMTK inside Orthanc)

    def config(self) -> dict[str, Any]:
        return {
            "Name": "doseport-test", "DicomAet": self.aet, "DicomPort": self.dicom_port,
            "HttpPort": self.http_port, "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"), "Plugins": [],
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "DicomCheckModalityHost": False, "DicomCheckCalledAet": False,
            "DicomModalities": {
                f"m{n}": [aet, host, port]
                for n, (aet, (host, port)) in enumerate(self.modalities.items())
            },
            "SynchronousCMove": True, "DicomScpTimeout": 30, "StableAge": 1,
            "HttpServerEnabled": True, "DicomServerEnabled": True, "ConcurrentJobs": 1,
            "SaveJobs": False,
        }

    def start(self) -> Orthanc:
        exe = shutil.which("Orthanc")
        if exe is None:
            raise RuntimeError("Orthanc is not installed (call require_tool first in tests)")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=2))
        log = open(self.folder / "orthanc.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen([exe, str(path)], stdout=log, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("Orthanc exited; see orthanc.log") from None
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url(path), timeout=10) as rsp:
            return json.loads(rsp.read())

    def upload(self, data: bytes) -> dict[str, Any]:
        """POST one DICOM file to /instances; returns Orthanc's answer."""
        req = urllib.request.Request(self.url("/instances"), data=data, method="POST",
                                     headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(req, timeout=30) as rsp:
            answer: dict[str, Any] = json.loads(rsp.read())
        return answer

    def upload_file(self, path: Path) -> dict[str, Any]:
        return self.upload(path.read_bytes())


STUDY_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
              "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription", "StudyID")
IMAGE_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
               "MG": "1.2.840.10008.5.1.4.1.1.1.2", "CR": "1.2.840.10008.5.1.4.1.1.1"}


def synthetic_image(study: Any, modality: str, series_uid: str, number: int,
                    description: str = "Synthetic", sop_class: str = "") -> tuple[str, bytes]:
    """A small image in the study of dataset `study`: (SOP Instance UID, file bytes)."""
    from io import BytesIO

    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    for key in STUDY_KEYS:
        if key in study:
            setattr(ds, key, study.get(key))
    ds.SOPClassUID = sop_class or IMAGE_CLASS[modality]
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.SeriesNumber = 100
    ds.InstanceNumber = number
    ds.SeriesDescription = description
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(128)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return str(ds.SOPInstanceUID), out.getvalue()
