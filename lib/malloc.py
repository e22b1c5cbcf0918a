"""glibc malloc settings of a long-running process (store nodes, the worker).

Measured (issue 14, bench/soak.py): a node's RSS grew ~0.5 KB per object, linearly, while
tracemalloc showed the Python heap flat (under 0.1 MB over 10,000 objects) and glibc's
bytes in use flat too; what grew was free memory inside malloc's arenas that was never
given back. Each association brings new threads and glibc gives threads their own arenas
(up to 8 per core); while the worker imports, the node's import hand-off (a SQLite
transaction on the task queue) and the association threads free and allocate in
different arenas, and free space scattered over many arenas is neither reused nor
returned. With one arena (or with malloc_trim) the same runs stayed flat.

So the node process uses one arena (set before its first thread starts: the limit is
read when the second arena would be made) and the maintenance loop trims now and then,
which gives a burst's pages (large images) back as well. The worker (Huey's worker,
scheduler and consumer threads) does the same: in the 100,000-object soak its RSS grew
~0.4 MB per 1,000 objects with an arena per thread. Elsewhere (no glibc) both are no-ops.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc malloc.h


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def use_one_arena() -> bool:
    """All threads allocate from the main arena; call before starting threads."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, 1))


def trim() -> bool:
    """Give free heap pages back to the system; True when any were."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
