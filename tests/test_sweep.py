"""Sweeps for every spool on this server (store/sweep.py): stopped and deleted nodes too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from imports.models import ImportRecord, Outcome, Source
from nodes.models import StoreNode
from store import sweep
from store.spool import Spool
from tests.builders.rdsr import build_ct_rdsr, header_for, write

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def spool_dir(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]  # noqa: F811
    settings.SPOOL_DIR = tmp_path / "spool"
    return Path(settings.SPOOL_DIR)


def _spooled(tmp_path: Path, folder: str, accession: str, age_s: float = 900) -> Path:
    """A real CT dose report written into spool/<folder> as a node would, `age_s` old."""
    ds = build_ct_rdsr(events=1, header=header_for(accession=accession))
    data = write(ds, tmp_path / f"{accession}.dcm").read_bytes()
    path = Spool(Path(settings.SPOOL_DIR) / folder).write([data], str(ds.SOPInstanceUID))
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def _node(name: str, port: int) -> StoreNode:
    return StoreNode.objects.create(name=name, ae_title=name.upper()[:16], port=port,
                                    controlled=True, auto_start=False)


def test_it_imports_what_stopped_and_deleted_nodes_left_and_counts_what_is_pending(
    tmp_path: Path,
) -> None:
    stopped = _node("stopped", 11301)
    left = [_spooled(tmp_path, str(stopped.pk), f"SWEEP{i}") for i in range(3)]
    done = _spooled(tmp_path, str(stopped.pk), "SWEEPDONE")
    ImportRecord.objects.create(source=Source.STORE, path=str(done), outcome=Outcome.IMPORTED)
    young = _spooled(tmp_path, str(stopped.pk), "SWEEPYOUNG", age_s=0)
    orphan = _spooled(tmp_path, "987654", "SWEEPGONE")  # a node deleted long ago
    retrieved = _spooled(tmp_path, sweep.NO_NODE_SPOOL, "SWEEPGET")

    count, size = sweep.pending(stopped.pk)
    assert count == 4  # the three, and the young one; not the recorded one
    assert size == sum(p.stat().st_size for p in [*left, young])

    queued = sweep.sweep()  # tasks run inline in tests (immediate Huey)
    assert queued == {str(stopped.pk): 3, "987654": 1, sweep.NO_NODE_SPOOL: 1}
    records = ImportRecord.objects.exclude(path=str(done))
    assert records.filter(outcome=Outcome.IMPORTED).count() == 5
    assert set(records.filter(store_node=stopped).values_list("path", flat=True)) == {
        str(p) for p in left
    }
    assert records.get(path=str(orphan)).store_node_id is None  # the node is gone
    assert records.get(path=str(retrieved)).source == Source.QUERY
    assert sweep.pending(stopped.pk) == (1, young.stat().st_size)  # only the young one
    assert sweep.sweep() == {str(stopped.pk): 0, "987654": 0, sweep.NO_NODE_SPOOL: 0}


def test_it_does_not_import_a_file_twice_when_swept_twice(tmp_path: Path) -> None:
    from imports.tasks import import_swept_task

    node = _node("twice", 11302)
    path = _spooled(tmp_path, str(node.pk), "SWEEPTWICE")
    # Two sweeps queued the same file before either task ran (the queue was slow).
    assert import_swept_task.call_local([str(path)], Source.STORE, node.pk) == 1
    assert import_swept_task.call_local([str(path)], Source.STORE, node.pk) == 0
    assert ImportRecord.objects.filter(kept_path=str(path)).count() + ImportRecord.objects.filter(
        path=str(path)).exclude(kept_path=str(path)).count() == 1


@pytest.fixture
def real_queue() -> Iterator[None]:
    """Tasks are queued, not run inline."""
    from huey.contrib.djhuey import HUEY

    from doseport.queue import flush_imports

    HUEY.immediate = False
    flush_imports()
    try:
        yield
    finally:
        flush_imports()
        HUEY.immediate = True


def test_it_leaves_out_files_already_waiting_on_the_import_queue(
    tmp_path: Path, real_queue: None
) -> None:
    from doseport.queue import imports_huey, queued_import_paths
    from imports.tasks import import_files_task

    node = _node("waiting", 11303)
    waiting = _spooled(tmp_path, str(node.pk), "SWEEPWAIT")
    lost = _spooled(tmp_path, str(node.pk), "SWEEPLOST")
    import_files_task([str(waiting)], Source.STORE, node.pk)  # the node's dispatcher did
    assert queued_import_paths() == {str(waiting)}
    assert sweep.sweep(node.pk) == {str(node.pk): 1}
    assert queued_import_paths() == {str(waiting), str(lost)}
    assert imports_huey().huey.pending_count() == 2
    # A queue too long to read (in tasks or in paths) is not read: the sweep skips a round.
    assert queued_import_paths(limit=1) is None
    assert queued_import_paths(paths_limit=1) is None


def test_it_sweeps_from_the_command_line(tmp_path: Path) -> None:
    node = _node("cli", 11304)
    _spooled(tmp_path, str(node.pk), "SWEEPCLI1")
    _spooled(tmp_path, str(node.pk), "SWEEPCLI2", age_s=5)
    out = StringIO()
    call_command("store", "sweep", str(node.pk), "--min-age", "0", stdout=out)
    assert f"spool {node.pk}: 2 files queued" in out.getvalue()
    assert ImportRecord.objects.filter(store_node=node, outcome=Outcome.IMPORTED).count() == 2
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no spool on this server"):
        call_command("store", "sweep", "424242")


def test_it_asks_before_deleting_a_node_with_files_not_imported(
    tmp_path: Path, admin_user  # type: ignore[no-untyped-def]
) -> None:
    node = _node("deleteme", 11305)
    files = [_spooled(tmp_path, str(node.pk), f"SWEEPDEL{i}") for i in range(2)]
    client = Client()
    client.force_login(admin_user)
    url = reverse("nodes:delete", args=["store", node.pk])
    page = client.post(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="pending-count">2<' in text and "not been imported yet" in text
    assert StoreNode.objects.filter(pk=node.pk).exists()

    assert client.post(url, {"pending": "import"}).status_code == 302
    assert StoreNode.objects.filter(pk=node.pk).exists()  # kept: import first
    assert ImportRecord.objects.filter(store_node=node, outcome=Outcome.IMPORTED).count() == 2
    assert sweep.pending(node.pk) == (0, 0)
    assert client.post(url).status_code == 302  # nothing pending: deleted at once
    assert not StoreNode.objects.filter(pk=node.pk).exists()
    assert all(not p.exists() or ImportRecord.objects.filter(kept_path=str(p)).exists()
               for p in files)


def test_it_deletes_anyway_when_told_and_the_files_stay_for_the_sweep(
    tmp_path: Path, admin_user  # type: ignore[no-untyped-def]
) -> None:
    node = _node("deleteanyway", 11306)
    path = _spooled(tmp_path, str(node.pk), "SWEEPANYWAY")
    client = Client()
    client.force_login(admin_user)
    url = reverse("nodes:delete", args=["store", node.pk])
    assert client.post(url, {"pending": "delete"}).status_code == 302
    assert not StoreNode.objects.filter(pk=node.pk).exists()
    assert path.exists()
    assert sweep.sweep() == {str(node.pk): 1}
    assert ImportRecord.objects.get(path=str(path)).store_node_id is None


def test_it_sweeps_every_spool_from_the_workers_import_queue() -> None:
    from doseport.queue import imports_huey

    huey = imports_huey().huey
    periodic = {type(task).__name__ for task in huey._registry.periodic_tasks}
    assert "sweep_spools_task" in periodic
