"""Run the benchmarks and write bench/RESULTS.md.

    python bench/run.py                       # everything (about an hour on 2 cores)
    python bench/run.py --only kmeans,codec   # re-run some sections; the others in
                                              # RESULTS.md are kept as they are
    python bench/run.py --quick               # small sizes, a smoke test (no RESULTS.md)

Sections: kmeans (bench_kmeans.py), quantize (bench_quantize.py), codec (bench_codec.py),
perceptual (bench_perceptual.py), startup (bench_startup.py), png (bench_png.py),
sparse (bench_sparse.py), batch (bench_batch.py), dask (bench_dask.py), hard (bench_hard.py).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

SECTIONS = {"kmeans": "bench_kmeans", "quantize": "bench_quantize", "codec": "bench_codec",
            "perceptual": "bench_perceptual", "startup": "bench_startup",
            "png": "bench_png", "sparse": "bench_sparse",
            "batch": "bench_batch", "dask": "bench_dask", "hard": "bench_hard"}


MARK = "<!-- section: {} {} -->"


def kept_sections(path: Path) -> dict[str, tuple[str, str]]:
    """The sections of an earlier RESULTS.md: name -> (date, text up to the next marker)."""
    if not path.exists():
        return {}
    pieces = re.split(r"<!-- section: (\w+) ([\d-]+) -->\n", path.read_text())
    return {pieces[i]: (pieces[i + 1], pieces[i + 2].rstrip() + "\n")
            for i in range(1, len(pieces) - 2, 3)}


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
    old = {} if args.quick or set(names) == set(SECTIONS) else kept_sections(Path(args.out))
    today = datetime.date.today().isoformat()
    parts = [
        "# fastkm benchmark results",
        "",
        f"- machine: {machine()}",
        f"- date: {today}, fastkm {fastkm.__version__}",
        "- command: `python bench/run.py`",
        f"- threads: Numba uses {os.cpu_count()} (its default); peers use their defaults",
    ]
    dates = {}
    for name in SECTIONS:
        if name in names:
            dates[name] = today
        elif name in old:
            dates[name] = old[name][0]
    if old:
        parts[3:5] = [f"- command: `python bench/run.py --only {','.join(names)}`; the other "
                      "sections are kept from an earlier run",
                      "- sections run on: " + ", ".join(f"{n} {d}" for n, d in dates.items())]
    parts.append("")
    for name in dates:
        if name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            body = importlib.import_module(SECTIONS[name]).run(quick=args.quick)
        else:
            body = old[name][1]
        parts += [MARK.format(name, dates[name]), body, ""]
    text = "\n".join(parts)
    print(text)
    if not args.quick:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
