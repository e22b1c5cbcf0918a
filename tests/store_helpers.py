"""Helpers shared by the store node tests: a node row, DCMTK senders, output parsing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from nodes.models import StoreNode
from store.spool import node_spool_dir
from tests.conftest import free_port, require_tool

SUCCESS_LINE = "Received Store Response (Success)"


def make_node(**fields: object) -> StoreNode:
    values: dict[str, object] = {
        "name": "store-under-test", "ae_title": "DOSESTORE", "port": free_port(),
        "bind_address": "127.0.0.1", "controlled": True,
    }
    values.update(fields)
    node = StoreNode.objects.create(**values)
    # Ids can repeat between tests (the database is emptied): never inherit a spool.
    spool = node_spool_dir(node.pk)
    if spool.is_symlink() or spool.is_file():
        spool.unlink()
    elif spool.exists():
        shutil.rmtree(spool)
    return node


def dcmtk_env(nodelay: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    else:
        env.pop("TCP_NODELAY", None)
    return env


def storescu(
    node: StoreNode, files: list[Path], calling: str = "STORESCU", timeout: float = 120,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Send `files` over one association (-R: propose exactly their SOP classes)."""
    exe = require_tool("storescu")
    argv = [
        exe, "-v", "-R", "-aet", calling, "-aec", node.ae_title, *extra,
        "127.0.0.1", str(node.port), *map(str, files),
    ]
    return subprocess.run(
        argv, env=dcmtk_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def storescu_popen(
    node: StoreNode, files: list[Path], calling: str = "STORESCU"
) -> subprocess.Popen[str]:
    exe = require_tool("storescu")
    argv = [
        exe, "-v", "-R", "-aet", calling, "-aec", node.ae_title,
        "127.0.0.1", str(node.port), *map(str, files),
    ]
    return subprocess.Popen(
        argv, env=dcmtk_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def acknowledged(output: str) -> list[str]:
    """File paths whose C-STORE was answered Success, from `storescu -v` output."""
    done: list[str] = []
    current: str | None = None
    for line in output.splitlines():
        sent = re.search(r"Sending file: (.+)$", line)
        if sent:
            current = sent.group(1).strip()
        elif SUCCESS_LINE in line and current is not None:
            done.append(current)
            current = None
    return done


def sop_uid(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
               .SOPInstanceUID)


def echoscu(node: StoreNode, calling: str = "ECHOSCU") -> subprocess.CompletedProcess[str]:
    exe = require_tool("echoscu")
    return subprocess.run(
        [exe, "-aet", calling, "-aec", node.ae_title, "127.0.0.1", str(node.port)],
        env=dcmtk_env(), capture_output=True, text=True, timeout=30, check=False,
    )


def dcmtk_readable(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split files into those DCMTK can parse and those it cannot (sent with pynetdicom)."""
    exe = require_tool("dcmdump")
    good: list[Path] = []
    bad: list[Path] = []
    for path in files:
        probe = subprocess.run([exe, "-q", str(path)], capture_output=True, timeout=30,
                               check=False)
        (good if probe.returncode == 0 else bad).append(path)
    return good, bad


def pynetdicom_send(node: StoreNode, files: list[Path], calling: str = "PYSCU") -> list[int]:
    """Send with pynetdicom (for files DCMTK refuses to parse); returns the statuses."""
    from pynetdicom import AE

    datasets = [dcmread(path) for path in files]
    ae = AE(ae_title=calling)
    for uid in {str(ds.SOPClassUID) for ds in datasets}:
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
    assert assoc.is_established
    statuses = []
    try:
        for ds in datasets:
            rsp = assoc.send_c_store(ds)
            statuses.append(int(getattr(rsp, "Status", -1)))
    finally:
        assoc.release()
    return statuses


def drain(proc: subprocess.Popen[bytes], log: Path) -> subprocess.Popen[bytes]:
    """Copy a spawned child's output to `log` so that a full pipe never blocks it."""
    import threading

    def copy() -> None:
        assert proc.stdout is not None
        with log.open("ab") as out:
            for line in proc.stdout:
                out.write(line)
                out.flush()

    threading.Thread(target=copy, daemon=True).start()
    return proc


def start_node_and_worker(spawn, node: StoreNode, logs: Path, *extra: str) -> None:  # type: ignore[no-untyped-def]
    """`doseport store run N` and `doseport worker` as children, output drained to logs/."""
    from tests.conftest import wait_port

    logs.mkdir(parents=True, exist_ok=True)
    drain(spawn("store", "run", str(node.pk), *extra), logs / "node.log")
    drain(spawn("worker"), logs / "worker.log")
    wait_port(node.port, timeout=20)


def encode_dataset(ds: Dataset, implicit: bool = False) -> bytes:
    """A data set's bytes as they travel in a C-STORE (little endian, no file meta)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()
