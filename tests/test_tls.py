"""DICOM TLS both ways: a TLS store node against DCMTK echoscu/storescu +tls (and a plain
caller refused), our outgoing echo against DCMTK storescp +tls and C-FIND against a TLS
pynetdicom SCP, peers from another CA refused; settings checked at start."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pydicom import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from lib import dicom, tls
from lib.env import ConfigError
from nodes.forms import RemoteNodeForm, StoreNodeForm
from nodes.models import RemoteNode, StoreNode
from store.spool import node_spool_dir
from tests.builders.rdsr import build_ct_rdsr
from tests.conftest import free_port, require_tool, wait_port
from tests.store_helpers import drain, make_node

PEER_AET = "TLSPEER"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    rogue_cert: Path  # signed by another CA
    rogue_key: Path

    def env(self) -> dict[str, str]:
        return {tls.CERT: str(self.cert), tls.KEY: str(self.key), tls.CA: str(self.ca)}

    def files(self) -> tls.TLSFiles:
        return tls.TLSFiles(cert=self.cert, key=self.key, ca=self.ca)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _issue(folder: Path, name: str, ca: str) -> tuple[Path, Path]:
    """An EC key and a certificate for localhost/127.0.0.1 signed by `ca` (folder/ca.*)."""
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(folder / f"{ca}.pem"),
             "-CAkey", str(folder / f"{ca}.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(ext), "-out", str(cert))
    return cert, key


def _ca(folder: Path, name: str) -> Path:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(folder / f"{name}.key"), "-out",
             str(folder / f"{name}.pem"), "-days", "2", "-subj", f"/CN={name}")
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and site certificate, plus a rogue CA's certificate (openssl CLI)."""
    require_tool("openssl")
    folder = tmp_path_factory.mktemp("pki")
    ca = _ca(folder, "ca")
    cert, key = _issue(folder, "doseport", "ca")
    _ca(folder, "rogue-ca")
    rogue_cert, rogue_key = _issue(folder, "rogue", "rogue-ca")
    return Pki(ca=ca, cert=cert, key=key, rogue_cert=rogue_cert, rogue_key=rogue_key)


@pytest.fixture
def tls_settings(settings: Any, pki: Pki) -> Pki:
    settings.TLS_FILES = pki.files()
    return pki


def _dcmtk_tls(pki: Pki, rogue: bool = False) -> list[str]:
    cert, key = (pki.rogue_cert, pki.rogue_key) if rogue else (pki.cert, pki.key)
    return ["+tls", str(key), str(cert), "+cf", str(pki.ca)]


# --- settings ------------------------------------------------------------------------


def test_it_reads_nothing_when_no_tls_setting_is_given() -> None:
    assert tls.files_from_env({}) is None


def test_it_names_the_missing_or_bad_setting(pki: Pki, tmp_path: Path) -> None:
    env = pki.env()
    assert tls.files_from_env(env) == pki.files()
    with pytest.raises(ConfigError, match="^DOSEPORT_TLS_KEY is not set"):
        tls.files_from_env({**env, tls.KEY: ""})
    with pytest.raises(ConfigError, match="^DOSEPORT_TLS_CA='/nonexistent.pem': no such file"):
        tls.files_from_env({**env, tls.CA: "/nonexistent.pem"})
    with pytest.raises(ConfigError, match="^DOSEPORT_TLS_KEY does not match DOSEPORT_TLS_CERT"):
        tls.files_from_env({**env, tls.KEY: str(pki.rogue_key)})
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="^DOSEPORT_TLS_CA: not a PEM"):
        tls.files_from_env({**env, tls.CA: str(garbage)})


def test_it_stops_a_command_with_one_line_naming_the_setting(pki: Pki, tmp_path: Path) -> None:
    env = {**os.environ, **pki.env(), tls.CERT: str(tmp_path / "missing.pem"),
           "DOSEPORT_HOME": str(tmp_path / "home")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-m", "doseport", "check"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"doseport: configuration error: DOSEPORT_TLS_CERT={str(tmp_path / 'missing.pem')!r}: "
        "no such file (a PEM file is expected)"
    ]


def test_it_builds_contexts_of_the_bcp195_profile(pki: Pki) -> None:
    for context in (tls.server_context(pki.files()), tls.client_context(pki.files())):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.options & ssl.OP_NO_COMPRESSION
        names = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert names and all(n.startswith("ECDHE-") and ("GCM" in n or "CHACHA" in n)
                              for n in names), names


# --- forms and command line ----------------------------------------------------------


@pytest.mark.django_db
def test_it_refuses_the_tls_box_without_a_site_certificate(settings: Any, pki: Pki) -> None:
    settings.TLS_FILES = None
    data = {"name": "r", "ae_title": "PACS", "host": "127.0.0.1", "port": "104",
            "calling_ae_title": "", "retrieve_method": "move", "connect_timeout": "5",
            "acse_timeout": "10", "dimse_timeout": "60", "network_timeout": "120", "tls": "on"}
    form = RemoteNodeForm(data)
    assert not form.is_valid()
    assert "DOSEPORT_TLS_CERT" in form.errors["tls"][0]
    settings.TLS_FILES = pki.files()
    assert RemoteNodeForm(data).is_valid()
    store = StoreNodeForm({"name": "s", "ae_title": "S", "port": "11112", "controlled": "on",
                           "tls": "on"})
    assert store.is_valid(), store.errors
    assert store.save().tls is True


