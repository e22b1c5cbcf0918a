"""Which program holds a TCP port: read from /proc (Linux), no external tool.

Used to say "port 11112 is in use by another program (orthanc, pid 812)" instead of
"[Errno 98] Address already in use". Only processes this user may inspect can be named;
for the others (or off Linux) the answer is None and callers say "another program".
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def _listening_inodes(port: int, proc: Path) -> set[str]:
    """Socket inodes listening on `port` (IPv4 and IPv6)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != _LISTEN:
                continue
            try:
                local_port = int(cols[1].rsplit(":", 1)[1], 16)
            except (IndexError, ValueError):
                continue
            if local_port == port and cols[9] != "0":
                inodes.add(cols[9])
    return inodes


def _program(pid_dir: Path) -> str:
    try:
        return (pid_dir / "comm").read_text().strip() or "?"
    except OSError:
        return "?"


def holder_of(port: int, proc: Path = PROC) -> str | None:
    """"name (pid N)" of a process listening on TCP `port`, or None when unknown."""
    if not 0 < port < 65536:
        return None
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port, proc)}
    if not targets:
        return None
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for pid_dir in pids:
        try:
            fds = os.listdir(pid_dir / "fd")
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                link = os.readlink(pid_dir / "fd" / fd)
            except OSError:
                continue
            if link in targets:
                return f"{_program(pid_dir)} (pid {pid_dir.name})"
    return None


def in_use_message(port: int, exc: OSError) -> str | None:
    """A sentence for a failed bind when the port is taken; None for other errors."""
    if exc.errno != errno.EADDRINUSE:
        return None
    holder = holder_of(port)
    who = f"another program: {holder}" if holder else "another program"
    return f"port {port} is in use by {who}"
