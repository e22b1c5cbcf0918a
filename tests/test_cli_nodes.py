"""`doseport nodes ...` and `doseport echo`: exit codes, output, one-line errors."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from audit.models import AuditEntry
from nodes.models import RemoteNode, StoreNode
from qr.models import ScheduledQuery
from tests.conftest import REPO, doseport_cmd, free_port

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(process_env: dict[str, str]) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            doseport_cmd(*args), env=process_env, cwd=REPO, capture_output=True, text=True,
            timeout=60,
        )

    return run


@pytest.fixture
def scp() -> Iterator[int]:
    ae = AE("PEERAE")
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    assert server is not None
    yield port
    server.shutdown()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_it_adds_and_lists_store_nodes(run: Run) -> None:
    done = run(
        "nodes", "add-store", "--name", "CT store", "--ae-title", "CTSTORE", "--port", "11200",
        "--no-controlled", "--host", "127.0.0.1", "--allow-aet", "CT1", "CT2", "--allow-aet", "CT3",
    )
    assert done.returncode == 0, done.stderr
    node = StoreNode.objects.get(name="CT store")
    assert f"Added store node {node.pk} 'CT store'" in done.stdout
    assert node.controlled is False and node.allowed_calling_aet_list == ["CT1", "CT2", "CT3"]

    listed = run("nodes", "list")
    assert listed.returncode == 0
    assert "CT store" in listed.stdout and "CTSTORE" in listed.stdout and "Unknown" in listed.stdout

    as_json = json.loads(run("nodes", "list", "--json").stdout)
    assert as_json == [
        {
            "kind": "store", "id": node.pk, "name": "CT store", "ae_title": "CTSTORE",
            "host": "127.0.0.1", "port": 11200, "status": "Unknown", "alive": None,
            "reason": "", "rtt_ms": None, "checked_at": None, "controlled": False,
            "auto_start": False, "allowed_calling_aets": ["CT1", "CT2", "CT3"],
            "runs_on": settings.SERVER_NAME,  # the server that added it
        }
    ]


def test_it_adds_a_remote_node_with_the_site_calling_ae_title(run: Run) -> None:
    done = run(
        "nodes", "add-remote", "--name", "PACS", "--ae-title", "PACS_AE", "--host", "pacs.local",
        "--port", "104",
    )
    assert done.returncode == 0, done.stderr
    node = RemoteNode.objects.get()
    assert (node.ae_title, node.host, node.port) == ("PACS_AE", "pacs.local", 104)
    assert node.effective_calling_aet == "DOSEPORT"
    again = run(
        "nodes", "add-remote", "--name", "PACS", "--ae-title", "OTHER", "--host", "pacs.local",
        "--port", "104", "--calling-aet", "ME",
    )
    assert again.returncode == 2
    assert one_line(again.stderr).endswith("--name: Name: another remote node already has this "
                                           "name; choose another.")


def test_it_warns_about_privileged_ports_but_adds_the_node(run: Run) -> None:
    done = run("nodes", "add-store", "--name", "Low", "--ae-title", "LOW", "--port", "104")
    assert done.returncode == 0
    assert "below 1024" in one_line(done.stderr)
    assert StoreNode.objects.filter(port=104).exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--name", "X", "--ae-title", "BAD AET", "--port", "11112"], "--ae-title: AE title may"),
        (["--name", "X", "--ae-title", "OK", "--port", "70000"], "--port: Port 70000 is out"),
        (["--name", "X", "--ae-title", "OK", "--port", "eleven"], "invalid int value: 'eleven'"),
        (["--name", "X", "--ae-title", "OK"], "the following arguments are required: --port"),
        (["--name", "X", "--ae-title", "OK", "--port", "1", "--allow-aet", "A\\B"], "backslash"),
    ],
)
def test_it_rejects_bad_arguments_with_one_line(run: Run, args: list[str], words: str) -> None:
    done = run("nodes", "add-store", *args)
    assert done.returncode == 2
    assert words in one_line(done.stderr)
    assert not StoreNode.objects.exists()


def test_it_needs_a_subcommand(run: Run) -> None:
    done = run("nodes")
    assert done.returncode == 2
    assert "required: {list,add-store,add-remote,edit,delete}" in one_line(done.stderr)


def test_it_echoes_exit_0_when_alive_and_1_when_not(run: Run, scp: int) -> None:
    alive = RemoteNode.objects.create(name="Up", ae_title="PEERAE", host="127.0.0.1", port=scp)
    dead = RemoteNode.objects.create(
        name="Down", ae_title="PEERAE", host="127.0.0.1", port=free_port()
    )
    done = run("echo", str(alive.pk))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Alive: remote node {alive.pk} 'Up'")
    assert done.stdout.strip().endswith(" ms")
    alive.refresh_from_db()
    assert alive.status_text == "Alive"

    done = run("echo", str(dead.pk))
    assert done.returncode == 1
    assert "connection refused" in one_line(done.stderr)
    dead.refresh_from_db()
    assert dead.status_text.startswith("Not responding: connection refused")


def test_it_tells_store_and_remote_ids_apart(run: Run, scp: int) -> None:
    store = StoreNode.objects.create(name="Mine", ae_title="PEERAE", port=scp)
    done = run("echo", str(store.pk))  # no remote node has this id: the store node is meant
    assert done.returncode == 0 and f"store node {store.pk} 'Mine'" in done.stdout
    done = run("echo", "--remote", str(store.pk))
    assert done.returncode == 2 and "no remote node with id" in one_line(done.stderr)
    done = run("echo", "--store", "--remote", "1")
    assert done.returncode == 2 and "not allowed with argument" in one_line(done.stderr)
    done = run("echo", "abc")
    assert done.returncode == 2 and "invalid int value" in one_line(done.stderr)


def test_it_edits_nodes_with_the_web_forms_rules_and_audits_it(run: Run) -> None:
    store = StoreNode.objects.create(name="CT", ae_title="CTSTORE", port=11200, auto_start=True)
    StoreNode.objects.create(name="MG", ae_title="MGSTORE", port=11201)
    remote = RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs", port=104)
    done = run("nodes", "edit", str(store.pk), "--store", "--port", "11210", "--no-auto-start",
               "--allow-aet", "CT1", "CT2")
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout) == (f"Saved store node {store.pk} 'CT' (CTSTORE@127.0.0.1:11210)"
                                     "; changed: allowed_calling_aets, auto_start, port")
    store.refresh_from_db()
    assert (store.port, store.auto_start, store.allowed_calling_aet_list) == (
        11210, False, ["CT1", "CT2"])
    entry = AuditEntry.objects.get(action="node.edit")
    assert entry.detail == {"port": [11200, 11210], "auto_start": [True, False],
                            "allowed_calling_aets": ["", "CT1\nCT2"]}

    for args, words in [
        (["--port", "11201"], "Another store node already listens on this port."),
        (["--name", "MG"], "--name: Name: another store node already has this name"),
        (["--ae-title", "CT STORE"], "--ae-title: AE title may contain only letters"),
        (["--calling-aet", "ME"], "--calling-aet: not a setting of store nodes"),
        ([], "nothing to change"),
    ]:
        # In-process (the same parser and messages as above, without a process per case).
        with pytest.raises(CommandError) as bad:
            call_command("nodes", "edit", str(store.pk), "--store", *args)
        assert bad.value.returncode == 2 and words in str(bad.value), args
    store.refresh_from_db()
    assert (store.name, store.port, store.ae_title) == ("CT", 11210, "CTSTORE")

    done = run("nodes", "edit", str(remote.pk), "--remote", "--dimse-timeout", "30",
               "--retrieve-method", "get")
    assert done.returncode == 0, done.stderr
    remote.refresh_from_db()
    assert (remote.dimse_timeout, remote.retrieve_method) == (30, "get")
    with pytest.raises(CommandError, match="--dimse-timeout: Response timeout must be at least"):
        call_command("nodes", "edit", str(remote.pk), "--remote", "--dimse-timeout", "0")
    if not RemoteNode.objects.filter(pk=store.pk).exists():
        RemoteNode.objects.create(pk=store.pk, name="Twin", ae_title="TWIN", host="t", port=1)
    with pytest.raises(CommandError, match="is both a store node and a remote node: add --st"):
        call_command("nodes", "edit", str(store.pk), "--port", "1")


def test_it_deletes_a_node_only_when_told_to_and_names_unimported_files(run: Run) -> None:
    store = StoreNode.objects.create(name="Old", ae_title="OLD", port=11220)
    day = Path(settings.SPOOL_DIR) / str(store.pk) / "in" / "20261201"
    day.mkdir(parents=True)
    (day / "1.2.3.abc.dcm").write_bytes(b"x" * 1000)
    asked = run("nodes", "delete", str(store.pk), "--store")  # no terminal to ask on
    assert asked.returncode == 2
    line = one_line(asked.stderr)
    assert f"not deleted: store node {store.pk} 'Old'" in line
    assert "it has 1 received file(s) (0.0 MB) not imported yet; add --yes" in line
    assert StoreNode.objects.filter(pk=store.pk).exists()

    done = run("nodes", "delete", str(store.pk), "--store", "--yes")
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout).startswith(f"Deleted store node {store.pk} 'Old'")
    assert f"`doseport store sweep {store.pk}` queues them" in one_line(done.stderr)
    assert not StoreNode.objects.filter(pk=store.pk).exists()
    assert AuditEntry.objects.filter(action="node.delete",
                                     target=f"store node {store.pk} Old").exists()

    remote = RemoteNode.objects.create(name="Gone", ae_title="GONE", host="pacs", port=104)
    kept = StoreNode.objects.create(name="Kept", ae_title="KEPT", port=11221)
    ScheduledQuery.objects.create(name="nightly", remote=remote, store=kept)
    out = io.StringIO()  # in-process from here: the same command, no process start-up
    call_command("nodes", "delete", str(remote.pk), "--remote", "--yes", stdout=out)
    assert not RemoteNode.objects.exists()
    assert one_line(out.getvalue()).endswith("; also deleted: 1 x scheduled query")
    with pytest.raises(CommandError, match="no remote node with id") as missing:
        call_command("nodes", "delete", str(remote.pk), "--remote", "--yes")
    assert missing.value.returncode == 2


def test_it_assigns_a_store_node_to_a_server(run: Run) -> None:
    done = run("nodes", "add-store", "--name", "B store", "--ae-title", "BSTORE", "--port",
               "11201", "--runs-on", "server-b")
    assert done.returncode == 0, done.stderr
    node = StoreNode.objects.get(name="B store")
    assert node.runs_on == "server-b"
    moved = run("nodes", "edit", str(node.pk), "--store", "--runs-on", "server-a.example")
    assert moved.returncode == 0, moved.stderr
    node.refresh_from_db()
    assert node.runs_on == "server-a.example"
    bad = run("nodes", "edit", str(node.pk), "--store", "--runs-on", "b;rm -rf")
    assert bad.returncode == 2
    assert "--runs-on" in one_line(bad.stderr) and "not a server name" in bad.stderr
    node.refresh_from_db()
    assert node.runs_on == "server-a.example"


def test_the_third_party_store_example_registers_a_node_doseport_never_runs(run: Run) -> None:
    """docs/third-party-store.md's command, run as written (item 7 of issue 15)."""
    from store.control import should_run

    doc = (REPO / "docs" / "third-party-store.md").read_text()
    line = next(x for x in doc.splitlines() if x.startswith("doseport nodes add-store "))
    done = run(*shlex.split(line)[1:])
    assert done.returncode == 0, done.stderr
    node = StoreNode.objects.get()
    assert node.controlled is False and not should_run(node, None)
    with pytest.raises(CommandError, match="third-party store"):
        call_command("store", "start", str(node.pk))

    call_command("nodes", "add-store", "--name", "Orthanc", "--ae-title", "ORTHANC",
                 "--port", "4242", "--third-party", "--host", "127.0.0.1", stdout=io.StringIO())
    assert StoreNode.objects.get(name="Orthanc").controlled is False