@pytest.mark.django_db
def test_it_adds_tls_nodes_from_the_command_line(settings: Any, pki: Pki) -> None:
    settings.TLS_FILES = None
    with pytest.raises(CommandError, match="^--tls: set DOSEPORT_TLS_CERT"):
        call_command("nodes", "add-store", "--name", "s", "--ae-title", "S", "--port", "11112",
                     "--tls")
    settings.TLS_FILES = pki.files()
    call_command("nodes", "add-store", "--name", "s", "--ae-title", "S", "--port", "11112",
                 "--tls")
    call_command("nodes", "add-remote", "--name", "r", "--ae-title", "P", "--host", "h",
                 "--port", "104", "--tls")
    assert StoreNode.objects.get().tls and RemoteNode.objects.get().tls


# --- our TLS store node against DCMTK --------------------------------------------------


@pytest.fixture
def tls_node(spawn: Callable[..., subprocess.Popen[bytes]], pki: Pki, tmp_path: Path,
             settings: Any) -> Iterator[StoreNode]:
    settings.TLS_FILES = pki.files()
    node = make_node(tls=True)
    log = tmp_path / "node.log"
    proc = drain(spawn("store", "run", str(node.pk), env=pki.env()), log)
    wait_port(node.port, timeout=20)
    node.log = log  # type: ignore[attr-defined]
    yield node
    proc.terminate()
    proc.wait(timeout=15)


