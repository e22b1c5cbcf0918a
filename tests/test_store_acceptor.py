"""store/acceptor: every private pynetdicom name it uses is checked, and a missing one
makes the node run on stock pynetdicom (still correct) and say so on its status."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import AE

from store import acceptor
from store.acceptor import server as acceptor_server
from store.handlers import NodeContext, handle_requested, handlers_for, is_this_host
from store.models import StoreRuntime
from store.spool import Spool
from tests.builders.rdsr import build_ct_rdsr

XRAY_RDSR = "1.2.840.10008.5.1.4.1.1.88.67"


def test_it_finds_every_private_name_it_uses_in_this_pynetdicom() -> None:
    caps = acceptor.capabilities()
    assert caps.missing_handler == () and caps.missing_lane == ()
    assert caps.lane and caps.describe() == ""


def test_it_notices_a_missing_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acceptor_server, "LANE_NAMES",
                        (*acceptor_server.LANE_NAMES, "DUL._gone_in_a_later_release"))
    caps = acceptor.capabilities()
    assert caps.handler and not caps.lane
    assert "DUL._gone_in_a_later_release" in caps.describe()
    assert "no fast lane" in caps.describe()


def _serve(tmp_path: Path) -> tuple[AE, Any, Any, NodeContext]:
    from store.ae import AESettings, make_store_ae

    ctx = NodeContext(node_id=0, spool=Spool(tmp_path / "spool"), fast_lane=True)
    ctx.enqueue = lambda path, node_id: None
    ae = make_store_ae(AESettings(ae_title="FALLBACK", port=0, bind_address="127.0.0.1"))
    limits = acceptor.Limits()
    server, caps = acceptor.make_server(ae, ("127.0.0.1", 0), handlers_for(ctx, limits), ctx,
                                        limits, lane=True)
    acceptor.serve(ae, server, "test-acceptor")
    return ae, server, caps, ctx


def test_a_missing_name_falls_back_to_stock_pynetdicom_which_still_stores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(acceptor_server, "LANE_NAMES",
                        (*acceptor_server.LANE_NAMES, "Association._gone"))
    ae, server, caps, ctx = _serve(tmp_path)
    try:
        assert not caps.lane
        scu = AE(ae_title="SCU")
        scu.add_requested_context(XRAY_RDSR)
        scu.add_requested_context("1.2.840.10008.1.1")
        assoc = scu.associate("127.0.0.1", server.server_address[1], ae_title="FALLBACK")
        assert assoc.is_established
        assert type(assoc).__name__ == "Association"
        active = ae.active_associations
        assert active and all(type(a).__name__ == "GuardedAssociation" for a in active)
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(build_ct_rdsr(events=1)).Status == 0
        assoc.release()
    finally:
        ae.shutdown()
    assert len(ctx.spool.files()) == 1


@pytest.mark.django_db
def test_the_node_shows_a_missing_name_on_its_status(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from store.node import NodeProcess
    from tests.store_helpers import make_node

    monkeypatch.setattr(acceptor_server, "LANE_NAMES",
                        (*acceptor_server.LANE_NAMES, "DUL._gone"))
    monkeypatch.setattr(NodeProcess, "request_echo", lambda self: None)
    node = make_node()
    process = NodeProcess(node)
    process.start()
    try:
        runtime = StoreRuntime.for_node(node)
        assert "DUL._gone" in runtime.last_error
        assert "stock pynetdicom" in runtime.last_error
    finally:
        process.stop()


def _event(peer: str, local: str, calling: str) -> Any:
    sent: list[tuple[int, int, int]] = []
    assoc = SimpleNamespace(
        requestor=SimpleNamespace(address=peer, port=4000,
                                  primitive=SimpleNamespace(calling_ae_title=calling)),
        acceptor=SimpleNamespace(address=local),
        acse=SimpleNamespace(send_reject=lambda *rsd: sent.append(rsd)),
    )
    return SimpleNamespace(assoc=assoc, sent=sent)


@pytest.mark.parametrize(("peer", "local", "admitted"), [
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.2", "127.0.0.1", True),
    ("::1", "::1", True),
    ("10.1.2.3", "10.1.2.3", True),  # this host, called on its own address
    ("10.1.2.4", "10.1.2.3", False),
])
def test_the_health_check_ae_title_is_admitted_from_this_host_only(
    tmp_path: Path, peer: str, local: str, admitted: bool
) -> None:
    ctx = NodeContext(node_id=0, spool=Spool(tmp_path))
    event = _event(peer, local, "DOSEPORT-HC")
    assert is_this_host(event) == admitted
    handle_requested(event, ctx, "DOSEPORT-HC")
    assert event.sent == ([] if admitted else [(0x01, 0x01, 0x03)])
    other = _event("10.1.2.4", "10.1.2.3", "CT1")
    handle_requested(other, ctx, "DOSEPORT-HC")
    assert other.sent == []  # other titles: the allow-list decides
