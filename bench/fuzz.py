"""Fuzz a running store node with many malformed inputs (the long run of
tests/test_store_fuzz.py).

    .venv/bin/python bench/fuzz.py [--cases 10000] [--seed 12] [--write-docs]

Starts `doseport store run` on a free loopback port in a scratch DOSEPORT_HOME, sends
`--cases` inputs from tests.store_helpers.fuzz_cases (random bytes, mutated requests,
bad PDVs, garbage command sets, bad VRs, lengths past the data set, huge length claims,
deflate bombs, over-long UIDs, non-ASCII AE titles), each on its own connection, then
checks that the same process answers echo and stores a valid object, and reports its
memory and open files before and after, the time taken, what the node answered per kind
of input and what its log says (warnings, errors, tracebacks). With --write-docs the
"Fuzz" section of docs/PERFORMANCE.md is replaced.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.store_throughput import doseport_env, free_port, wait_port  # noqa: E402

HEADING = "## Fuzz"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start_node(work: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    home = work / "home"
    env = doseport_env(home)
    env["DOSEPORT_LOG_LEVEL"] = "INFO"
    cli = [sys.executable, "-m", "doseport"]
    subprocess.run([*cli, "migrate", "-v0"], env=env, check=True, cwd=REPO)
    port = free_port()
    create = ("from nodes.models import StoreNode; "
              f"print(StoreNode.objects.create(name='fuzz', ae_title='DOSESTORE', port={port}, "
              "bind_address='127.0.0.1').pk)")
    done = subprocess.run([*cli, "shell", "-c", create], env=env, check=True, cwd=REPO,
                          capture_output=True, text=True)
    node_id = done.stdout.strip().splitlines()[-1]
    log = work / "node.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*cli, "store", "run", node_id], env=env, cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)
    wait_port(port, timeout=120)
    return proc, port, log


def echo_and_store(port: int, work: Path) -> tuple[bool, int]:
    from pydicom import dcmread
    from pynetdicom import AE

    from tests.builders.rdsr import build_ct_rdsr, write

    ae = AE(ae_title="FUZZCHECK")
    ae.add_requested_context("1.2.840.10008.1.1")
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.88.67")
    assoc = ae.associate("127.0.0.1", port, ae_title="DOSESTORE")
    if not assoc.is_established:
        return False, -1
    try:
        echo_ok = assoc.send_c_echo().Status == 0
        path = write(build_ct_rdsr(events=2), work / f"valid-{time.monotonic_ns()}.dcm")
        status = int(assoc.send_c_store(dcmread(path)).Status)
    finally:
        assoc.release()
    return echo_ok, status


def answer_name(answer: bytes) -> str:
    names = {0x02: "association accepted", 0x03: "association rejected",
             0x04: "answered (P-DATA)", 0x06: "released", 0x07: "aborted"}
    return names.get(answer[0], f"PDU 0x{answer[0]:02X}") if answer else "closed"


def run(cases: int, seed: int) -> tuple[str, dict[str, Any]]:
    from tests.store_helpers import fuzz_cases, send_fuzz_case

    with tempfile.TemporaryDirectory(prefix="doseport-fuzz-") as tmp:
        work = Path(tmp)
        proc, port, log = start_node(work)
        try:
            assert echo_and_store(port, work) == (True, 0), "the node does not work at all"
            rss0, fds0 = _rss_kb(proc.pid), _fds(proc.pid)
            outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(
                collections.Counter)
            started = time.perf_counter()
            for kind, associate, chunks in fuzz_cases(seed, cases, "DOSESTORE"):
                answer = send_fuzz_case(port, "DOSESTORE", associate, chunks, wait_s=10)
                outcomes[kind][answer_name(answer)] += 1
            seconds = time.perf_counter() - started
            echo_ok, status = echo_and_store(port, work)
            time.sleep(35)  # one maintenance pass (malloc trim every 30 s)
            rss1, fds1 = _rss_kb(proc.pid), _fds(proc.pid)
            alive = proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        text = log.read_text(errors="replace")
    lines = text.splitlines()
    for n, line in enumerate(lines):  # what went wrong, for the one who reads the output
        if "Traceback" in line or " ERROR " in line:
            print("\n".join(lines[max(0, n - 2):n + 12]), file=sys.stderr)
    summary: dict[str, Any] = {
        "cases": cases, "seed": seed, "seconds": seconds, "echo": echo_ok,
        "store_status": status, "alive": alive, "rss_kb": (rss0, rss1), "fds": (fds0, fds1),
        "tracebacks": text.count("Traceback"),
        "thread_exceptions": text.count("Exception in thread"),
        "warnings": sum(" WARNING " in line for line in lines),
        "errors": sum(" ERROR " in line for line in lines),
    }
    rows = ["| input | cases | node's answer |", "|---|---:|---|"]
    for kind, counter in outcomes.items():
        shown = ", ".join(f"{name} {n}" for name, n in counter.most_common())
        rows.append(f"| {kind} | {sum(counter.values())} | {shown} |")
    return "\n".join(rows), summary


def section(table: str, s: dict[str, Any], argv: str) -> str:
    rss0, rss1 = s["rss_kb"]
    fds0, fds1 = s["fds"]
    return f"""{HEADING}

Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core machine (shared
with other work) with:

    .venv/bin/python {argv}

{s['cases']} malformed inputs (seed {s['seed']}, tests.store_helpers.fuzz_cases), each on its
own loopback connection to one `doseport store run` process, in {s['seconds']:.0f} s
({s['cases'] / s['seconds']:.0f} inputs/s). Afterwards the same process answered C-ECHO
{'Success' if s['echo'] else 'NOT'} and stored a valid dose report with status
0x{s['store_status']:04X}; it was {'still running' if s['alive'] else 'DEAD'}. RSS
{rss0 / 1024:.0f} MB before, {rss1 / 1024:.0f} MB after (35 s later, one maintenance pass);
open files {fds0} before, {fds1} after. Its log: {s['warnings']} warnings and {s['errors']}
errors (one line per refused input, naming the peer and the reason),
{s['tracebacks']} tracebacks, {s['thread_exceptions']} exceptions escaping a thread.

{table}

"Closed" is a connection the node ended without a PDU (a refused connection, or one cut
inside a PDU); "aborted" an A-ABORT after one log line; "answered (P-DATA)" a
C-STORE-RSP: 0xC000 with an Error Comment for what is not a data set, Success for a
mutation that still is one (stored as sent, as any odd object).
"""


def write_docs(text: str) -> None:
    path = REPO / "docs" / "PERFORMANCE.md"
    doc = path.read_text()
    if HEADING + "\n" in doc:
        start = doc.index(HEADING + "\n")
        nxt = doc.find("\n## ", start + len(HEADING))
        doc = doc[:start] + text + (doc[nxt + 1:] if nxt != -1 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="inputs (default 10000)")
    parser.add_argument("--seed", type=int, default=12, help="generator seed (default 12)")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the Fuzz section of docs/PERFORMANCE.md")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    import django

    django.setup()
    table, summary = run(args.cases, args.seed)
    argv = "bench/fuzz.py " + " ".join(sys.argv[1:])
    text = section(table, summary, argv.strip())
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
