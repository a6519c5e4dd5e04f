"""Many images at once: each file quantized and written by a worker process, or by a Dask task.

``compress_many`` runs one task per file. A task reads its input, quantizes it, encodes it
and writes it through a temporary file and a rename (``fastkm.fileio``), so an interrupted
or killed task never leaves a half-written output, and a retried one simply writes it
again. A file that fails gives a result with its error; the others go on.

On one machine the tasks run in a pool of worker processes (``jobs``, default the number of
cores). Several files run at once, so each worker gives a small image's Numba kernels one
thread, and an image of ``LARGE_PIXELS`` or more the cores left to each worker (one when
there are as many workers as cores: more threads than cores made a batch of large photos
4x slower). While one worker computes, the other reads its next file. A worker that dies
(killed, out of memory) breaks the pool: a new one takes the remaining files, and each file
that was running is tried once more alone; one that kills its worker again fails with
``DIED``.

With ``client`` (a ``dask.distributed.Client``) each file is a task on the cluster; the
workers read and write the paths themselves, so they must be on storage the workers share.
Dask retries the task of a worker that dies (``retries``).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .fileio import OutputWriteError

#: From this many pixels an image's kernels get every thread of its worker, below it one.
LARGE_PIXELS = 1 << 20
FORMATS = ("fkm", "png")


@dataclass
class FileResult:
    """What became of one input: ``error`` is None on success, else a one-line message."""

    source: str
    target: str
    error: str | None = None
    skipped: bool = False
    width: int = 0
    height: int = 0
    n_distinct: int = 0
    k: int = 0
    mse: float = float("nan")
    psnr: float = float("nan")
    delta_e: float = float("nan")
    n_bytes: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict:
        return asdict(self)


def plan_targets(inputs, out_dir, fmt="fkm") -> list[Path]:
    """The output of each input: its name with the format's extension, in ``out_dir`` (or
    beside the input when ``out_dir`` is None). Refuses two inputs with one output."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    targets, seen = [], {}
    for source in map(Path, inputs):
        target = (Path(out_dir) if out_dir is not None else source.parent) / (source.stem
                                                                             + "." + fmt)
        key = os.path.abspath(target)
        if key in seen:
            raise ValueError(f"{seen[key]} and {source} would both be written to {target}")
        seen[key] = source
        targets.append(target)
    return targets


def _threads_for(n_pixels: int, large_threads: int) -> int:
    return large_threads if n_pixels >= LARGE_PIXELS else 1


def _encode(q, fmt: str) -> bytes:
    if fmt == "fkm":
        from .codec import encode

        return encode(q)
    from .images import png_bytes

    return png_bytes(q)


def compress_file(source, target, n_colors, options=None, *, overwrite=False,
                  measure=True, large_threads=None) -> FileResult:
    """Quantize ``source`` to ``n_colors`` colours and write ``target`` (.fkm or .png by its
    extension) through a temporary file and a rename. Never raises for a bad input: the
    result carries the error's one-line message. ``large_threads`` (for a worker among
    several): the kernels get one thread below ``LARGE_PIXELS``, that many from it; None
    leaves Numba's threads as they are."""
    import numba

    from .fileio import atomic_write_bytes
    from .images import image_size, read_image
    from .quantize import quantize

    start = time.perf_counter()
    result = FileResult(str(source), str(target), k=int(n_colors))
    threads = numba.get_num_threads()
    try:
        source, target = Path(source), Path(target)
        if source.suffix.lower() == ".fkm":
            raise ValueError(f"{source}: is a .fkm file already (fastkm decode turns it into "
                             "a PNG)")
        fmt = target.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"{target}: unknown extension (use .fkm or .png)")
        if fmt == "fkm":
            from . import codec

            # From the header: a picture too large is refused before it is decoded.
            limit = getattr(codec, "MAX_PIXELS", None)
            w, h = image_size(source)
            if limit is not None and h * w > limit:
                raise ValueError(f"{source}: {w}x{h} pixels is more than a .fkm file holds; "
                                 "write a .png instead")
        image = read_image(source)
        h, w = image.shape[:2]
        if large_threads is not None:
            numba.set_num_threads(min(_threads_for(h * w, large_threads),
                                      numba.config.NUMBA_NUM_THREADS))
        q = quantize(image, n_colors, **(options or {}))
        data = _encode(q, fmt)
        atomic_write_bytes(target, data, overwrite=overwrite)
        result.width, result.height, result.n_distinct = w, h, int(q.n_distinct)
        result.k, result.mse, result.psnr = q.n_colors, float(q.mse), float(q.psnr)
        result.n_bytes = len(data)
        if measure:
            result.delta_e = float(q.delta_e)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 -- one bad file is one result; the others go on
        result.error = _one_line(exc, source)
    finally:
        numba.set_num_threads(threads)
    result.seconds = time.perf_counter() - start
    return result


