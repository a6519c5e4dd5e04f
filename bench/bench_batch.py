"""Many files: ``fastkm compress IN... --out-dir`` against pngquant, one file after another
and ``xargs -P 2``; and the 7 large photos as one batch against the serial command
(``--jobs 1``, one file after another).

With ``FASTKM_BASELINE`` naming the venv of another install (as for bench_startup.py; for
example of 30a0c42, the code when issue 19 was filed, whose ``compress IN...`` ran one
file after another), its command joins both tables, timed in the same rounds.

The 48 inputs are crops of about 0.2 MP (520 x 390) of ../shared/images, saved as PNG in a
temporary folder. Every command is run once to warm caches (Numba's, the page cache), then
the commands are timed interleaved, ``REPEAT`` rounds, median. ``run(quick)`` returns the
Markdown section for bench/RESULTS.md.
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

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent.parent / "shared" / "images"
FASTKM = str(Path(sys.executable).with_name("fastkm"))
REPEAT = 3
K = 64
CROP = (520, 390)


def make_crops(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    photos = sorted(p for p in IMAGES.glob("*.jpg"))
    out = []
    i = 0
    while len(out) < n:
        with Image.open(photos[i % len(photos)]) as im:
            im = im.convert("RGB")
            w, h = im.size
            j = i // len(photos)
            x = (j * 397) % max(1, w - CROP[0])
            y = (j * 211) % max(1, h - CROP[1])
            path = folder / f"crop{len(out):02d}.png"
            im.crop((x, y, x + CROP[0], y + CROP[1])).save(path)
            out.append(path)
        i += 1
    return out


def load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def sh(cmd: str) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def clean(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def run(quick: bool = False) -> str:
    if not IMAGES.is_dir():
        return "## Batch\n\nskipped: ../shared/images is absent\n"
    if shutil.which("pngquant") is None:
        return "## Batch\n\nskipped: pngquant is not installed\n"
    repeat = 1 if quick else REPEAT
    tmp = Path(tempfile.mkdtemp(prefix="fastkm-batch-"))
    try:
        src = tmp / "in"
        src.mkdir()
        crops = make_crops(src, 8 if quick else 48)
        names = " ".join(str(p) for p in crops)
        out, pq = tmp / "out", tmp / "pq"
        large = sorted(IMAGES.glob("*.jpg"))
        large_names = " ".join(str(p) for p in large)
        cmds = {
            "fastkm --out-dir (jobs = cores)":
                (out, f"{FASTKM} compress {names} -k {K} -q --out-dir {out}"),
            "fastkm --out-dir --jobs 1 (serial)":
                (out, f"{FASTKM} compress {names} -k {K} -q --out-dir {out} --jobs 1"),
            "shell loop of pngquant --nofs 64":
                (pq, (f"for f in {names}; do pngquant --nofs {K} --force --output "
                      f"{pq}/$(basename $f) $f; done")),
            "xargs -P 2 pngquant --nofs 64":
                (pq, (f"printf '%s\\n' {names} | xargs -P 2 -I{{}} sh -c "
                      f"'pngquant --nofs {K} --force --output {pq}/$(basename {{}}) {{}}'")),
        }
        big = {
            "fastkm 7 large, batch (jobs = cores)":
                (out, f"{FASTKM} compress {large_names} -k {K} -q --out-dir {out}"),
            "fastkm 7 large, serial (--jobs 1)":
                (out, f"{FASTKM} compress {large_names} -k {K} -q --out-dir {out} --jobs 1"),
        }
        baseline = os.environ.get("FASTKM_BASELINE")
        if baseline:
            baseline = str(Path(baseline) / "bin" / "fastkm")
            cmds["FASTKM_BASELINE compress (serial)"] = (
                out, f"{baseline} compress {names} -k {K} -q --out-dir {out}")
            big["FASTKM_BASELINE 7 large (serial)"] = (
                out, f"{baseline} compress {large_names} -k {K} -q --out-dir {out}")
        times = {name: [] for name in [*cmds, *big]}
        loads = [load()]
        for name, (folder, cmd) in [*cmds.items(), *big.items()]:  # warm-up
            clean(folder)
            sh(cmd)
        for _ in range(repeat):
            for name, (folder, cmd) in [*cmds.items(), *big.items()]:
                clean(folder)
                time.sleep(0.3)
                times[name].append(sh(cmd))
            print({n: round(t[-1], 2) for n, t in times.items()}, file=sys.stderr)
        loads.append(load())
        med = {n: statistics.median(t) for n, t in times.items()}
        base = med["fastkm --out-dir (jobs = cores)"]
        rows = [(n, f"{med[n]:.2f}", f"{min(times[n]):.2f}", f"{med[n] / base:.2f}")
                for n in cmds]
        big_base = med["fastkm 7 large, batch (jobs = cores)"]
        big_rows = [(n, f"{med[n]:.2f}", f"{min(times[n]):.2f}", f"{med[n] / big_base:.2f}")
                    for n in big]
        return "\n".join([
            "## Batch: many files in one command",
            "",
            (f"- command: `python bench/run.py --only batch`; {len(crops)} crops of "
             f"{CROP[0]}x{CROP[1]} (0.2 MP) of ../shared/images as PNG, K = {K}, .fkm outputs "
             f"for fastkm; {os.cpu_count()} cores; warm run first, then {repeat} interleaved "
             "rounds, median (and min) wall seconds including process start"),
            f"- load average at start / end: {loads[0]} / {loads[1]} (shared machine)",
            *([f"- FASTKM_BASELINE: `{baseline}`"] if baseline else []),
            "",
            table(["command", "median s", "min s", "x fastkm batch"], rows),
            "",
            f"The {len(large)} photos of ../shared/images (K = {K}):",
            "",
            table(["command", "median s", "min s", "x fastkm batch"], big_rows),
            "",
        ])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
