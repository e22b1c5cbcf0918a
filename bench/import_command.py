"""`doseport import --keep DIR` end to end against the in-process import loop, same files.

Writes N synthetic CT RDSRs into a temporary folder (one report built by
tests/builders/rdsr.py, 4 CT acquisitions, cloned with fresh UIDs of the same length so
20,000 files take seconds to write), then imports the folder twice, each time into a fresh
SQLite DOSEPORT_HOME:

- "loop": `imports.service.import_file(path, Source.FILE, keep=True)` for every file in
  one process, the path bench/import_rate.py times (the worker's code path);
- "command": `python -m doseport import --keep DIR`, timed from start to exit (interpreter
  and Django start-up included), stdout and stderr piped; `--tty` gives the command a
  pseudo-terminal for stderr, so the progress bar redraws as it does for a user.

Run: .venv/bin/python bench/import_command.py [--objects 2000] [--rounds 1] [--tty]
     [--paths loop,command]
Prints one JSON object; the numbers go into docs/PERFORMANCE.md ("doseport import command").
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# UIDs made by pydicom.uid.generate_uid() in the builder (the implementation UID ends ".1").
_BUILDER_UID = re.compile(rb"1\.2\.826\.0\.1\.3680043\.8\.498\.[1-9][0-9]{10,}")


def _repo_first() -> None:
    """This checkout's code, not whatever `doseport` the environment has installed."""
    if sys.path[0] != str(REPO):
        sys.path.insert(0, str(REPO))


def generate(folder: Path, count: int) -> None:
    """`count` CT RDSRs; every UID of the template gets a per-file suffix of equal length."""
    _repo_first()
    from tests.builders.rdsr import CtEvent, build_ct_rdsr, write

    events = [CtEvent(protocol=f"Protocol {j}", dlp=100.0 + j) for j in range(4)]
    folder.mkdir(parents=True, exist_ok=True)
    template = write(build_ct_rdsr(events), folder / "template.dcm")
    data = template.read_bytes()
    template.unlink()
    uids = sorted(set(_BUILDER_UID.findall(data)))
    for i in range(count):
        suffix = f"{i:010d}".encode()
        clone = data
        for uid in uids:
            clone = clone.replace(uid, uid[: -len(suffix)] + suffix)
        (folder / f"ct{i:06d}.dcm").write_bytes(clone)


def loop_child(folder: Path) -> dict[str, Any]:
    """Runs in a fresh process whose DOSEPORT_HOME is empty: migrate, then import."""
    _repo_first()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doseport.settings")
    django.setup()
    from django.core.management import call_command

    from imports.models import Outcome, Source
    from imports.service import import_file

    call_command("migrate", verbosity=0)
    paths = sorted(folder.iterdir())
    started = time.perf_counter()
    for path in paths:
        record = import_file(path, Source.FILE, keep=True)
        if record.outcome != Outcome.IMPORTED:
            raise SystemExit(f"bench import failed: {record.outcome} {record.error}")
    return {"seconds": time.perf_counter() - started}


def _env(home: Path) -> dict[str, str]:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DOSEPORT_HOME=str(home), DOSEPORT_LOG_LEVEL="WARNING",
               DJANGO_SETTINGS_MODULE="doseport.settings")
    env.pop("DOSEPORT_SQLITE", None)
    return env


def run_loop(folder: Path, home: Path) -> float:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], env=_env(home), cwd=REPO,
        capture_output=True, text=True, timeout=7200,
    )
    if done.returncode != 0:
        raise SystemExit(f"loop child failed:\n{done.stderr[-3000:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def _drain(fd: int, sink: list[int]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        sink[0] += len(chunk)


def run_command(folder: Path, home: Path, count: int, tty: bool) -> float:
    env = _env(home)
    doseport = [sys.executable, "-m", "doseport"]
    subprocess.run([*doseport, "migrate", "-v0"], env=env, cwd=REPO, check=True, timeout=600)
    master = slave = -1
    stderr: int = subprocess.PIPE
    if tty:
        master, slave = pty.openpty()
        stderr = slave
    received = [0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*doseport, "import", "--keep", str(folder)], env=env, cwd=REPO,
        stdout=subprocess.PIPE, stderr=stderr,
    )
    reader = None
    if tty:
        os.close(slave)
        reader = threading.Thread(target=_drain, args=(master, received), daemon=True)
        reader.start()
    out, err = proc.communicate(timeout=7200)
    seconds = time.perf_counter() - started
    if reader is not None:
        reader.join(timeout=10)
        os.close(master)
    text = out.decode(errors="replace")
    if proc.returncode != 0 or not re.search(rf"^imported\s+{count}$", text, re.M):
        raise SystemExit(f"command failed ({proc.returncode}):\n{text}\n{(err or b'')[-3000:]!r}")
    return seconds


def _children_cpu() -> float:
    """User + system seconds of finished child processes (the loop's includes migrate)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000, help="CT RDSRs to write (2000)")
    parser.add_argument("--rounds", type=int, default=1, help="loop/command pairs (1)")
    parser.add_argument("--tty", action="store_true",
                        help="the command's stderr is a pseudo-terminal (default: a pipe)")
    parser.add_argument("--paths", default="loop,command",
                        help="which to time, in this order (default loop,command)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(loop_child(args.child)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="doseport-bench-command-"))
    try:
        folder = scratch / "in"
        generate(folder, args.objects)
        rounds = []
        for n in range(args.rounds):
            row: dict[str, float] = {}
            for name in args.paths.split(","):
                home = scratch / f"{name}{n}"
                cpu_before = _children_cpu()
                seconds = run_loop(folder, home) if name == "loop" else \
                    run_command(folder, home, args.objects, args.tty)
                row[f"{name}_per_s"] = round(args.objects / seconds, 1)
                # CPU per object does not depend on what else the machine runs.
                cpu = _children_cpu() - cpu_before
                row[f"{name}_cpu_ms"] = round(cpu * 1000 / args.objects, 2)
                row[f"{name}_s"] = round(seconds, 2)
                row[f"{name}_load"] = round(os.getloadavg()[0], 1)
            if "loop_s" in row and "command_s" in row:
                row["command_over_loop"] = round(row["loop_s"] / row["command_s"], 2)
            rounds.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({
        "objects": args.objects, "tty": args.tty, "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()], "rounds": rounds,
    }, indent=1))


if __name__ == "__main__":
    main()
