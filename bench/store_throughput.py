"""Store throughput: DCMTK storescp, pynetdicom's stock storescp and a Doseport node.

    .venv/bin/python bench/store_throughput.py [--ct 1000] [--sr 300] [--repeat 5] [--write-docs]

One invocation runs every receiver on a free loopback port with the same objects and the
same sender (DCMTK storescu, TCP_NODELAY=1): 512x512 16-bit CT images and ~36 KB CT dose
reports, over 1 association and over 4 parallel associations, plus the Nagle scenario
(a sender without TCP_NODELAY). It reports objects/s, receiver CPU per object and peak
RSS, and with --write-docs replaces the "Store" section of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.builders.rdsr import build_ct_rdsr, header_for, write  # noqa: E402

CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
TICKS = os.sysconf("SC_CLK_TCK")
HEADING = "## Store node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


# -- objects -----------------------------------------------------------------------------
def build_ct(folder: Path, count: int) -> list[Path]:
    pixels = random.Random(1).randbytes(512 * 512 * 2)
    study = generate_uid()
    series = generate_uid()
    files = []
    for i in range(count):
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID = CT_IMAGE
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.Modality = "CT"
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = pixels
        path = folder / f"ct-{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def build_sr(folder: Path, count: int) -> list[Path]:
    files = []
    for i in range(count):
        ds = build_ct_rdsr(events=9, header=header_for(accession=f"B{i:05d}"))
        files.append(write(ds, folder / f"sr-{i:04d}.dcm"))
    return files


# -- receivers ---------------------------------------------------------------------------
@dataclass
class Receiver:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    ae_title: str

    def pids(self) -> list[int]:
        """The receiver and its live descendants (forked storescp, node helpers)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo.extend(int(c) for c in (task / "children").read_text().split())
                except OSError:
                    pass
        return found

    def cpu_s(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(x) for x in stat[11:15])  # utime stime cutime cstime
        return total / TICKS

    def peak_rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            total += sum(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
        return total / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_dcmtk(work: Path, parallel: bool) -> Receiver:
    port = free_port()
    out = work / f"dcmtk-{time.monotonic_ns()}"
    out.mkdir()
    argv = ["storescp", "-aet", "STORESCP", "-od", str(out), *(["--fork"] if parallel else []),
            str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TCP_NODELAY": "1"})
    wait_port(port)
    return Receiver("DCMTK storescp", proc, port, "STORESCP")


def start_pynetdicom(work: Path, parallel: bool) -> Receiver:
    port = free_port()
    out = work / f"pynetdicom-{time.monotonic_ns()}"
    out.mkdir()
    argv = [sys.executable, "-m", "pynetdicom", "storescp", str(port), "-aet", "PYSTORESCP",
            "-od", str(out), "-q"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return Receiver("pynetdicom storescp", proc, port, "PYSTORESCP")


def doseport_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DOSEPORT_HOME=str(home), DJANGO_SETTINGS_MODULE="doseport.settings",
               DOSEPORT_LOG_LEVEL="WARNING")
    return env


def start_doseport(work: Path, parallel: bool, processes: int) -> Receiver:
    home = work / f"doseport-home-{time.monotonic_ns()}"
    env = doseport_env(home)
    cli = [sys.executable, "-m", "doseport"]
    subprocess.run([*cli, "migrate", "-v0"], env=env, check=True, cwd=REPO)
    port = free_port()
    create = (
        "from nodes.models import StoreNode; "
        f"print(StoreNode.objects.create(name='bench', ae_title='DOSEPORT', port={port}, "
        "bind_address='127.0.0.1').pk)"
    )
    done = subprocess.run([*cli, "shell", "-c", create], env=env, check=True, cwd=REPO,
                          capture_output=True, text=True)
    node_id = done.stdout.strip().splitlines()[-1]
    extra = ["--processes", str(processes)] if parallel and processes > 1 else []
    proc = subprocess.Popen([*cli, "store", "run", node_id, *extra], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    if extra:  # helpers publish their counters once they serve: wait for all of them
        spool = home / "spool" / node_id
        deadline = time.monotonic() + 60
        while len(list(spool.glob("stats-*.json"))) < processes - 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the node's helper processes did not start")
            time.sleep(0.1)
    time.sleep(0.5)
    return Receiver("Doseport node", proc, port, "DOSEPORT")


# -- sending -----------------------------------------------------------------------------
def send(receiver: Receiver, files: list[Path], associations: int, nodelay: bool) -> float:
    env = {**os.environ}
    if nodelay:
        env["TCP_NODELAY"] = "1"
    else:
        env.pop("TCP_NODELAY", None)
    groups = [files[i::associations] for i in range(associations)]
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            ["storescu", "-R", "-aec", receiver.ae_title, "127.0.0.1", str(receiver.port),
             *map(str, group)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for group in groups
    ]
    for sender in senders:
        _, err = sender.communicate(timeout=900)
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed against {receiver.name}: {err[-500:]!r}")
    return time.perf_counter() - started


@dataclass
class Result:
    scenario: str
    receiver: str
    objects: int
    seconds: float
    cpu_ms_per_object: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.objects / self.seconds


def run_scenario(name: str, files: list[Path], associations: int, nodelay: bool, work: Path,
                 processes: int, round_no: int = 0) -> list[Result]:
    """Every receiver once; each round starts with a different receiver.

    Between receivers the received files are deleted, flushed and left to age for
    `SETTLE_S`: on this machine's ext4 (no journal) a file created within seconds of a
    deletion costs a scan of the recently deleted inodes, and keeping every file instead
    puts each receiver's page cache on never-touched VM memory. Either way the receiver
    that runs next would pay for the one before it (docs/PERFORMANCE.md).
    """
    results = []
    starters = [
        lambda: start_dcmtk(work, associations > 1),
        lambda: start_pynetdicom(work, associations > 1),
        lambda: start_doseport(work, associations > 1, processes),
    ]
    shift = round_no % len(starters)
    for start in starters[shift:] + starters[:shift]:
        receiver = start()
        try:
            send(receiver, files[:2], 1, True)  # warm-up association
            cpu_before = receiver.cpu_s()
            seconds = send(receiver, files, associations, nodelay)
            time.sleep(0.3)
            cpu = receiver.cpu_s() - cpu_before
            rss = receiver.peak_rss_mb()
        finally:
            receiver.stop()
        result = Result(name, receiver.name, len(files), seconds, cpu * 1000 / len(files), rss)
        print(f"{name:32s} {receiver.name:20s} {result.rate:8.1f} obj/s "
              f"{result.cpu_ms_per_object:6.2f} ms CPU/obj {rss:6.0f} MB", flush=True)
        results.append(result)
        settle(work)
    results.append(disk_ceiling(name, files, associations, work))
    settle(work)
    return results


DISK = "durable writes alone"


def disk_ceiling(name: str, files: list[Path], writers: int, work: Path) -> Result:
    """The same files written by `writers` threads exactly as the node's spool writes
    them (store.spool.Spool.write: write, name, fsync of file and folder), with no
    network and no DICOM: the most objects/s any receiver that answers only after fsync
    can reach on this disk."""
    from store.spool import Spool

    spool = Spool(work / f"doseport-home-disk-{time.monotonic_ns()}")
    spool.ensure()
    blobs = [path.read_bytes() for path in files]
    groups = [list(range(i, len(blobs), writers)) for i in range(writers)]
    errors: list[BaseException] = []

    def write(indexes: list[int]) -> None:
        try:
            for index in indexes:
                spool.write([blobs[index]], f"1.2.3.{index}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(group,)) for group in groups]
    cpu_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    cpu_ms = (time.process_time() - cpu_before) * 1000 / len(files)
    result = Result(name, DISK, len(files), seconds, cpu_ms, 0.0)
    print(f"{name:32s} {DISK:20s} {result.rate:8.1f} obj/s {cpu_ms:6.2f} ms CPU/obj", flush=True)
    return result


SETTLE_S = 6.0  # ext4 treats an inode as recently deleted for 5 s once it is on disk


def settle(work: Path) -> None:
    for child in work.iterdir():
        if child.name.startswith(("dcmtk-", "pynetdicom-", "doseport-home-")):
            shutil.rmtree(child, ignore_errors=True)
    os.sync()
    time.sleep(SETTLE_S)


def table(results: list[Result]) -> str:
    """Medians over the rounds; objects/s also shows the range when there were several,
    and the last column each round's ratio to DCMTK storescp in the same round."""
    lines = [
        "| scenario | receiver | objects/s | vs DCMTK | vs pynetdicom | receiver CPU ms/object "
        "| peak RSS MB | vs DCMTK, per round |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    keys = list(dict.fromkeys((r.scenario, r.receiver) for r in results))

    def runs(scenario: str, receiver: str) -> list[Result]:
        return [r for r in results if r.scenario == scenario and r.receiver == receiver]

    def rate(scenario: str, receiver: str) -> float:
        return statistics.median(r.rate for r in runs(scenario, receiver))

    for scenario, receiver in keys:
        mine = runs(scenario, receiver)
        shown = f"{rate(scenario, receiver):.1f}"
        if len(mine) > 1:
            shown += f" ({min(r.rate for r in mine):.0f}-{max(r.rate for r in mine):.0f})"
        cpu = statistics.median(r.cpu_ms_per_object for r in mine)
        rss = f"{max(r.peak_rss_mb for r in mine):.0f}" if receiver != DISK else "-"
        dcmtk = runs(scenario, "DCMTK storescp")
        rounds = ", ".join(f"{a.rate / b.rate:.2f}" for a, b in zip(mine, dcmtk, strict=False))
        lines.append(
            f"| {scenario} | {receiver} | {shown} | "
            f"{rate(scenario, receiver) / rate(scenario, 'DCMTK storescp'):.2f}x | "
            f"{rate(scenario, receiver) / rate(scenario, 'pynetdicom storescp'):.2f}x | "
            f"{cpu:.2f} | {rss} | {rounds} |"
        )
    return "\n".join(lines)


NOTES = """
Targets (issue 4) on this machine with durable writes: CT over one association >= 0.45x
DCMTK storescp; CT over 4 associations >= 0.6x (several processes allowed); dose reports:
receiver CPU per object <= DCMTK storescp's; CT >= 1.5x pynetdicom's stock storescp. Read
the table against them. The two cores and the disk are shared with whatever else runs, so
rates move by 20-40 % between runs (the ranges show it), DCMTK's as much as ours; receiver
CPU per object is the steadier figure, and the last column pairs each round with DCMTK's
run of the same round. A run is 1,000 CT images (--ct): with 300, a run over 4
associations lasted 0.2-0.5 s, so the four association set-ups and the machine's speed in
that half second decided the ratio (0.42-0.88x for the same code in one evening).

Where the time goes per object, and what was changed to get here (py-spy and perf):

- The fast lane (store/acceptor/lane.py, on by default, `DOSEPORT_STORE_FAST_LANE`): a
  C-STORE whose SOP class settles the import question (CT and other images, dose
  reports) is handled in the thread that reads the socket. Its data set fragments go
  from the receive buffer straight into the spool file, the command sets are decoded and
  encoded by hand (store/wire.py; the response is byte-for-byte what pynetdicom sends),
  and the response goes out from the same thread. pynetdicom's path (PDU objects, state
  machine, DIMSE reassembly, a second thread, pydicom command sets) cost ~2 ms of CPU per
  CT image; the node now needs 1.2-1.5 ms per CT image including the file system. Objects
  whose class needs a header peek (DX, MG, NM, Secondary Capture, generic SR) and every
  other message still take pynetdicom's path.
- What is left is mostly the file system: writing 512 KB into the page cache, creating
  the file, fsync of the file and of its folder. The next object's file is created right
  after the response is sent, while the sender reads its next file.
- The spool file is an unnamed `O_TMPFILE` file in the folder of the day (store/spool.py).
  On ext4 without a journal, the fsync of a newly created named file also writes the
  folder it was created in, so a named temporary file in tmp/ cost one more metadata
  write per object: 5.9 -> 5.1 block writes per CT image (/sys/block/vda/stat, 4 writers).
- The file is named with `linkat()` before its fsync, not after: the fsync then carries
  data, inode and folder entry to the device in one trip, and the folder's fsync that
  follows finds little left to write. Timed inside the node (4 associations), the commit
  had taken 2.5 ms per CT image: file fsync 1.4 ms, folder fsync 0.5 ms (mean 0.75), the
  rest waiting for the GIL; it was the largest part of the 7 ms each association spends
  per image. In 4 paired rounds of 1,000 CT images: 0.69x -> 0.80x DCMTK (median). After a
  power failure the objects being committed can be left torn under their names; they
  were never acknowledged (docs/conformance.md).
- Import hand-off: putting the import task on the Huey queue (a SQLite transaction,
  with lock waits between the node's processes) in the association thread cost about 7 %
  of the objects/s over 4 associations (5 paired runs: 862 vs 929 CT/s). The association
  now hands the path to one dispatcher thread per process (store/dispatch.py), which
  queues whatever has arrived in one task.
- This machine's ext4 has no journal. There, creating a file within seconds of deleting
  others costs a scan of the recently deleted inodes (`recently_deleted()` was a quarter
  of the node's CPU in one profile), and a file system that keeps every file puts each new
  page-cache page on never-touched VM memory. The bench therefore deletes, syncs and waits
  6 s between receivers and rotates their order per round, so that no receiver pays for
  the files of the one before it.
- pynetdicom polls: its association and DUL threads sleep 1 ms per loop. `store/acceptor/loops.py`
  makes both loops wait on events instead (DUL: `select()` on the socket and a wake-up
  pipe; association: an Event set when a message is queued).
- pynetdicom deep-copies the supported contexts (170 storage classes x 39 transfer
  syntaxes) for every association: 66 -> 29 ms per association set-up with a shared copy.
- 4 associations: `--processes N` processes accept from one listening socket (helpers
  inherit it); a process that already serves associations waits 10 ms per association
  before accepting, so the least busy one takes the next connection (SO_REUSEPORT's hash
  put 3 of 4 connections on one process in some runs). 2 processes suit 2 cores; with 4
  processes the receiver needs more CPU per object (more processes than cores).
- "durable writes alone" is the ceiling for any receiver that answers after fsync: the
  same files written by as many threads as there are associations, exactly as the spool
  writes them, with no network and no DICOM. DCMTK storescp does not fsync, so it can go
  above that row; the node cannot. Over 4 associations the node and the four senders
  share the 2 cores: the receiver's fsync and page-cache writes take longer there than
  in the ceiling run, which has the machine to itself.
- Nagle: DCMTK without `TCP_NODELAY=1` sends each PDU in two writes and the second waits
  for the receiver's delayed ACK (~40 ms). The node re-arms `TCP_QUICKACK` before every
  read, so such a sender is not slowed down (last row), where DCMTK storescp and
  pynetdicom storescp fall to ~18 objects/s.
- Dose reports: the sender (storescu parses every SR) limits objects/s; compare receiver
  CPU per report.
"""


def write_docs(section: str) -> None:
    path = REPO / "docs" / "PERFORMANCE.md"
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find("\n" + HEADING + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start + 1] + section + (text[end:] if end != -1 else "")
    path.write_text(text if text.endswith("\n") else text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=1000, help="CT images (default 1000)")
    parser.add_argument("--sr", type=int, default=300, help="dose reports (default 300)")
    parser.add_argument("--nagle", type=int, default=40,
                        help="objects for the Nagle scenario (default 40)")
    parser.add_argument("--processes", type=int, default=2,
                        help="Doseport listening processes for 4 associations (default 2)")
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every scenario; the table shows medians (default 1)")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the Store section of docs/PERFORMANCE.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        work = Path(tmp)
        (work / "ct").mkdir()
        (work / "sr").mkdir()
        ct = build_ct(work / "ct", args.ct)
        sr = build_sr(work / "sr", args.sr)
        sr_kb = sum(p.stat().st_size for p in sr) / len(sr) / 1024
        ct_kb = ct[0].stat().st_size / 1024
        scenarios = [
            ("CT, 1 association", ct, 1, True),
            ("CT, 4 associations", ct, 4, True),
            ("dose SR, 1 association", sr, 1, True),
            ("dose SR, 4 associations", sr, 4, True),
            ("dose SR, Nagle on (no TCP_NODELAY)", sr[: args.nagle], 1, False),
        ]
        results: list[Result] = []
        for round_no in range(args.repeat):
            for name, files, assocs, nodelay in scenarios:
                if args.only and args.only not in name:
                    continue
                results.extend(run_scenario(name, files, assocs, nodelay, work, args.processes,
                                            round_no))
    command = "    .venv/bin/python bench/store_throughput.py " + " ".join(sys.argv[1:])
    section = "\n".join([
        HEADING,
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core machine "
        f"(loopback) with:",
        "",
        command,
        "",
        f"Objects: {len(ct)} CT images of {ct_kb:.0f} KB (512x512, 16 bit) and {len(sr)} CT "
        f"dose reports of {sr_kb:.0f} KB on average. Sender: DCMTK `storescu` (one process per "
        "association, `TCP_NODELAY=1` except in the Nagle scenario). Receivers: DCMTK "
        "`storescp` (`--fork` for 4 associations; no fsync), pynetdicom's stock `storescp` "
        "app (writes files, no fsync) and a Doseport node (`doseport store run`, "
        f"`--processes {args.processes}` for 4 associations: spool write with fsync of file and "
        "folder, plus each object handed to the import queue). Receiver "
        "CPU and peak RSS add up the receiver's processes (storescp's forked children, "
        "the node's helper listeners).",
        "",
        table(results),
        NOTES,
    ])
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
