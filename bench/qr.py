"""Query + retrieve of N studies from a private Orthanc: `doseport qr` vs a DCMTK shell loop.

Both do the same selection: one study C-FIND (CT), a series C-FIND per study, an image
C-FIND per SR series (is it an RDSR?), and a C-MOVE of each RDSR series to the same DCMTK
`storescp --ignore`. Run: .venv/bin/python bench/qr.py [--studies 200] [--repeat 3]
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("Query-retrieve").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
DAY = "20240102"

LOOP = r"""
set -eu
H=127.0.0.1; P=$1; AEC=$2; DEST=$3; DAY=$4; AET=FINDSCU
q() { findscu -S -aet $AET -aec $AEC "$@" $H $P 2>&1 < /dev/null; }
uid() { awk -v tag="$1" '$2 == tag { gsub(/[\[\]]/, "", $4); print $4 }'; }
moved=0
for s in $(q -k QueryRetrieveLevel=STUDY -k StudyDate=$DAY -k ModalitiesInStudy=CT \
            -k StudyInstanceUID -k NumberOfStudyRelatedSeries | uid '(0020,000d)'); do
  q -k QueryRetrieveLevel=SERIES -k StudyInstanceUID=$s -k SeriesInstanceUID -k Modality \
    -k SeriesDescription -k NumberOfSeriesRelatedInstances \
    | awk '$2 == "(0008,0060)" { m = $4 }
           $2 == "(0020,000e)" { gsub(/[\[\]]/, "", $4); print m, $4 }' > series.txt
  while read -r modality series; do
    [ "$modality" = "[SR]" ] || continue
    if q -k QueryRetrieveLevel=IMAGE -k StudyInstanceUID=$s -k SeriesInstanceUID=$series \
         -k SOPInstanceUID -k SOPClassUID | grep -c -E "XRayRadiationDoseSR|88\.67" >/dev/null; then
      movescu -S -aet $AET -aec $AEC -aem $DEST -k QueryRetrieveLevel=SERIES \
        -k StudyInstanceUID=$s -k SeriesInstanceUID=$series $H $P < /dev/null
      moved=$((moved + 1))
    fi
  done < series.txt
done
echo "moved $moved"
"""


def load(orthanc: object, studies: int) -> None:
    from pydicom import Dataset
    from pydicom.uid import generate_uid

    from tests.orthanc import synthetic_image

    for n in range(studies):
        study = Dataset()
        study.PatientID = f"BENCH{n:04d}"
        study.StudyInstanceUID = generate_uid()
        study.StudyDate, study.StudyTime = DAY, "101500"
        study.StudyDescription = "Bench CT"
        ct = generate_uid()
        for i in (1, 2):
            orthanc.upload(synthetic_image(study, "CT", ct, i, "Axial")[1])  # type: ignore[attr-defined]
        orthanc.upload(synthetic_image(study, "SR", generate_uid(), 1, "Dose", RDSR)[1])  # type: ignore[attr-defined]


class StoreSCP:
    """DCMTK storescp discarding what it receives; counts objects from its log."""

    def __init__(self, folder: Path, port: int) -> None:
        self.log = folder / "storescp.log"
        self.port = port
        self.proc = subprocess.Popen(
            ["storescp", "-v", "--ignore", "-aet", "STORESCP", str(port)],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env={**os.environ, "TCP_NODELAY": "1"},
        )

    def received(self) -> int:
        return self.log.read_text(errors="replace").count("Received Store Request")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def setup_django(home: Path) -> None:
    os.environ["DOSEPORT_HOME"] = str(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "doseport.settings"
    from lib.private import prepare_home

    prepare_home(home)  # what `doseport` does first: the settings only read the data folder
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def run_doseport(remote_id: int, store_id: int) -> float:
    from django.core.management import call_command

    started = time.perf_counter()
    try:
        call_command("qr", str(remote_id), str(store_id), "-ct", "-sd", "2024-01-02", "--dup",
                     "--json", "--arrival-timeout", "0", stdout=open(os.devnull, "w"))  # noqa: SIM115
    except SystemExit as exc:
        if exc.code:
            raise RuntimeError(f"doseport qr exited {exc.code}") from None
    return time.perf_counter() - started


def run_dcmtk(folder: Path, port: int, nodelay: bool) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    started = time.perf_counter()
    out = subprocess.run(["bash", "-c", LOOP, "loop", str(port), "ORTHANC", "STORESCP", DAY],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
    return took, out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=200, help="studies (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--orthanc-nodelay", action="store_true",
                        help="start Orthanc with TCP_NODELAY=1 (default: as shipped)")
    args = parser.parse_args()
    for tool in ("Orthanc", "findscu", "movescu", "storescp"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/qr.py: {tool} is not installed")
    folder = Path(tempfile.mkdtemp(prefix="doseport-bench-qr-"))
    setup_django(folder / "home")
    from nodes.models import RemoteNode, StoreNode
    from tests.orthanc import Orthanc, free_port

    store_port = free_port()
    scp = StoreSCP(folder, store_port)
    orthanc = Orthanc(folder / "orthanc", {
        "DPQUERY": ("127.0.0.1", 104), "FINDSCU": ("127.0.0.1", 104),
        "STORESCP": ("127.0.0.1", store_port),
    })
    if args.orthanc_nodelay:
        orthanc.env["TCP_NODELAY"] = "1"
    orthanc.start()
    try:
        t0 = time.perf_counter()
        load(orthanc, args.studies)
        load_s = time.perf_counter() - t0
        remote = RemoteNode.objects.create(name="orthanc", ae_title="ORTHANC", host="127.0.0.1",
                                           port=orthanc.dicom_port, calling_ae_title="DPQUERY")
        store = StoreNode.objects.create(name="storescp", ae_title="STORESCP", port=store_port,
                                         controlled=False, host="127.0.0.1")
        results: dict[str, list[float]] = {"doseport": [], "dcmtk_nodelay": [], "dcmtk_default": []}
        counts: dict[str, int] = {}
        for _ in range(args.repeat):
            before = scp.received()
            results["doseport"].append(run_doseport(remote.pk, store.pk))
            counts["doseport"] = scp.received() - before
            for key, nodelay in (("dcmtk_nodelay", True), ("dcmtk_default", False)):
                before = scp.received()
                took, _ = run_dcmtk(folder, orthanc.dicom_port, nodelay)
                results[key].append(took)
                counts[key] = scp.received() - before
    finally:
        orthanc.stop()
        scp.stop()
    median = {k: round(statistics.median(v), 3) for k, v in results.items()}
    print(json.dumps({
        "studies": args.studies, "repeat": args.repeat,
        "orthanc_nodelay": args.orthanc_nodelay, "orthanc_load_s": round(load_s, 1),
        "median_s": median, "objects_moved_last_run": counts,
        "ratio_vs_dcmtk_nodelay": round(median["doseport"] / median["dcmtk_nodelay"], 3),
        "ratio_vs_dcmtk_default": round(median["doseport"] / median["dcmtk_default"], 3),
        "runs_s": {k: [round(x, 3) for x in v] for k, v in results.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