def _echoscu(node: StoreNode, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = require_tool("echoscu")
    return subprocess.run(
        [exe, "-aet", "ECHOSCU", "-aec", node.ae_title, *extra, "127.0.0.1", str(node.port)],
        capture_output=True, text=True, timeout=30, check=False,
    )


@pytest.mark.interop
def test_it_serves_dcmtk_over_tls_and_refuses_plain_and_foreign_callers(
    tls_node: StoreNode, pki: Pki, tmp_path: Path
) -> None:
    ok = _echoscu(tls_node, *_dcmtk_tls(pki))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    plain = _echoscu(tls_node)
    assert plain.returncode != 0
    foreign = _echoscu(tls_node, *_dcmtk_tls(pki, rogue=True))
    assert foreign.returncode != 0
    # A silent TCP caller does not hold up the others (the handshake has its own thread).
    with socket.create_connection(("127.0.0.1", tls_node.port), timeout=5):
        again = _echoscu(tls_node, *_dcmtk_tls(pki))
    assert again.returncode == 0, again.stdout + again.stderr
    # The node's own health check goes over TLS too.
    assert dicom.echo(tls_node.peer(short=True)).ok

    ds = build_ct_rdsr()
    path = tmp_path / "rdsr.dcm"
    ds.save_as(path, enforce_file_format=True)
    exe = require_tool("storescu")
    sent = subprocess.run(
        [exe, "-v", "-aet", "STORESCU", "-aec", tls_node.ae_title, *_dcmtk_tls(pki),
         "127.0.0.1", str(tls_node.port), str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert sent.returncode == 0 and "Success" in sent.stdout + sent.stderr, sent.stderr
    spooled = [p for p in node_spool_dir(tls_node.pk).rglob("*.dcm") if p.is_file()]
    assert len(spooled) == 1
    log = tls_node.log.read_text()  # type: ignore[attr-defined]
    refused = [line for line in log.splitlines() if "TLS handshake with 127.0.0.1" in line]
    assert len(refused) >= 2 and "Traceback" not in log, log


# --- our outgoing associations against TLS peers --------------------------------------


@pytest.fixture
def storescp_tls(pki: Pki) -> Iterator[Callable[[bool], int]]:
    """DCMTK storescp +tls with our certificate (or the rogue CA's) on a free port."""
    exe = require_tool("storescp")
    procs: list[subprocess.Popen[bytes]] = []

    def start(rogue: bool = False) -> int:
        port = free_port()
        procs.append(subprocess.Popen(
            [exe, "--aetitle", PEER_AET, *_dcmtk_tls(pki, rogue), str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        wait_port(port)
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _remote(port: int, use_tls: bool = True) -> RemoteNode:
    return RemoteNode.objects.create(
        name=f"tls-{port}", ae_title=PEER_AET, host="127.0.0.1", port=port, tls=use_tls
    )


@pytest.mark.interop
@pytest.mark.django_db
def test_it_echoes_dcmtk_storescp_over_tls(
    tls_settings: Pki, storescp_tls: Callable[[bool], int]
) -> None:
    good = _remote(storescp_tls(False))
    result = dicom.echo(good.peer(short=True))
    assert result.ok, result.reason
    plain = RemoteNode(name="p", ae_title=PEER_AET, host="127.0.0.1", port=good.port)
    assert not dicom.echo(plain.peer(short=True)).ok
    rogue = dicom.echo(_remote(storescp_tls(True)).peer(short=True))
    assert not rogue.ok
    assert "certificate" in rogue.reason and "DOSEPORT_TLS_CA" in rogue.reason, rogue.reason


@pytest.mark.django_db
def test_it_says_tls_is_not_configured(settings: Any) -> None:
    settings.TLS_FILES = None
    result = dicom.echo(_remote(free_port()).peer(short=True))
    assert not result.ok and "DOSEPORT_TLS_CERT" in result.reason


@pytest.fixture
def find_scp_tls(pki: Pki) -> Iterator[int]:
    """A pynetdicom Study Root C-FIND SCP that accepts only TLS (our server context)."""
    ae = AE(PEER_AET)
    ae.add_supported_context(dicom.STUDY_ROOT_FIND)
    ae.add_supported_context(Verification)

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        match = Dataset()
        match.QueryRetrieveLevel = "STUDY"
        match.StudyInstanceUID = "1.2.3.4"
        yield 0xFF00, match

    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             ssl_context=tls.server_context(pki.files()),
                             evt_handlers=[(evt.EVT_C_FIND, on_find)])
    assert server is not None
    yield port
    server.shutdown()


@pytest.mark.django_db
def test_it_queries_over_tls(tls_settings: Pki, find_scp_tls: int) -> None:
    peer = _remote(find_scp_tls).peer()
    assoc = dicom.open_association(peer, [dicom.STUDY_ROOT_FIND])
    assert not isinstance(assoc, dicom.AssocFailure), assoc
    try:
        assert tls.describe(assoc.dul.socket.socket).startswith("TLSv1.")  # type: ignore[union-attr,arg-type]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        found = dicom.find(assoc, query)
    finally:
        dicom.close(assoc)
    assert found.ok and [str(m.StudyInstanceUID) for m in found.matches] == ["1.2.3.4"]


@pytest.mark.django_db
def test_it_shows_tls_on_the_node_panels(viewer: Any) -> None:
    from django.test import Client
    from django.urls import reverse

    store = StoreNode.objects.create(name="s", ae_title="S", port=11119, tls=True)
    remote = RemoteNode.objects.create(name="r", ae_title="P", host="h", port=104, tls=True)
    plain = RemoteNode.objects.create(name="q", ae_title="Q", host="h", port=105)
    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("nodes:dicom")).content.decode()
    assert f'<dd id="store-tls-{store.pk}">yes: only TLS callers' in page
    assert "It must connect with DICOM TLS" in page
    assert f'<dd id="remote-tls-{remote.pk}">yes: its certificate is checked' in page
    assert f'<dd id="remote-tls-{plain.pk}">no</dd>' in page


@pytest.mark.interop
def test_it_records_why_a_tls_node_cannot_start_without_a_certificate(
    spawn: Callable[..., subprocess.Popen[bytes]], settings: Any, pki: Pki
) -> None:
    from store.models import StoreRuntime

    settings.TLS_FILES = pki.files()
    node = make_node(tls=True)
    proc = spawn("store", "run", str(node.pk))  # the child has no DOSEPORT_TLS_* settings
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert b"DICOM TLS is on for this node, but DOSEPORT_TLS_CERT" in output
    assert b"Traceback" not in output
    assert "DICOM TLS is on" in StoreRuntime.objects.get(node=node).last_error


def test_it_warns_about_a_key_others_can_read(pki: Pki, settings: Any) -> None:
    from doseport.checks import check_tls_key

    settings.TLS_FILES = pki.files()
    pki.key.chmod(0o644)
    try:
        assert [m.id for m in check_tls_key()] == ["doseport.W003"]
        pki.key.chmod(0o640)
        assert check_tls_key() == []
    finally:
        pki.key.chmod(0o600)
    settings.TLS_FILES = None
    assert check_tls_key() == []


@pytest.mark.django_db
def test_it_retrieves_with_c_get_over_tls(tls_settings: Pki) -> None:
    ds = build_ct_rdsr()
    ae = AE(PEER_AET)
    ae.add_supported_context(dicom.STUDY_ROOT_GET)
    ae.add_supported_context(str(ds.SOPClassUID), scu_role=True, scp_role=True)

    def on_get(event: evt.Event) -> Iterator[Any]:
        yield 1
        yield 0xFF00, ds

    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             ssl_context=tls.server_context(tls_settings.files()),
                             evt_handlers=[(evt.EVT_C_GET, on_get)])
    assert server is not None
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        assert tls.describe(event.assoc.dul.socket.socket)  # type: ignore[union-attr,arg-type]
        received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    try:
        assoc = dicom.open_get_association(_remote(port).peer(), [str(ds.SOPClassUID)], on_store)
        assert not isinstance(assoc, dicom.AssocFailure), assoc
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ds.StudyInstanceUID
        try:
            result = dicom.get(assoc, query)
        finally:
            dicom.close(assoc)
    finally:
        server.shutdown()
    assert result.ok, result.reason
    assert received == [str(ds.SOPInstanceUID)]
