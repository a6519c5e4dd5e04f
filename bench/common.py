"""Small helpers shared by the benchmarks: machine description, timing, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time


def machine() -> str:
    """One line: CPU model, cores, memory, Python."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


# Worker threads of whatever ran before (OpenBLAS's, behind any large NumPy matrix product,
# and OpenMP's) busy-wait for their next task for up to ~0.2 s, on the cores the next timed
# code needs: a Numba pass on 2 cores took twice as long within 0.1 s of a NumPy `w @ X`.
# Every timed call therefore starts once they have gone to sleep.
SETTLE_S = 0.3


def timed(fn, repeat=1):
    """(median seconds, last result) of ``repeat`` calls of ``fn()``, after ``SETTLE_S`` idle."""
    time.sleep(SETTLE_S)
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def table(header, rows) -> str:
    """A Markdown table; cells are formatted by the caller."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
