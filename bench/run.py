"""Run the benchmarks and write bench/RESULTS.md.

    python bench/run.py                       # everything (about an hour on 2 cores)
    python bench/run.py --only kmeans,codec   # some sections
    python bench/run.py --quick               # small sizes, a smoke test (no RESULTS.md)

Sections: kmeans (bench_kmeans.py), quantize (bench_quantize.py), codec (bench_codec.py),
perceptual (bench_perceptual.py).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

SECTIONS = {"kmeans": "bench_kmeans", "quantize": "bench_quantize", "codec": "bench_codec",
            "perceptual": "bench_perceptual"}


def main() -> None:
    ap = argparse.ArgumentParser(description="Run fastkm's benchmarks; write bench/RESULTS.md.")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--quick", action="store_true", help="small sizes; print, do not write")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    import fastkm
    parts = [
        "# fastkm benchmark results",
        "",
        f"- machine: {machine()}",
        f"- date: {datetime.date.today().isoformat()}, fastkm {fastkm.__version__}",
        f"- command: `python bench/run.py{' --only ' + args.only if args.only != ','.join(SECTIONS) else ''}`",
        f"- threads: Numba uses {os.cpu_count()} (its default); peers use their defaults",
        "",
    ]
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        parts += [importlib.import_module(SECTIONS[name]).run(quick=args.quick), ""]
    text = "\n".join(parts)
    print(text)
    if not args.quick:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
