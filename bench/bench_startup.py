"""Start-up: the first (cold) run of each CLI path, warm runs of the whole process, imports,
and pngquant beside them.

Cold = a new process with NUMBA_CACHE_DIR set to an empty folder. Every figure is the median
of ``REPEAT`` whole-process runs (wall clock, including Python's own start). The README's
main job is ``fastkm compress examples/path-640.jpg -k 16 -o path-640.fkm``. With
FASTKM_BASELINE=/path/to/venv (another checkout's venv with fastkm installed), the main job
and the imports are also timed with that install, interleaved, for an A/B in one run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import table

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "path-640.jpg"
REPEAT = 5


def _time(cmd: list[str], env: dict, cwd: str, check_stderr=None) -> float:
    start = time.perf_counter()
    run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {run.stderr[-500:]}")
    if check_stderr is not None:
        check_stderr(run.stderr)
    return seconds


def _cold(cmd, cwd, repeat, check_stderr=None) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            times.append(_time(cmd, env, cwd, check_stderr))
    return statistics.median(times)


def _notice(stderr: str) -> None:
    assert stderr.startswith("fastkm: compiling kernels"), stderr


def _silent(stderr: str) -> None:
    assert stderr == "", stderr


def run(quick: bool = False) -> str:
    from PIL import Image

    repeat = 1 if quick else REPEAT
    bindir = Path(sys.executable).parent
    fastkm = [str(bindir / "fastkm")]
    baseline = os.environ.get("FASTKM_BASELINE")
    base = [str(Path(baseline) / "bin" / "fastkm")] if baseline else None
    work = tempfile.mkdtemp(prefix="fastkm-startup-")
    try:
        png = Path(work) / "path-640.png"
        with Image.open(DEMO) as im:
            im.save(png)
            im.convert("L").save(Path(work) / "grey.png")
            im.convert("RGBA").save(Path(work) / "rgba.png")
        main = ["compress", str(DEMO), "-k", "16", "-o", "out.fkm", "--force"]
        paths = {
            "main job (RGB, .fkm)": main,
            "grey": ["compress", "grey.png", "-k", "16", "-o", "g.fkm", "--force"],
            "RGBA": ["compress", "rgba.png", "-k", "16", "-o", "a.fkm", "--force"],
            "oklab": main[:-3] + ["--space", "oklab", "-o", "o.fkm", "--force"],
            "fs": main[:-3] + ["--dither", "fs", "-o", "f.fkm", "--force"],
            "ordered": main[:-3] + ["--dither", "ordered", "-o", "d.fkm", "--force"],
            ".png output": main[:-3] + ["-o", "p.png", "--force"],
            "K = 64": ["compress", str(DEMO), "-k", "64", "-o", "k.fkm", "--force"],
            "compare": ["compare", str(DEMO), "-k", "4", "-k", "16", "-o", "c.png", "--force"],
        }
        rows = []
        print("  cold runs", file=sys.stderr, flush=True)
        if base:
            rows.append(["main job, starting commit (no notice, no background compile)",
                         f"{_cold(base + main, work, repeat):.1f}"])
        for name, args in paths.items():
            rows.append([name, f"{_cold(fastkm + args, work, repeat, _notice):.1f}"])
        # decode needs a .fkm: made warm, then timed cold on an empty cache.
        subprocess.run(fastkm + main, cwd=work, check=True, capture_output=True)
        decode = fastkm + ["decode", "out.fkm", "-o", "dec.png", "--force"]
        rows.append(["decode", f"{_cold(decode, work, repeat, _notice):.1f}"])
        rows.append(["`fastkm warmup` (every path, 2 processes)",
                     f"{_cold(fastkm + ['warmup'], work, repeat):.1f}"])
        cold = table(["cold path (empty NUMBA_CACHE_DIR)", "seconds"], rows)

        print("  warm runs", file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.pop("NUMBA_CACHE_DIR", None)
        for cmd in [fastkm + main] + ([base + main] if base else []):
            subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
        python = str(bindir / "python")
        cases = [("`fastkm compress` main job, whole process", fastkm + main, _silent),
                 ("`fastkm --help`", fastkm + ["--help"], None),
                 ("`python -c 'import fastkm'`", [python, "-c", "import fastkm"], None)]
        if base:
            bpython = str(Path(baseline) / "bin" / "python")
            cases += [("starting commit: main job", base + main, None),
                      ("starting commit: `fastkm --help`", base + ["--help"], None),
                      ("starting commit: `import fastkm`", [bpython, "-c", "import fastkm"],
                       None)]
        if shutil.which("pngquant"):
            cases.append(("`pngquant --nofs 16` on the same photo as PNG",
                          ["pngquant", "--nofs", "16", "--force", "--output", "pq.png",
                           str(png)], None))
        samples = {name: [] for name, _, _ in cases}
        for _ in range(repeat):  # interleaved: every case once per round
            for name, cmd, check in cases:
                samples[name].append(_time(cmd, env, work, check))
        warm = table(["warm (cached kernels)", "median seconds", "min", "max"],
                     [[n, f"{statistics.median(s):.3f}", f"{min(s):.3f}", f"{max(s):.3f}"]
                      for n, s in samples.items()])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    return "\n".join([
        "## Start-up: first run and process start",
        "",
        f"Median of {repeat} whole-process runs (wall clock). Cold: a new process with "
        "`NUMBA_CACHE_DIR` set to an empty folder; each cold path compiles only what it "
        "reaches (the CLI prints its one-line notice, checked, and one background process "
        "compiles the command's kernels from the last used). Warm: the cache filled; the "
        f"cases interleaved round by round. Load average at the end: {load}. "
        "`python bench/run.py --only startup` (FASTKM_BASELINE=<venv of the starting "
        "commit> adds its figures).",
        "", cold, "", warm, ""])


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
