"""Everything an AE needs from one place (lib/aeconfig.py): the store AE and the outgoing
AE get every value from AEConfig, from settings or the node; `doseport store run` takes
DCMTK-named options that reach the running node."""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from lib import aeconfig, dicom
from lib.aeconfig import AEConfig
from nodes.models import RemoteNode
from store.ae import AESettings, make_store_ae, store_run_argv, store_run_overrides
from store.management.commands.store import bounded
from tests.conftest import REPO, wait_for, wait_port
from tests.store_helpers import drain, make_node

FIELDS = ("ae_title", "maximum_pdu_size", "acse_timeout", "dimse_timeout", "network_timeout",
          "connection_timeout", "maximum_associations")


def _values(ae: AE) -> dict[str, Any]:
    return {name: getattr(ae, name) for name in FIELDS}


def test_it_sets_every_value_on_the_ae() -> None:
    config = AEConfig("SOMEAE", 32768, 3.0, 4.0, 5.0, 6.0, 7)
    ae = aeconfig.make_ae(config)
    assert _values(ae) == {
        "ae_title": "SOMEAE", "maximum_pdu_size": 32768, "acse_timeout": 3.0,
        "dimse_timeout": 4.0, "network_timeout": 5.0, "connection_timeout": 6.0,
        "maximum_associations": 7,
    }


def test_it_refuses_values_out_of_range() -> None:
    with pytest.raises(ValueError, match="acse_timeout, maximum_pdu_size"):
        AEConfig("X", 100, 0, 1, 1, 1, 1)
    assert AEConfig("X", 4096, 1, 1, 1, 1, 1).with_overrides(acse_timeout=None).acse_timeout == 1


@pytest.mark.django_db
def test_it_builds_the_store_ae_from_settings_and_run_options(settings: Any) -> None:
    settings.STORE_MAX_PDU, settings.STORE_ACSE_TIMEOUT = 65536, 11
    settings.STORE_DIMSE_TIMEOUT, settings.STORE_NETWORK_TIMEOUT = 22, 33
    settings.STORE_MAX_ASSOCIATIONS = 9
    node = make_node()
    ae = make_store_ae(AESettings.for_node(node))
    assert _values(ae) == {
        "ae_title": "DOSESTORE", "maximum_pdu_size": 65536, "acse_timeout": 11.0,
        "dimse_timeout": 22.0, "network_timeout": 33.0, "connection_timeout": 10.0,
        "maximum_associations": 9,
    }
    argv = store_run_argv({"max_pdu": 16384, "acse_timeout": 2.5, "dimse_timeout": None})
    assert argv == ["--max-pdu", "16384", "--acse-timeout", "2.5"]
    overridden = AESettings.for_node(node, **store_run_overrides(argv))
    assert (overridden.maximum_pdu_size, overridden.acse_timeout, overridden.dimse_timeout) == (
        16384, 2.5, 22.0)
    assert not overridden.tls
    node.tls = True
    assert AESettings.for_node(node).tls
    assert (overridden.ae.tcp_nodelay, overridden.ae.tcp_quickack) == (True, True)
    settings.TCP_NODELAY, settings.TCP_QUICKACK = False, False
    config = AESettings.for_node(node).ae
    assert (config.tcp_nodelay, config.tcp_quickack) == (False, False)


@pytest.mark.django_db
def test_it_builds_the_outgoing_ae_from_the_remote_node(settings: Any) -> None:
    settings.OUTGOING_MAX_PDU = 131072
    remote = RemoteNode(name="r", ae_title="PACS", host="127.0.0.1", port=104,
                        calling_ae_title="ME", connect_timeout=4, acse_timeout=8,
                        dimse_timeout=16, network_timeout=32)
    ae = dicom.make_scu_ae(remote.peer(), [Verification])
    assert _values(ae) == {
        "ae_title": "ME", "maximum_pdu_size": 131072, "acse_timeout": 8.0,
        "dimse_timeout": 16.0, "network_timeout": 32.0, "connection_timeout": 4.0,
        "maximum_associations": 1,
    }


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "doseport", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_it_offers_dcmtk_options_with_their_defaults() -> None:
    help_text = " ".join(_cli("store", "--help").stdout.split())
    for expected in ("--max-pdu BYTES", "DOSEPORT_STORE_MAX_PDU, now 4194304",
                     "--acse-timeout SECONDS", "DOSEPORT_STORE_ACSE_TIMEOUT, now 30",
                     "--dimse-timeout SECONDS", "DOSEPORT_STORE_DIMSE_TIMEOUT, now 60",
                     "-q, --quiet", "-v, --verbose", "-d, --debug"):
        assert expected in help_text, expected
    parse = bounded(int, 4096, 16 * 1024 * 1024)
    assert parse("16384") == 16384
    for text, why in (("100", "100 is outside 4096-16777216"), ("x", "'x' is not a number")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(why)):
            parse(text)


