"""`doseport qr QR_ID STORE_ID ...`: query a remote node and retrieve the dose objects."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

import audit
from lib.dicom import echo
from nodes.models import RemoteNode, StoreNode
from qr import lease
from qr.arrivals import Tally, link_arrivals, tally
from qr.jobs import new_move, new_query
from qr.models import Move, Query, Status
from qr.move import run_move
from qr.params import ParamError, QueryParams, parse_date, parse_terms
from qr.run import run_query

EXIT: dict[str, int] = {Status.COMPLETE: 0, Status.PARTIAL: 2}


class CliError(Exception):
    pass


def add_query_options(parser: CommandParser) -> None:
    for flag, group in (("-ct", "CT"), ("-mg", "MG"), ("-fl", "FL"), ("-dx", "DX"), ("-nm", "NM")):
        parser.add_argument(flag, dest="modalities", action="append_const", const=group,
                            help=f"query {group} (default: off)")
    parser.add_argument("-f", "--date-from", dest="date_from", metavar="DATE",
                        help="first study date YYYY-MM-DD (default: open start)")
    parser.add_argument("-t", "--date-until", dest="date_until", metavar="DATE",
                        help="last study date (default: today)")
    parser.add_argument("-sd", "--single-date", dest="single_date", metavar="DATE",
                        help="one study date (default none)")
    parser.add_argument("-tf", "--time-from", dest="time_from", default="",
                        help="with -sd: from HHMM (default 0000)")
    parser.add_argument("-tt", "--time-until", dest="time_until", default="",
                        help="with -sd: until HHMM (default 2359)")
    parser.add_argument("-e", "--desc-exclude", dest="desc_exclude",
                        help="study description terms to exclude, comma-separated (default none)")
    parser.add_argument("-i", "--desc-include", dest="desc_include",
                        help="study description terms to include (default all)")
    parser.add_argument("-sne", "--station-exclude", dest="station_exclude",
                        help="station name terms to exclude (default none)")
    parser.add_argument("-sni", "--station-include", dest="station_include",
                        help="station name terms to include (default all)")
    parser.add_argument("--stationname-study-level", action="store_true",
                        help="filter station names at study level (default: series level)")
    parser.add_argument("--toshiba", action="store_true", help="CT without dose SR (default off)")
    parser.add_argument("-sr", dest="sr_only", action="store_true",
                        help="remote holds dose SRs only: query SR (default off)")
    parser.add_argument("--dup", action="store_true",
                        help="also retrieve objects already imported (default: skip them)")
    parser.add_argument("--emptysr", action="store_true",
                        help="treat SR series without instances as RDSR (default off)")
    parser.add_argument("--all-dates", action="store_true",
                        help="allow a query without dates: the whole archive (default off)")


def params_from_options(options: dict[str, Any]) -> QueryParams:
    single = options.get("single_date")
    if single and (options.get("date_from") or options.get("date_until")):
        raise ParamError("use either -sd or -f/-t, not both")
    start = parse_date(single or options["date_from"]) if (single or options.get("date_from")) \
        else None
    end = parse_date(single or options["date_until"]) if (single or options.get("date_until")) \
        else None
    return QueryParams(
        modalities=list(dict.fromkeys(options.get("modalities") or [])),
        date_from=start, date_until=end,
        time_from=options.get("time_from") or "", time_until=options.get("time_until") or "",
        desc_exclude=parse_terms(options.get("desc_exclude")),
        desc_include=parse_terms(options.get("desc_include")),
        station_exclude=parse_terms(options.get("station_exclude")),
        station_include=parse_terms(options.get("station_include")),
        station_study_level=bool(options.get("stationname_study_level")),
        toshiba=bool(options.get("toshiba")), sr_only=bool(options.get("sr_only")),
        dup=bool(options.get("dup")), emptysr=bool(options.get("emptysr")),
        all_dates=bool(options.get("all_dates")),
    ).normalized()


def _node(model: Any, value: str | None, what: str) -> Any:
    if value is None:
        raise CliError(f"give the {what} id (see `doseport nodes list`)")
    if not value.isdigit():
        raise CliError(f"{what} id must be a number, got {value!r}")
    node = model.objects.filter(pk=int(value)).first()
    if node is None:
        raise CliError(f"no {what} with id {value} (see `doseport nodes list`)")
    return node


def _echo_or_fail(node: Any, what: str) -> None:
    result = echo(node.peer())
    node.record_echo(result)
    if not result.ok:
        raise CliError(f"{what} {node.name} ({node.ae_title}) is not responding: {result.reason}")


class Command(BaseCommand):
    help = ("Query a remote node for dose objects and retrieve them to a store node. "
            "Exit 0 complete, 2 complete with failures, 1 failed.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("qr_id", nargs="?", help="remote (query/retrieve) node id")
        parser.add_argument("store_id", nargs="?", help="destination store node id")
        add_query_options(parser)
        parser.add_argument("--no-move", action="store_true", help="query only (default: retrieve)")
        parser.add_argument("--json", action="store_true", help="summary as JSON (default text)")
        parser.add_argument("--retrieve", metavar="QUERY_ID",
                            help="retrieve the selection of an earlier query instead of querying")
        parser.add_argument("--arrival-timeout", type=float, default=None,
                            help="seconds to wait for retrieved objects to be imported "
                            "(default 30 for a Doseport store node, 0 for a third-party one)")

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if parser.called_from_command_line:
            def one_line(message: str) -> None:
                sys.stderr.write(f"doseport qr: {message} (see doseport qr --help)\n")
                sys.exit(1)

            parser.error = one_line  # type: ignore[method-assign,assignment]
        return parser

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            code = self.run(options)
        except (CliError, ParamError) as exc:
            sys.stderr.write(f"doseport qr: {exc}\n")
            sys.exit(1)
        sys.exit(code)

    def progress(self, text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def run(self, options: dict[str, Any]) -> int:
        # sites that script `doseport qr` from cron may run no worker, hence no periodic reaper
        lease.reap_stale(timezone.now())
        if options["retrieve"]:
            return self.retrieve_again(options)
        remote = _node(RemoteNode, options["qr_id"], "remote node")
        store = _node(StoreNode, options["store_id"], "store node")
        params = params_from_options(options)
        _echo_or_fail(remote, "remote node")
        if not options["no_move"] and remote.retrieve_method == RemoteNode.RETRIEVE_MOVE:
            _echo_or_fail(store, "store node")
        query = new_query(remote, store, params)
        audit.record("query.run", query, detail={"params": query.params})
        query.on_message = self.progress  # type: ignore[attr-defined]
        self.progress(f"query {query.pk}: {remote.name} for {', '.join(params.groups)}")
        run_query(query)
        move = None
        if not options["no_move"] and query.status in (Status.COMPLETE, Status.PARTIAL):
            move = self.retrieve(query, store, options)
        return self.report(query, move, options["json"])

    def retrieve_again(self, options: dict[str, Any]) -> int:
        ref = options["retrieve"]
        query = Query.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
        if query is None:
            raise CliError(f"no query with id {ref}")
        # with --retrieve the only positional argument is the store node id
        store_ref = options["store_id"] or options["qr_id"]
        store = _node(StoreNode, store_ref, "store node") if store_ref else query.store
        if store is None:
            raise CliError("give the destination store node id")
        move = self.retrieve(query, store, options)
        return self.report(query, move, options["json"])

    def retrieve(self, query: Query, store: StoreNode, options: dict[str, Any]) -> Move:
        move = new_move(query, store)
        audit.record("retrieve.run", move, detail={"store": store.name})
        move.on_message = self.progress  # type: ignore[attr-defined]
        run_move(move)
        wait = options["arrival_timeout"]
        if wait is None:
            wait = 30.0 if store.controlled else 0.0
        deadline = time.monotonic() + wait
        # wait only for what is on its way: failed and never attempted objects never come;
        # what the PACS reported completed is on its way even where a series' own count
        # says otherwise
        while time.monotonic() < deadline:
            counts = tally(move)
            move.refresh_from_db(fields=["completed"])
            landed = counts.imported + counts.arrived
            if not counts.sent and landed >= min(move.completed or 0, counts.selected):
                break
            time.sleep(0.2)
            link_arrivals(move)
        link_arrivals(move)  # the stored counts as of now
        move.refresh_from_db()
        return move

    def report(self, query: Query, move: Move | None, as_json: bool) -> int:
        query.refresh_from_db()
        summary = {
            "query_id": query.pk, "status": query.status, **query.summary(),
            "c_find_requests": query.find_count, "errors": query.errors, "notes": query.notes,
            "move": None if move is None else {
                "move_id": move.pk, "status": move.status, "completed": move.completed,
                "failed": move.failed, "warning": move.warning, "expected": move.expected,
                "arrived": move.arrived, "errors": move.errors, "message": move.message,
                "accounting": asdict(tally(move)),
            },
        }
        if as_json:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write(self.text(summary))
        statuses = [query.status] + ([move.status] if move else [])
        if any(s not in EXIT for s in statuses):
            if query.status not in EXIT:
                sys.stderr.write(f"doseport qr: query {query.status}: {query.message}\n")
            elif move is not None:
                sys.stderr.write(f"doseport qr: retrieve {move.status}: {move.message}\n")
            return 1
        return max(EXIT[s] for s in statuses)

    @staticmethod
    def text(s: dict[str, Any]) -> str:
        lines = [
            f"query {s['query_id']}: {Status(s['status']).label}; {s['to_retrieve']} of "
            f"{s['studies']} studies to retrieve ({s['series_to_retrieve']} series)",
        ]
        lines += [f"  {code}: {n} studies" for code, n in s["per_modality"].items()]
        lines += [f"  excluded ({reason}): {n}" for reason, n in s["excluded"].items()]
        lines += [f"  error: {e}" for e in s["errors"]]
        move = s["move"]
        if move:
            lines.append(
                f"retrieve {move['move_id']}: {Status(move['status']).label}; "
                f"{move['completed']} sent, {move['failed']} failed, {move['warning']} warnings, "
                f"{move['arrived']} of {move['expected']} arrived"
            )
            lines.append(f"  {Tally(**move['accounting']).line()}")
            lines += [f"  error: {e}" for e in move["errors"]]
        return "\n".join(lines)
