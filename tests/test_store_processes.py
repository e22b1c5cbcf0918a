"""A node with several processes: they share one listening socket and the least busy
process takes the next association."""

from __future__ import annotations

import json
import os
import signal

from pynetdicom import AE

from store.models import StoreRuntime
from store.spool import node_spool_dir
from tests.conftest import wait_for, wait_port
from tests.store_helpers import drain, make_node

VERIFICATION = "1.2.840.10008.1.1"



def test_four_associations_are_shared_two_and_two(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    drain(spawn("store", "run", str(node.pk), "--processes", "2"), tmp_path / "node.log")
    wait_port(node.port, timeout=20)
    spool = node_spool_dir(node.pk)
    wait_for(lambda: list(spool.glob("stats-*.json")), timeout=20)  # the helper is up
    ae = AE(ae_title="TWOSCU")
    ae.add_requested_context(VERIFICATION)
    assocs = [ae.associate("127.0.0.1", node.port, ae_title=node.ae_title) for _ in range(4)]
    try:
        assert all(assoc.is_established for assoc in assocs)

        def helper_open() -> int:
            total = 0
            for path in spool.glob("stats-*.json"):
                try:
                    total += json.loads(path.read_text())["associations_open"]
                except (OSError, ValueError):
                    pass
            return total

        wait_for(lambda: StoreRuntime.for_node(node).associations_open == 4, timeout=10)
        wait_for(lambda: helper_open() == 2, timeout=10)
        assert all(assoc.send_c_echo().Status == 0 for assoc in assocs)
    finally:
        for assoc in assocs:
            assoc.release()


def test_a_killed_helper_is_started_again(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = make_node()
    drain(spawn("store", "run", str(node.pk), "--processes", "2"), tmp_path / "node.log")
    wait_port(node.port, timeout=20)
    spool = node_spool_dir(node.pk)

    def helper_pids() -> list[int]:
        return [int(p.stem.split("-")[1]) for p in spool.glob("stats-*.json")]

    wait_for(helper_pids, timeout=20)
    first = helper_pids()
    os.kill(first[0], signal.SIGKILL)
    # The main process notices at its next look (every HEARTBEAT_S), removes the dead
    # helper's counters and starts another one.
    wait_for(lambda: [p for p in helper_pids() if p not in first], timeout=20)
    assert len(helper_pids()) == 1 and helper_pids() != first
    ae = AE(ae_title="TWOSCU")
    ae.add_requested_context(VERIFICATION)
    assocs = [ae.associate("127.0.0.1", node.port, ae_title=node.ae_title) for _ in range(2)]
    try:
        assert all(a.is_established and a.send_c_echo().Status == 0 for a in assocs)
    finally:
        for assoc in assocs:
            assoc.release()
