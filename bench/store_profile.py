"""Where the time goes when DCMTK storescu sends CT images over 4 associations.

Runs DCMTK storescp and a Doseport node (2 processes) in turn on the same CT images and,
for each, reports per object: CPU by process name (perf samples over the whole machine,
when `perf` is installed), the machine's busy / I/O wait / idle shares (/proc/stat) and
the block device's writes and cache flushes with their average latency
(/sys/block/<dev>/stat). Store node's section of docs/PERFORMANCE.md quotes it.

    .venv/bin/python bench/store_profile.py [--ct 600] [--rounds 2] [--device vda]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import store_throughput as bench  # noqa: E402

PERF_HZ = 4000
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times() -> list[int]:
    with open("/proc/stat") as stat:
        return [int(v) for v in stat.readline().split()[1:9]]


def disk_stat(device: str) -> list[int]:
    return [int(v) for v in Path(f"/sys/block/{device}/stat").read_text().split()]


def perf_by_process(data: Path) -> collections.Counter[str]:
    out = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm"],
                         capture_output=True, text=True, check=False).stdout
    return collections.Counter(line.strip() for line in out.splitlines() if line.strip())


def profile(name: str, start: object, files: list[Path], work: Path, device: str) -> str:
    bench.settle(work)
    receiver = start()  # type: ignore[operator]
    try:
        bench.send(receiver, files[:2], 1, True)
        perf = None
        data = work / "perf.data"
        if shutil.which("perf"):
            perf = subprocess.Popen(
                ["perf", "record", "-a", "-F", str(PERF_HZ), "-o", str(data)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        cpu0, disk0 = cpu_times(), disk_stat(device)
        seconds = bench.send(receiver, files, 4, True)
        cpu1, disk1 = cpu_times(), disk_stat(device)
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
    finally:
        receiver.stop()
    n = len(files)
    cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    total = sum(cpu) or 1
    shares = dict(zip(CPU_FIELDS, (100 * v / total for v in cpu), strict=True))
    busy = 100 - shares["idle"] - shares["iowait"]
    disk = [b - a for a, b in zip(disk0, disk1, strict=True)]
    writes, write_ms = disk[4], disk[7]
    flushes, flush_ms = (disk[15], disk[16]) if len(disk) > 16 else (0, 0)
    lines = [
        f"{name}: {n / seconds:.0f} CT/s; machine busy {busy:.0f} %, I/O wait "
        f"{shares['iowait']:.0f} %, idle {shares['idle']:.0f} %",
        f"  disk per object: {writes / n:.2f} writes (average {write_ms / max(writes, 1):.2f} ms), "
        f"{flushes / n:.2f} cache flushes (average {flush_ms / max(flushes, 1):.3f} ms)",
    ]
    if perf is not None:
        counts = perf_by_process(data)
        ms_per_sample = 1000 / PERF_HZ
        for comm, samples in counts.most_common(4):
            if comm == "swapper":
                continue  # idle, and the second before the run
            lines.append(f"  CPU per object, {comm}: {samples * ms_per_sample / n:.2f} ms")
        data.unlink(missing_ok=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="vda", help="block device under the spool")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-profile-") as tmp:
        work = Path(tmp)
        (work / "ct").mkdir()
        files = bench.build_ct(work / "ct", args.ct)
        receivers = [
            ("DCMTK storescp", lambda: bench.start_dcmtk(work, True)),
            ("Doseport node", lambda: bench.start_doseport(work, True, 2)),
        ]
        for round_no in range(args.rounds):
            for name, start in receivers[round_no % 2:] + receivers[:round_no % 2]:
                print(profile(name, start, files, work, args.device), flush=True)


if __name__ == "__main__":
    main()
