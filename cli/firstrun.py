"""The first run on a machine: say that kernels are compiling, and compile in two processes.

Nothing here runs when Numba's cache is warm: the hook only fires on a cache miss, so a warm
run prints nothing and starts no process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Iterable

from . import report

NOTICE = "fastkm: compiling kernels for this CPU (first run only, about {} s)…"


class CompileNotice:
    """For the length of a ``with`` block: on the first kernel compilation, one line on
    stderr (and a spinner on a terminal), and a background process that compiles, from the
    last used, the kernels of the scenarios named by :meth:`expect`."""

    def __init__(self, quiet: bool = False, background: bool = True):
        self.quiet = quiet
        self.background = background
        self.started = False
        self._expected: list[str] = []
        self._worker: subprocess.Popen | None = None
        self._status = None
        self._remove = None

    def __enter__(self) -> "CompileNotice":
        global _CURRENT
        from fastkm.jit import lean_cache_loads, on_compile

        lean_cache_loads()
        self._remove = on_compile(self._on_compile)
        _CURRENT = self
        return self

    def expect(self, scenarios: Iterable[str]) -> None:
        """What the command is about to do (fastkm.warmup scenario names)."""
        self._expected = list(dict.fromkeys([*self._expected, *scenarios]))

    def _estimate(self) -> int:
        return _estimate(self._expected, 2 if self.background else 1)

    def _on_compile(self, name: str) -> None:
        if self.started:
            return
        self.started = True
        if self.background and self._expected:
            from fastkm import warmup

            try:
                self._worker = warmup.start_background(self._expected)
            except Exception:  # only a speed-up: the command compiles what it needs itself
                self._worker = None
        if self.quiet:
            return
        line = NOTICE.format(self._estimate())
        active = report.active_progress()
        if active is not None:
            active.console.print(line)
            report.describe(active, "compiling kernels")
            return
        err = report.console(stderr=True)
        err.print(line)
        if err.is_terminal:
            self._status = err.status("compiling kernels (first run only)", spinner="dots")
            self._status.start()

    def __exit__(self, *exc) -> None:
        global _CURRENT
        _CURRENT = None
        if self._remove is not None:
            self._remove()
        if self._status is not None:
            self._status.stop()
        if self._worker is not None and self._worker.poll() is None:
            self._worker.terminate()
            try:
                self._worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._worker.kill()


_CURRENT: CompileNotice | None = None


def _estimate(scenarios: Iterable[str], processes: int) -> int:
    """Seconds (rounded to 5, at least 5) to compile the kernels of ``scenarios`` shared
    among ``processes``, from the compile plan's measured times."""
    from fastkm import warmup

    plan = warmup._plan()
    seconds = sum(plan.KERNELS[i][3] for i in warmup.kernels_for(scenarios)) / processes
    return max(5, int(round(seconds / 5.0)) * 5)


def batch_notice(k: int, space: str, dither: str, output: str | None):
    """For ``compress`` with several files in worker processes: a function to call with
    each kernel name a worker starts compiling; it returns the notice line the first time
    (each worker compiles every kernel it needs, so the estimate is not halved), then None."""
    from fastkm import warmup
    from fastkm.jit import lean_cache_loads

    lean_cache_loads()  # workers forked after this inherit it (not forkserver/spawn ones)
    said = False

    def on_compile(name: str) -> str | None:
        nonlocal said
        if said:
            return None
        said = True
        return NOTICE.format(_estimate(warmup.scenarios_for("rgb", k, space, dither, output), 1))

    return on_compile


def expect(image, k: int, space: str, dither: str, output: str | None) -> None:
    """Tell the notice in force (if any) what comes next: quantizing ``image`` to ``k``
    colours this way, then encoding it as ``output``."""
    if _CURRENT is not None:
        from fastkm.warmup import scenarios_for

        channels = 1 if image.ndim == 2 else image.shape[2]
        kind = {1: "grey", 3: "rgb", 4: "rgba"}.get(channels, "rgb")
        _CURRENT.expect(scenarios_for(kind, k, space, dither, output))


def warmup(jobs: int | None, quiet: bool) -> None:
    """Compile every kernel the CLI can reach, in ``jobs`` processes, with a progress bar;
    then run each scenario once here, which compiles anything the plan has missed."""
    from fastkm import warmup as plan

    indices = plan.kernels_for(plan.SCENARIOS)
    start = time.perf_counter()
    with report.progress(len(indices), "compiling kernels", enabled=not quiet) as bar:
        failed = plan.warm(indices, jobs, progress=lambda n: report.advance(bar))
    with CompileNotice(quiet=True, background=False) as notice:
        for name in plan.SCENARIOS:
            plan.run_scenario(name)
    seconds = time.perf_counter() - start
    if not quiet:
        extra = " (and some the plan missed: regenerate it with bench/compile_plan.py)" \
            if failed or notice.started else ""
        print(f"fastkm: {len(indices)} kernels compiled and cached in {seconds:.1f} s"
              f"{extra}", file=sys.stderr)
