"""`doseport nodes ...` and `doseport echo`: exit codes, output, one-line errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from nodes.models import RemoteNode, StoreNode
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