def _one_line(exc: BaseException, source) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror.lower()}"
    elif isinstance(exc, MemoryError):
        text = "not enough memory for this image"
    elif isinstance(exc, (ValueError, OSError)):
        text = str(exc)
    else:
        text = f"internal error ({type(exc).__name__}: {exc})"
    text = " ".join(text.split()) or type(exc).__name__
    if text.startswith(str(source)) or isinstance(exc, OutputWriteError):
        return text  # a failed write names its output
    return f"{source}: {text}"


def default_jobs() -> int:
    """Worker processes by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def compress_many(inputs, out_dir, n_colors, *, fmt="fkm", targets=None, jobs=None,
                  client=None, skip_existing=False, overwrite=False, measure=False,
                  on_result=None, on_compile=None, retries=3, **options) -> list[FileResult]:
    """Quantize each of ``inputs`` to ``n_colors`` colours and write it into ``out_dir``.

    ``targets`` (one output path per input) replaces ``out_dir``/``fmt`` naming.
    ``options`` are ``fastkm.quantize``'s (init, n_init, max_iter, tol, seed, space, dither).
    ``jobs`` worker processes (default: the number of cores; 1 runs here, in this process),
    or the tasks go to a Dask ``client``. ``skip_existing`` leaves inputs whose output
    exists alone (a result with ``skipped=True``); otherwise an existing output is an error
    for that file unless ``overwrite``. ``measure`` also computes each result's delta E.
    ``on_result(result)`` is called as each file finishes, in completion order;
    ``on_compile(name)`` (here, in this process) as a worker process starts compiling a
    kernel (a Numba cache miss: the first run on a machine), so that a program can say
    why the first files take long. Returns the
    results in input order. Interrupting (Ctrl-C) cancels the files not started; those
    running remove their temporary files; outputs already renamed stay complete.
    """
    inputs = [Path(p) for p in inputs]
    if targets is None:
        targets = plan_targets(inputs, out_dir, fmt)
    targets = [Path(t) for t in targets]
    if len(targets) != len(inputs):
        raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
    results: list[FileResult | None] = [None] * len(inputs)
    todo = []
    for i, (source, target) in enumerate(zip(inputs, targets)):
        if skip_existing and target.exists():
            results[i] = FileResult(str(source), str(target), skipped=True, k=int(n_colors))
        elif client is not None and not overwrite and target.exists():
            # Checked here, once: a task retried after its worker died may find the output
            # it wrote itself before dying, and must replace it (see below).
            results[i] = FileResult(str(source), str(target), k=int(n_colors),
                                    error=f"{target}: already exists (use --force to "
                                          "overwrite)")
        else:
            todo.append(i)
            continue
        if on_result is not None:
            on_result(results[i])

    def done(i, result):
        results[i] = result
        if on_result is not None:
            on_result(result)

    if client is not None or jobs != 1:
        # Largest files first (by bytes on disk, a proxy for pixels that costs a stat): a
        # large photo started last keeps one worker busy alone while the others idle.
        todo.sort(key=lambda i: -_size(inputs[i]))
    args = [(inputs[i], targets[i], n_colors, options) for i in todo]
    kwargs = {"overwrite": overwrite, "measure": measure}
    if client is not None:
        # Workers run in folders of their own: a relative path would name another file
        # there (and overwrite holds for retries), so they get absolute ones; the results
        # keep the names the caller gave.
        absolute = [(Path(os.path.abspath(a[0])), Path(os.path.abspath(a[1])), *a[2:])
                    for a in args]

        def done_as_named(i, result):
            done(i, replace(result, source=str(inputs[i]), target=str(targets[i])))

        _run_dask(client, todo, absolute, {**kwargs, "large_threads": 1, "overwrite": True},
                  done_as_named, retries)
    else:
        jobs = default_jobs() if jobs is None else int(jobs)
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        if jobs == 1 or len(todo) <= 1:
            for i, a in zip(todo, args):
                done(i, compress_file(*a, **kwargs))
        else:
            # Threads for a large image: the cores left to each worker. More oversubscribes
            # them: on 2 cores, 2 workers x 2 threads took the 7 photos of
            # ../shared/images 15 s, 2 x 1 thread 3.9 s (OpenMP threads spin at barriers).
            workers = min(jobs, len(todo))
            large = max(1, default_jobs() // workers)
            _run_pool(workers, todo, args, {**kwargs, "large_threads": large}, done,
                      on_compile)
    _remove_stale_temporaries(targets)
    return results


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # its error is reported when its turn comes


def _remove_stale_temporaries(targets) -> None:
    """Remove the temporary files (``fastkm.fileio.atomic_output``'s names) that a worker
    killed while writing left beside its output; the retried task wrote the output whole."""
    import glob

    for target in targets:
        pattern = os.path.join(glob.escape(str(target.parent)),
                               f".{glob.escape(target.name)}.*.tmp{glob.escape(target.suffix)}")
        for stale in glob.glob(pattern):
            try:
                os.unlink(stale)
            except OSError:
                pass


def _start_method() -> str:
    """fork while this process has not started Numba's thread pool: the workers then inherit
    fastkm's imported modules (~0.8 s each to import afresh); otherwise forkserver (a
    threading layer's pool does not survive a fork), else spawn."""
    import multiprocessing

    from numba.np.ufunc import parallel

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and not getattr(parallel, "_is_initialized", True):
        # Import here what every task needs, once, before the workers are forked.
        from . import codec, fileio, images, quantize  # noqa: F401
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


_COMPILES = None
_EVENTS = None

#: For tests only: the file name whose pool worker kills itself (SIGKILL) as it takes the
#: file, as ``kill -9`` or the kernel's OOM killer would. None outside tests.
_KILL_WORKER_ON: str | None = None

DIED = "worker process died (killed or out of memory)"


def _init_worker(events, report_compiles: bool, kill_on: str | None) -> None:
    """Pool worker initializer: events (("start", i) as each file is taken, ("compile",
    name) as each kernel starts compiling) go on ``events``, a queue the parent reads."""
    global _COMPILES, _EVENTS, _KILL_WORKER_ON
    _EVENTS, _KILL_WORKER_ON = events, kill_on
    if report_compiles:
        from .jit import on_compile

        _COMPILES = on_compile(lambda name: events.put(("compile", name)))


def _pool_task(i: int, a: tuple, kwargs: dict) -> FileResult:
    _EVENTS.put(("start", i))
    if _KILL_WORKER_ON is not None and Path(a[0]).name == _KILL_WORKER_ON:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return compress_file(*a, **kwargs)


def _run_pool(jobs, todo, args, kwargs, done, on_compile=None) -> None:
    """Run the files in a pool of ``jobs`` workers. When a worker dies (killed, out of
    memory) the pool breaks and every file in flight fails with it: the files not yet
    started go to a new pool, and each file that had started is tried once more alone, so
    that only the file that kills its worker is reported, with ``DIED``."""
    queue = list(zip(todo, args))
    queue.reverse()  # popped from the end: in the order given
    while queue:
        lost = _pool_round(jobs, queue, kwargs, done, on_compile)
        if lost is None:
            continue
        if not lost:  # the pool broke before any file started: no file is to blame
            lost, queue = queue[::-1], []
        for i, a in lost:
            alone = [(i, a)]
            if _pool_round(1, alone, kwargs, done, on_compile) is not None:
                done(i, FileResult(str(a[0]), str(a[1]), k=int(a[2]),
                                   error=f"{a[0]}: {DIED}"))


def _pool_round(jobs, queue, kwargs, done, on_compile):
    """Run ``queue``'s files (popped from its end) in one pool until done (returns None) or
    until a worker dies: then ``queue`` keeps the files not started and the files that had
    started and not finished are returned."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context(_start_method())
    events = context.SimpleQueue()
    started = set()

    def read_events():
        while not events.empty():
            kind, value = events.get()
            if kind == "start":
                started.add(value)
            elif on_compile is not None:
                on_compile(value)

    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                               initargs=(events, on_compile is not None, _KILL_WORKER_ON))
    pending, broken = {}, []
    try:
        # Keep at most two files per worker in flight: each worker reads its next file as
        # soon as it is free, and Ctrl-C has little queued work to cancel.
        while (queue and not broken) or pending:
            while queue and not broken and len(pending) < 2 * jobs:
                i, a = queue.pop()
                pending[pool.submit(_pool_task, i, a, kwargs)] = (i, a)
            # While workers compile (minutes of no result), look at their news often.
            finished, _ = wait(pending, timeout=None if on_compile is None else 0.2,
                               return_when=FIRST_COMPLETED)
            read_events()
            for future in finished:
                i, a = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append((i, a))
                    continue
                done(i, result)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if not broken:
        return None
    read_events()
    queue.extend(item for item in reversed(broken) if item[0] not in started)
    return [item for item in broken if item[0] in started]


_SERIAL = None


def _dask_task(a, **kwargs) -> FileResult:
    """One file on a Dask worker. A worker runs several tasks at once on its threads, and
    Numba's workqueue threading layer aborts the process when two threads launch parallel
    kernels together: ask for a thread-safe layer (OpenMP or TBB) before the first kernel
    runs here; where neither is installed, the files of this worker run one at a time."""
    global _SERIAL
    import threading

    import numba
    from numba.np.ufunc import parallel

    if _SERIAL is None:
        _SERIAL = threading.Lock()
        if not getattr(parallel, "_is_initialized", True):
            numba.config.THREADING_LAYER = "threadsafe"
    try:
        concurrent = numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # not started yet: the first kernel below starts the chosen layer
        concurrent = False
    if concurrent:
        return compress_file(*a, **kwargs)
    with _SERIAL:
        return compress_file(*a, **kwargs)


def _run_dask(client, todo, args, kwargs, done, retries) -> None:
    from distributed import as_completed

    futures = client.map(_dask_task, args, pure=False, retries=retries, **kwargs)
    index = {f.key: i for f, i in zip(futures, todo)}
    try:
        for future in as_completed(futures):
            done(index[future.key], future.result())
    except BaseException:
        client.cancel(futures)
        raise
