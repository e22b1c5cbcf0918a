"""`doseport qr`: scenarios 30-32 and 37, echo first, exit codes, JSON summary."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from qr.management.commands.qr import Command, params_from_options
from qr.params import ParamError
from tests.conftest import doseport_cmd
from tests.fake_remote import RDSR, FakeRemote, StoreSCP, remote_node, series_of, store_node


def parse(*argv: str) -> Any:
    options = vars(Command().create_parser("doseport", "qr").parse_args(list(argv)))
    return params_from_options(options)


def qr(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    import sys
    old = sys.stderr
    sys.stderr = err
    try:
        call_command("qr", *argv, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def peers() -> Iterator[tuple[FakeRemote, StoreSCP]]:
    objs = series_of("1.2.3.1", "CT", 2, series_desc="Chest") + series_of(
        "1.2.3.1", "SR", 1, sop_class=RDSR)
    scp = StoreSCP().start()
    fake = FakeRemote(objs, destinations={"DPSTORE": ("127.0.0.1", scp.port)}).start()
    yield fake, scp
    fake.stop()
    scp.stop()


def test_it_30_rejects_bad_and_unknown_node_ids(db: Any) -> None:
    code, _, err = qr("abc", "1", "-ct", "-sd", "2024-01-02")
    assert code == 1 and "remote node id must be a number" in err
    code, _, err = qr("41", "1", "-ct", "-sd", "2024-01-02")
    assert code == 1 and "no remote node with id 41" in err
    assert err.count("\n") == 1


def test_it_31_maps_modality_flags_to_groups() -> None:
    params = parse("-fl", "-dx", "-ct", "-nm", "-mg", "-sd", "2024-01-02")
    assert params.modalities == ["CT", "MG", "FL", "DX", "NM"]
    assert params.codes == ["CT", "MG", "RF", "XA", "DX", "CR", "PX", "NM", "PT"]
    assert parse("-sr", "-sd", "2024-01-02").codes == ["SR"]
    with pytest.raises(ParamError, match="-sr cannot be combined"):
        parse("-sr", "-ct", "-sd", "2024-01-02")
    with pytest.raises(ParamError, match="at least one modality"):
        parse("-sd", "2024-01-02")


def test_it_32_trims_and_lowercases_comma_lists() -> None:
    params = parse("-ct", "-sd", "2024-01-02", "-e", " Foo , BAR,,", "-sni", "Room 1")
    assert params.desc_exclude == ["foo", "bar"]
    assert params.station_include == ["room 1"]


def test_it_applies_the_date_rules() -> None:
    one = parse("-ct", "-sd", "2024-01-02", "-tf", "0930")
    assert (one.study_date(), one.study_time()) == ("20240102", "0930-2359")
    assert parse("-ct", "-sd", "2024-01-02", "-tt", "1200").study_time() == "0000-1200"
    assert parse("-ct", "-f", "2024-02-01", "-t", "2024-01-01").study_date() == \
        "20240101-20240201"
    assert parse("-ct", "-f", "2024-01-01").date_until == dt.date.today()
    assert parse("-ct", "-t", "2024-01-01").study_date() == "-20240101"
    with pytest.raises(ParamError, match="--all-dates"):
        parse("-ct")
    assert parse("-ct", "--all-dates").study_date() == ""
    with pytest.raises(ParamError, match="single date"):
        parse("-ct", "-f", "2024-01-01", "-t", "2024-01-03", "-tf", "0900")


def test_it_37_refuses_a_move_for_an_unknown_query_id(db: Any) -> None:
    code, _, err = qr("--retrieve", "999")
    assert code == 1
    assert err == "doseport qr: no query with id 999\n"


def test_it_queries_retrieves_and_prints_json(db: Any, peers: Any) -> None:
    fake, scp = peers
    remote, store = remote_node(fake), store_node(scp)
    code, out, err = qr(str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["to_retrieve"] == 1 and summary["per_modality"] == {"CT": 1}
    assert summary["move"]["status"] == "complete" and summary["move"]["completed"] == 1
    # the store here is not a Doseport node: sent, never imported; the buckets add up
    assert summary["move"]["accounting"] == {
        "selected": 1, "imported": 0, "arrived": 0, "sent": 1, "failed": 0,
        "not_attempted": 0, "series_not_attempted": 0,
    }
    assert len(scp.received) == 1
    assert "retrieving series 1 of 1" in err


def test_it_exits_1_before_querying_when_the_remote_is_down(db: Any, peers: Any) -> None:
    fake, scp = peers
    remote, store = remote_node(fake, port=1), store_node(scp)
    code, out, err = qr(str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02")
    assert code == 1 and "is not responding: connection refused" in err
    assert fake.finds == [] and out == ""


def test_it_exits_1_when_the_store_node_is_down(db: Any, peers: Any) -> None:
    fake, _ = peers
    remote, store = remote_node(fake), store_node(ae_title="DPSTORE", port=1)
    code, _, err = qr(str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02")
    assert code == 1 and "store node" in err and fake.finds == []


def test_it_exits_2_on_complete_with_failures(db: Any, peers: Any) -> None:
    fake, scp = peers
    fake.move_status["*"] = 0xB000
    remote, store = remote_node(fake), store_node(scp)
    code, out, _ = qr(str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02")
    assert code == 2
    assert re.search(r"retrieve \d+: complete with failures; 0 sent, 1 failed", out)
    assert ("1 selected: 0 imported, 0 arrived not imported, 0 sent not yet arrived, "
            "1 failed, 0 not attempted") in out


def test_it_runs_as_a_command_with_real_exit_codes(process_env: dict, peers: Any) -> None:
    fake, scp = peers
    remote, store = remote_node(fake), store_node(scp)
    ok = subprocess.run(
        doseport_cmd("qr", str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02",
                     "--no-move"),
        env=process_env, capture_output=True, text=True, timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("query ") and ": complete; 1 of 1 studies" in ok.stdout
    bad = subprocess.run(doseport_cmd("qr", str(remote.pk), str(store.pk), "-ct", "-tf", "x"),
                         env=process_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("doseport qr:")


def test_it_retrieves_an_earlier_query_by_id(db: Any, peers: Any) -> None:
    fake, scp = peers
    remote, store = remote_node(fake), store_node(scp)
    code, out, _ = qr(str(remote.pk), str(store.pk), "-ct", "-sd", "2024-01-02", "--no-move",
                      "--json")
    query_id = json.loads(out)["query_id"]
    assert code == 0 and scp.received == []
    code, out, err = qr("--retrieve", str(query_id), str(store.pk), "--json")
    assert code == 0, err
    assert json.loads(out)["move"]["completed"] == 1 and len(scp.received) == 1
