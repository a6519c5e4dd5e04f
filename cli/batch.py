"""``fastkm compress IN... [--out-dir DIR] --jobs N | --scheduler ADDRESS``: many files at
once, by fastkm.batch, with a progress bar (files/s, ETA) and an optional CSV report."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from . import firstrun, outputs, report
from .errors import CliError, print_error


def _client(scheduler: str):
    """A dask.distributed client: a LocalCluster for "local", else the scheduler at
    ``scheduler``; a clear error when Dask is not installed."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CliError("--scheduler needs Dask: pip install 'fastkm[dask]'") from None
    if scheduler == "local":
        cluster = LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except OSError as exc:
        raise CliError(f"--scheduler: cannot reach {scheduler} ({exc})") from None


def run(inputs: list[Path], targets: list[Path], k: int, fit: dict, *, force: bool,
        skip_existing: bool, jobs: int | None, scheduler: str | None, csv_path: Path | None,
        quiet: bool, debug: bool) -> tuple[list[report.Result], int]:
    """Compress every input to its target; returns the table rows (input order) and how
    many files failed (each already reported as one line on stderr)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from fastkm.batch import compress_many

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} files/s")

    failures = 0
    err = report.console(stderr=True)
    bar = Progress(TextColumn("compressing"), BarColumn(), MofNCompleteColumn(), Rate(),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err,
                   transient=True, disable=quiet or not err.is_terminal)

    first_compile = firstrun.batch_notice(k, fit["space"], fit["dither"],
                                          outputs.format_of(targets[0]) if targets else None)

    def on_compile(name: str) -> None:
        # Workers compile silently otherwise: a first run's first files would take half a
        # minute without a word. Printed through the bar's console, above it.
        line = first_compile(name)
        if line is not None and not quiet:
            (bar.console if bar.live.is_started else err).print(line)

    def on_result(result) -> None:
        nonlocal failures
        if result.error is not None:
            failures += 1
            print_error(result.error)
        bar.update(task, advance=1)

    client = cluster = None
    if scheduler is not None:
        client, cluster = _client(scheduler)
    from fastkm.jit import on_compile as compiling_here

    stop_listening = compiling_here(on_compile)  # files done in this process (--jobs 1)
    try:
        with bar:
            task = bar.add_task("compressing", total=len(inputs))
            results = compress_many(inputs, None, k, targets=targets, jobs=jobs,
                                    client=client, skip_existing=skip_existing,
                                    overwrite=force, measure=not quiet or csv_path is not None,
                                    on_result=on_result, on_compile=on_compile, **fit)
    finally:
        stop_listening()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if csv_path is not None:
        _write_csv(csv_path, results, force)
    rows = [report.Result(width=r.width, height=r.height, n_distinct=r.n_distinct, k=r.k,
                          mse=r.mse, psnr=r.psnr, n_bytes=r.n_bytes, seconds=r.seconds,
                          output=r.target, delta_e=r.delta_e)
            for r in results if r.ok and not r.skipped]
    return rows, failures


CSV_FIELDS = ("source", "target", "status", "error", "width", "height", "n_distinct", "k",
              "mse", "psnr", "delta_e", "n_bytes", "seconds")


def _write_csv(path: Path, results, force: bool) -> None:
    from fastkm.fileio import atomic_write_bytes

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = {name: value for name, value in r.row().items() if name in CSV_FIELDS}
        row["status"] = "skipped" if r.skipped else "ok" if r.ok else "error"
        row["error"] = r.error or ""
        writer.writerow(row)
    # The name was checked before any work (cli.app.compress); refused here too if a file
    # appeared there meanwhile.
    atomic_write_bytes(path, text.getvalue().encode(), overwrite=force)


def existing(targets: list[Path]) -> set[str]:
    return {os.path.abspath(t) for t in targets if t.exists()}