@pytest.mark.interop
def test_it_runs_a_node_with_the_options_given(
    spawn: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    node = make_node()
    log = tmp_path / "node.log"
    drain(spawn("store", "run", str(node.pk), "--max-pdu", "16384", "--acse-timeout", "7",
                "-q"), log)
    wait_port(node.port, timeout=20)
    ae = AE("PROBE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title)
    try:
        assert assoc.is_established
        assert assoc.acceptor.maximum_length == 16384
    finally:
        assoc.release()
    wait_for(lambda: log.stat().st_size >= 0, 1)
    assert "listening on" not in log.read_text()  # -q: warnings only


@pytest.mark.parametrize("tcp", [True, False])
def test_the_store_node_sets_tcp_options_from_its_config(tcp: bool, tmp_path: Path) -> None:
    """Item 5: TCP_NODELAY and the per-read TCP_QUICKACK of an accepted connection come
    from the node's AEConfig (lib/aeconfig.tune_socket), not from the handlers' own code."""
    from store import acceptor
    from store.ae import AESettings, make_store_ae
    from store.handlers import NodeContext, handlers_for
    from store.spool import Spool

    config = AEConfig(ae_title="TCPNODE", maximum_pdu_size=16384, acse_timeout=5,
                      dimse_timeout=5, network_timeout=5, connection_timeout=5,
                      maximum_associations=4, tcp_nodelay=tcp, tcp_quickack=tcp)
    settings = AESettings(ae_title="TCPNODE", port=0, bind_address="127.0.0.1", config=config)
    ctx = NodeContext(node_id=0, spool=Spool(tmp_path / "spool"), ae_config=settings.ae)
    ae = make_store_ae(settings)
    limits = acceptor.Limits()
    server, _ = acceptor.make_server(ae, ("127.0.0.1", 0), handlers_for(ctx, limits), ctx,
                                     limits, lane=True)
    acceptor.serve(ae, server, "test-tcp-options")
    try:
        scu = AE(ae_title="SCU")
        scu.add_requested_context("1.2.840.10008.1.1")
        assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="TCPNODE")
        assert assoc.is_established
        try:
            (accepted,) = ae.active_associations
            wrapper: Any = accepted.dul.socket
            nodelay = wrapper.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert bool(nodelay) is tcp
            assert wrapper.quickack is (tcp and hasattr(socket, "TCP_QUICKACK"))
            assert assoc.send_c_echo().Status == 0
        finally:
            assoc.release()
    finally:
        ae.shutdown()


@pytest.mark.parametrize("quickack", [True, False])
def test_outgoing_associations_re_arm_quickack_through_their_own_socket_class(
    quickack: bool, settings: Any
) -> None:
    """Item 1: the outgoing side patches no instance: its AE makes a QuickAckSocket
    (AE._create_socket, checked by outgoing_capabilities()), whose per-read TCP_QUICKACK
    follows the config; a real association with a pynetdicom SCP on loopback."""
    assert dicom.outgoing_capabilities() == ()
    settings.TCP_QUICKACK = quickack
    scp = AE(ae_title="ECHOSCP")
    scp.add_supported_context("1.2.840.10008.1.1")
    server = scp.start_server(("127.0.0.1", 0), block=False)
    assert server is not None
    try:
        peer = dicom.Peer(ae_title="ECHOSCP", host="127.0.0.1",
                          port=server.server_address[1], calling_ae_title="DOSEPORT")
        assoc = dicom.open_association(peer, ["1.2.840.10008.1.1"])
        assert not isinstance(assoc, dicom.AssocFailure), assoc
        try:
            wrapper = assoc.dul.socket
            assert type(wrapper) is dicom.QuickAckSocket
            assert "recv" not in vars(wrapper)  # the class's method, not a patched instance
            assert wrapper.quickack is (quickack and hasattr(socket, "TCP_QUICKACK"))
            assert assoc.send_c_echo().Status == 0
        finally:
            assoc.release()
    finally:
        server.shutdown()
