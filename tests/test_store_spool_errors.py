"""A full, read-only or broken spool answers 0xA700, leaves nothing behind, and recovers
without a restart once the spool is usable again."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.models import StoreRuntime
from store.spool import node_spool_dir
from tests.builders.rdsr import build_ct_rdsr, write
from tests.conftest import wait_port
from tests.store_helpers import drain, make_node, pynetdicom_send

pytestmark = pytest.mark.interop

OUT_OF_RESOURCES = 0xA700


def _rdsr(folder: Path, name: str) -> Path:
    return write(build_ct_rdsr(events=3), folder / name)


def _entries(spool: Path) -> list[str]:
    return sorted(
        str(p.relative_to(spool)) for p in spool.rglob("*") if p.is_file() and p.name != "filler"
    )


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_it_answers_out_of_resources_on_a_full_or_read_only_spool_and_recovers(
    spawn, tmp_path, tiny_tmpfs  # type: ignore[no-untyped-def]
) -> None:
    node = make_node()
    spool = node_spool_dir(node.pk)
    spool.parent.mkdir(parents=True, exist_ok=True)
    spool.symlink_to(tiny_tmpfs)
    node_proc = drain(spawn("store", "run", str(node.pk)), tmp_path / "node.log")
    wait_port(node.port, timeout=60)

    filler = _fill(tiny_tmpfs)
    assert pynetdicom_send(node, [_rdsr(tmp_path, "full.dcm")]) == [OUT_OF_RESOURCES]
    assert _entries(spool) == []  # nothing half-written left behind

    filler.unlink()
    assert pynetdicom_send(node, [_rdsr(tmp_path, "after-full.dcm")]) == [0]
    assert len(_entries(spool)) == 1

    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    try:
        assert pynetdicom_send(node, [_rdsr(tmp_path, "ro.dcm")]) == [OUT_OF_RESOURCES]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_tmpfs)], check=True)
    assert pynetdicom_send(node, [_rdsr(tmp_path, "after-ro.dcm")]) == [0]
    assert len(_entries(spool)) == 2
    assert node_proc.poll() is None  # the same process recovered, no restart

    runtime = StoreRuntime.for_node(node)
    assert runtime.pid == node_proc.pid


def test_it_answers_out_of_resources_when_the_spool_folder_is_unusable(
    spawn, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    node = make_node()
    spool = node_spool_dir(node.pk)
    drain(spawn("store", "run", str(node.pk)), tmp_path / "node.log")
    wait_port(node.port, timeout=60)
    assert pynetdicom_send(node, [_rdsr(tmp_path, "ok.dcm")]) == [0]

    incoming = spool / "in"
    incoming.rename(spool / "in.moved")
    incoming.write_bytes(b"not a folder")  # every rename into in/ now fails
    assert pynetdicom_send(node, [_rdsr(tmp_path, "blocked.dcm")]) == [OUT_OF_RESOURCES]
    assert os.listdir(spool / "tmp") == []

    incoming.unlink()
    (spool / "in.moved").rename(incoming)
    assert pynetdicom_send(node, [_rdsr(tmp_path, "again.dcm")]) == [0]
    assert len([p for p in incoming.rglob("*.dcm")]) == 2
