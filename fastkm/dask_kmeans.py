"""``fastkm.KMeans.fit(X)`` with X a Dask array: Lloyd's iterations on the workers.

X (N, D) is chunked by rows (the columns are joined into one chunk) and persisted once.
Its blocks are grouped by the worker that holds them, one group per worker thread, and a
task per group steps through its blocks. Each iteration, every block assigns its points to
the centres as the in-memory fit does: a vectorised scan first (``fastkm.scan.scan_pass``),
then Hamerly's bounds, kept with the block's labels and sums in a state persisted where the
block is, so that only the points whose bounds fail are rescanned
(``fastkm.scan.bounded_scan_pass``). Only the blocks' per-cluster sums, weights and members
travel; they are added in block order, so the result depends neither on the grouping nor
on which worker finished first. Ten iterations make one graph: each group's step makes
the centre update itself from every group's parts, and the client reads the result once
per graph. The data is never gathered to the client. ``labels_`` (the final states'
labels, kept on the workers) and ``predict`` are Dask arrays.

Workers run several threads, and Numba's workqueue threading layer aborts when two threads
launch parallel kernels together: each task asks for a thread-safe layer (OpenMP or TBB)
before the first kernel runs in its process, and where neither exists runs the kernels of
its process one at a time.

A lost worker: Dask recomputes what it held by replaying the steps, but the steps update
their states' arrays in place, so a replay could read arrays a later step had changed. Each
state carries its generation and the arrays theirs (``_fresh``): a mismatch raises
``LostStateError``, and ``fit`` counts every block afresh from the last centres the client
holds, as after a re-seeding. The fit's result is then that of the same centres, counted
again (equal to the in-memory fit up to the rounding of the sums). ``labels_`` are read from
the final states; after a worker lost later, a rebuilt state gives way to the labels of the
final centres computed afresh.

Seeding: k-means|| (``kmeans_parallel``), then k-means++ on its weighted candidates.
"""

from __future__ import annotations

import os
import threading

import numpy as np

INSTALL = "Dask KMeans needs Dask: pip install 'fastkm[dask]'"
#: Lloyd iterations submitted as one graph. Each graph costs a round trip to the client
#: (25 ms on the 2-core benchmark machine even for trivial tasks); iterations after
#: convergence are tasks that return at once.
ITERATIONS_PER_GRAPH = 10
#: Fresh starts after lost workers before a fit gives up.
MAX_RESTARTS = 3
_LOCK = threading.Lock()
_CONCURRENT = None


class LostStateError(RuntimeError):
    """A block state was read after a later step had changed its arrays: Dask recomputed
    it after a worker was lost (see the module's doc)."""


def _fresh(state):
    """A block state, checked to be the current one of its arrays: ``state[10]`` is its
    generation, ``state[11][0]`` that of the arrays it shares with the states before and
    after it (-1 while a step is changing them)."""
    if state[11][0] != state[10]:
        raise LostStateError("a Dask worker was lost and a KMeans block state recomputed "
                             "from arrays a later step had changed; fit again")
    return state


def is_dask_array(X) -> bool:
    """Whether ``X`` is a Dask collection, without importing Dask."""
    return type(X).__module__.startswith("dask.")


def _da():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(INSTALL) from None
    return da


def _kernels_may_run_concurrently() -> bool:
    global _CONCURRENT
    if _CONCURRENT is None:
        import numba
        from numba.np.ufunc import parallel

        if not getattr(parallel, "_is_initialized", True):
            numba.config.THREADING_LAYER = "threadsafe"
        try:
            from . import kernels

            kernels.assign(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1, np.int32),
                           np.zeros(1))
            _CONCURRENT = numba.threading_layer() in ("omp", "tbb")
        except ValueError:
            _CONCURRENT = False
    return _CONCURRENT


def _task_threads():
    """Numba threads for a kernel in a Dask task, or None to keep the default. Dask's
    nannies set OMP_NUM_THREADS (to 1 unless configured) so that parallelism comes from the
    tasks, not from threads inside each; the kernels follow it. Left at the number of cores,
    2 workers x 2 Numba threads on 2 cores took 2.07 s for a 20-iteration fit of 4M x 3
    points that 1 thread each does in 1.69 s."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return None


def _run(fn, *args):
    threads = _task_threads()
    if threads is not None:
        import numba

        # Per calling thread in Numba; capped at the pool it was started with.
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if _kernels_may_run_concurrently():
        return fn(*args)
    with _LOCK:
        return fn(*args)


def _block_step(X, w, state, centers, half_sep, moved, largest, rescan=False):
    """One Lloyd assignment of a block; returns its new state ``(labels, upper, seconds,
    lower, sums, weights, members, w, own, changed, generation, arrays' generation)``:
    labels, the bounds of ``kernels.bounded_pass``, the block's per-cluster sums, weights
    and member counts, its sample weights, its own largest coordinate magnitude, how many
    labels changed, and the generations ``_fresh`` checks. The first (``state`` None)
    checks the block's data and scans every centre (``scan.scan_pass``), as does a
    ``rescan`` (after an empty cluster was re-seeded: the sums are counted again); the
    others keep the bounds of the state before, on the worker that holds it, and rescan
    only the points whose bounds fail (``scan.bounded_scan_pass``), as the in-memory fit
    does, with the margin and float32 error of ``largest``, the largest coordinate of all
    the blocks (the bounds carry the moves of every centre, so a block's own scale would be
    too small a margin beside far larger ones). The arrays of ``state`` are reused: each
    state is read by the next step of its block only."""
    from . import scan
    from .kmeans import _bound_margin

    X = np.ascontiguousarray(X, dtype=np.float64)
    if state is None:
        # Kept in the state: Dask's ones are a broadcast view, which a kernel cannot take,
        # and a copy each iteration cost ~1.5 ms a block of 500k points.
        w = np.ascontiguousarray(w, dtype=np.float64)
        # The block's own largest coordinate bounds the float32 error of its first scan.
        own = largest = _checked_largest(X, w)
        n = X.shape[0]
        labels, upper = np.empty(n, dtype=np.int32), np.empty(n)
        seconds, lower = np.empty(n, dtype=np.int32), np.empty((n, 2))
        made, gen = 0, np.zeros(1, dtype=np.int64)
    else:
        labels, upper, seconds, lower, sums, weights, members, w, own, _, made, gen = \
            _fresh(state)
    gen[0] = -1  # changing: a step that fails half-way leaves no state that passes _fresh
    if state is None or rescan:
        sums, weights, members, changed = scan.scan_pass(
            X, w, centers, labels, upper, seconds, lower, moved, False,
            *scan.float32_error(largest, centers))
    else:
        d_sums, d_weights, d_members, changed, _ = scan.bounded_scan_pass(
            X, w, centers, half_sep, labels, upper, seconds, lower, moved,
            _bound_margin(X, largest), *scan.float32_error(largest, centers))
        sums, weights, members = sums + d_sums, weights + d_weights, members + d_members
    gen[0] = made + 1
    return (labels, upper, seconds, lower, sums, weights, members, w, own, int(changed),
            made + 1, gen)


def _block_far(X, state, centers, take, start):
    """The block's ``take`` points farthest from their own centre, among those of positive
    weight, farthest first and by index among equals: ``(scores, global indices, rows,
    weights, labels, number of points that may be taken)`` (``kmeans.far_scores``)."""
    from .kmeans import far_scores, farthest

    X = np.ascontiguousarray(X, dtype=np.float64)
    labels, w = _fresh(state)[0], state[7]
    score = far_scores(X, w, centers, labels, np.empty(X.shape[0]))
    top = farthest(score, take)
    return score[top], start + top, X[top], w[top], labels[top], int(np.count_nonzero(score > 0))


def group_far(xs, state, centers, take, starts):
    return [_run(_block_far, x, st, centers, take, start)
            for x, st, start in zip(xs, state[0], starts)]


def _checked_largest(X, w):
    """The largest coordinate magnitude of a block, after the checks the in-memory fit makes
    of its data (min and max carry any NaN or infinity: no pass of their own)."""
    lo, hi = (float(X.min()), float(X.max())) if X.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("X contains NaN or infinity")
    if len(w):
        low, high = float(w.min()), float(w.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("sample_weight contains NaN or infinity")
        if low < 0:
            raise ValueError(f"sample_weight must be >= 0, got a minimum of {low}")
    return max(-lo, hi)


def group_step(xs, ws, state, control, tol, groups, final, *parts):
    """The next state ``(block states, control)`` of a group of blocks held by one worker:
    the blocks assigned one after the other (:func:`_block_step`) to the centres of
    ``control`` (see :func:`_update`). Given the ``parts`` of every group from the step
    before, the control is first updated here, from the one in ``state``: each group makes
    the same update, so that an iteration waits on one hop between workers, not two. Once
    converged or while an empty cluster waits to be re-seeded (see :func:`_update`), the same
    block states, unless ``final``. ``state`` is None at first."""
    from . import kernels

    if parts:
        control = _update(state[1], tol, groups, *parts)
    blocks = None if state is None else state[0]
    centers, moved, done, _, largest, pending = control
    # Converged, or waiting for the client to re-seed an empty cluster: nothing to do.
    if (done or isinstance(pending, tuple)) and not final and blocks is not None:
        return blocks, control
    half_sep = kernels.separations(centers)[1]
    if blocks is None:
        blocks = [None] * len(xs)
    rescan = pending == "rescan"
    return [_run(_block_step, x, v, st, centers, half_sep, moved, largest, rescan)
            for x, v, st in zip(xs, ws, blocks)], control


def _control_of(state):
    return state[1]


def _groups(X, n_blocks):
    """Block indices in groups, one group per worker thread, each group's blocks held by
    one worker: a task per group instead of per block (each task and each hop between them
    cost milliseconds of the scheduler's time on every iteration: 4M points in 8 blocks
    took 1.41 s, in 2 blocks 1.10 s). Without a distributed client, one group per core."""
    try:
        from distributed import get_client, wait

        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is None:
        per = -(-n_blocks // (os.cpu_count() or 1))
        return [list(range(i, min(i + per, n_blocks))) for i in range(0, n_blocks, per)]
    wait(X)
    who = client.who_has(X)
    keys = [k for row in X.__dask_keys__() for k in row]
    by_worker = {}
    for i, key in enumerate(keys):
        holders = who.get(key) or (None,)
        by_worker.setdefault(holders[0], []).append(i)
    threads = client.nthreads()
    groups = []
    for worker, blocks in by_worker.items():
        per = -(-len(blocks) // max(1, threads.get(worker, 1)))
        groups += [blocks[j:j + per] for j in range(0, len(blocks), per)]
    return groups


def _update(control, tol, groups, *group_parts):
    """Lloyd's centre update: ``control`` is ``(centres, moved, done, n_iter, largest,
    pending)``; the blocks' parts (sums, weights, members, largest coordinate; a list per
    group of ``groups``) are added in block order, so the result depends neither on the
    grouping nor on which worker finished first. When a cluster is left empty, the update
    waits: ``pending`` becomes ``("relocate", sums, weights, members, changed)`` and the
    centres stay those of the assignment, for the client to re-seed it (:func:`_relocate`);
    after that, ``pending`` is "rescan" for one step. Once ``done`` (the squared shift at
    most ``tol``) or waiting, the same control."""
    from . import kernels

    centers, moved, done, n_iter, largest, pending = control
    if done or isinstance(pending, tuple):
        return control
    by_block = {}
    for blocks, parts in zip(groups, group_parts):
        by_block.update(zip(blocks, parts))
    sums = np.zeros(centers.shape)
    weights = np.zeros(len(centers))
    members = np.zeros(len(centers), dtype=np.int64)
    changed = 0
    for s, v, m, own, c in (by_block[i] for i in sorted(by_block)):
        sums += s
        weights += v
        members += m
        largest = max(largest, own)
        changed += c
    if n_iter == 0 and not weights.sum() > 0:
        raise ValueError("sample_weight must not be all zero")
    if n_iter == 0 and not np.isfinite(weights.sum()):
        raise ValueError("sample_weight sums to more than float64 holds; scale it down")
    if kernels.clear_empty(sums, weights, members):
        return (centers, moved, False, n_iter, largest,
                ("relocate", sums, weights, members, changed))
    return _moved(sums, weights, centers, moved, tol, n_iter, largest, None, changed)


def _moved(sums, weights, centers, moved, tol, n_iter, largest, pending, changed,
           settled=False):
    """The centres moved to the means, and the end test of ``kmeans.lloyd``: "strict" when
    no label changed (after the first iteration; the labels are then final and no last
    assignment is made, even after an empty cluster was re-seeded, as scikit-learn) or
    ``settled`` (empty clusters and no point off its centre), True when the squared shift
    is at most ``tol``."""
    from . import kernels

    moved = moved.copy()
    new, shift = kernels.moved_centers(sums, weights, centers, moved, 1.0, np.zeros((0, 0)),
                                       tol)
    strict = (n_iter > 0 and changed == 0) or settled
    done = "strict" if strict else float((shift ** 2).sum()) <= tol
    return new, moved, done, n_iter + 1, largest, pending


def _relocate(control, tol, xg, states, groups, starts):
    """Re-seed each empty cluster as the in-memory fit does (``kmeans._relocate_empty``):
    with one of the points farthest from their own centre, taken out of its old cluster's
    sums (its label stays until the next assignment, which counts every point again)."""
    import dask

    from .kmeans import reseed

    centers, moved, _, n_iter, largest, (_, sums, weights, members, changed) = control
    empty = np.flatnonzero(members == 0)
    far = dask.delayed(group_far, pure=True)
    parts = [p for group in dask.compute(*[
        far(x, s, centers, len(empty), [starts[i] for i in g])
        for x, s, g in zip(xg, states, groups)]) for p in group]
    score, index, rows, w, labels = (np.concatenate([p[j] for p in parts])
                                     for j in range(5))
    take = min(empty.size, sum(p[5] for p in parts))
    order = np.lexsort((index, -score))[:take]
    reseed(sums, weights, members, centers, empty[:take], rows[order], w[order],
           labels[order])
    # None to take: every point is on its centre, and the fit ends as kmeans.lloyd's does.
    return _moved(sums, weights, centers, moved, tol, n_iter, largest, "rescan",
                  changed, settled=take == 0)


def _labels_of(state, j, X, centers):
    """Block ``j``'s labels from its group's final state; if Dask rebuilt that state from
    changed arrays (a worker lost after the fit), the labels of ``centers`` afresh."""
    try:
        return _fresh(state[0][j])[0]
    except LostStateError:
        return block_labels(X, centers)


def _totals(state):
    """The sums, weights and member counts of a group's block states: all that travels."""
    return [(st[4], st[5], st[6], st[8], st[9]) for st in map(_fresh, state[0])]


def _block_inertia(X, w, state, centers):
    from . import kernels

    X = np.ascontiguousarray(X, dtype=np.float64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    return float(kernels.inertia(X, w, centers, _fresh(state)[0]))


def group_inertia(xs, ws, state, centers):
    return [_run(_block_inertia, x, v, st, centers) for x, v, st in zip(xs, ws, state[0])]


def _block_labels(X, centers):
    from . import kernels

    X = np.ascontiguousarray(X, dtype=np.float64)
    labels = np.empty(X.shape[0], dtype=np.int32)
    kernels.assign(X, centers, labels, np.empty(X.shape[0]))
    return labels


def block_labels(X, centers):
    return _run(_block_labels, X, centers)


def _prepare(X, sample_weight):
    da = _da()
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got {X.ndim} dims")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64).rechunk({1: -1})
    if sample_weight is None:
        w = da.ones(X.shape[0], chunks=(X.chunks[0],), dtype=np.float64)
    else:
        w = da.asarray(sample_weight).astype(np.float64)
        if w.shape != (X.shape[0],):
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},), got {w.shape}")
        w = w.rechunk((X.chunks[0],))
    return X, w


def fit(km, X, sample_weight=None):
    """Fit ``km`` (a ``fastkm.KMeans``) on the Dask array ``X``; see the module's doc."""
    import dask

    from .kmeans import _as_rng, _check_data, warn_if_few_clusters

    da = _da()

    init = km.init
    if callable(init) or (isinstance(init, str) and init != "k-means++"):
        raise NotImplementedError("KMeans on a Dask array seeds with k-means|| "
                                  "(init='k-means++') or takes an explicit init array; "
                                  f"init={init!r} is not supported there")
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    X, w = _prepare(X, sample_weight)
    km._check_params(X)  # the in-memory fit's checks of n_clusters, init, max_iter, tol...
    n_clusters = int(km.n_clusters)
    X, w = dask.persist(X, w)
    if isinstance(init, str):
        centers = kmeans_parallel(X, w, n_clusters, _as_rng(km.random_state))
    else:
        centers = np.array(_check_data(init, "init"), dtype=np.float64, order="C")
    if centers.shape != (n_clusters, X.shape[1]):
        raise ValueError(f"init must have shape (n_clusters, n_features) = ({n_clusters}, "
                         f"{X.shape[1]}), got {centers.shape}")
    xb, wb = X.to_delayed().ravel(), w.to_delayed().ravel()

    # tol as in memory: relative to the mean variance of the features, unweighted.
    tol = 0.0
    if km.tol > 0:
        total_w, mean_x = dask.compute(w.sum(), X.mean(axis=0))
        if float(total_w) == 0:
            raise ValueError("sample_weight must not be all zero")
        var = dask.compute(((X - mean_x) ** 2).sum())[0]
        tol = float(km.tol) * float(var) / (X.shape[0] * X.shape[1])

    step = dask.delayed(group_step, pure=False)
    totals = dask.delayed(_totals, pure=False)
    starts = np.cumsum([0, *X.chunks[0]])[:-1].tolist()
    # (centres, moved, done, n_iter, largest, pending): see _update; moved as in
    # kernels.bounded_pass; largest is known after the first scan.
    control = (centers, np.zeros(n_clusters + 1), False, 0, 0.0, None)
    max_iter = int(km.max_iter)
    restarts = 0
    last = [control]  # the control of the last graph that completed
    while True:
        control = last[0]
        groups = _groups(X, len(xb))
        xg = [[xb[i] for i in g] for g in groups]
        wg = [[wb[i] for i in g] for g in groups]
        states = [None] * len(groups)
        try:
            states, control = _iterate(step, totals, last, states, xg, wg, groups, starts,
                                       tol, max_iter)
            if control[2] != "strict" or states[0] is None:
                # The labels of the final centres (in memory, those of the last assignment
                # stand after a strict stop).
                states = list(dask.persist(*[step(x, v, s, control, tol, groups, True)
                                             for x, v, s in zip(xg, wg, states)]))
            # One round trip for the inertia and the clusters' weights.
            inertias, parts = dask.compute(
                [dask.delayed(group_inertia, pure=True)(x, v, s, control[0])
                 for x, v, s in zip(xg, wg, states)],
                [totals(s) for s in states])
            break
        except LostStateError:
            # A worker was lost: every block counted afresh from the last centres here.
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise
    centers, _, done, n_iter, _, _ = control
    by_block = {}
    for g, part in zip(groups, inertias):
        by_block.update(zip(g, part))
    inertia = sum(by_block[i] for i in range(len(xb)))  # in block order, as the sums
    n_found = int(np.count_nonzero(sum(v for group in parts for _, v, _, _, _ in group) > 0))
    warn_if_few_clusters(n_found, n_clusters, stacklevel=3)
    # The labels of the final centres, already on the workers: kept, the bounds dropped.
    label_of = dask.delayed(_labels_of, pure=True)
    blocks = {}
    for g, s in zip(groups, states):
        blocks.update((i, label_of(s, j, xb[i], centers)) for j, i in enumerate(g))
    blocks = dask.persist(*[blocks[i] for i in range(len(xb))])
    labels = da.concatenate([da.from_delayed(b, shape=(n,), dtype=np.int32)
                             for b, n in zip(blocks, X.chunks[0])])
    km.cluster_centers_ = centers.astype(dtype, copy=False)  # as in memory: X's float type
    km._centers64 = centers
    km.labels_ = labels
    km.inertia_ = float(inertia)
    km.n_iter_ = n_iter
    km.n_features_in_ = X.shape[1]
    return km


def _iterate(step, totals, last, states, xg, wg, groups, starts, tol, max_iter):
    """Lloyd's iterations from the control ``last[0]`` and the groups' ``states`` (None:
    counted afresh) until done or ``max_iter``; returns the states and the control, which
    is also kept in ``last[0]`` after each graph, for :func:`fit` to start again from."""
    import dask

    control = last[0]
    while not control[2] and control[3] < max_iter:
        # Up to ITERATIONS_PER_GRAPH iterations in one graph, the centre updates made by the
        # steps themselves: one round trip to the client per graph, not per iteration. The
        # groups' states stay on the workers (persisted); a step after convergence does
        # nothing.
        states = [step(x, v, s, control, tol, groups, False)
                  for x, v, s in zip(xg, wg, states)]
        for _ in range(min(ITERATIONS_PER_GRAPH, max_iter - control[3]) - 1):
            parts = [totals(s) for s in states]
            states = [step(x, v, s, None, tol, groups, False, *parts)
                      for x, v, s in zip(xg, wg, states)]
        states = list(dask.persist(*states))
        used, *parts = dask.compute(dask.delayed(_control_of)(states[0]),
                                    *[totals(s) for s in states])
        control = _update(used, tol, groups, *parts)
        if isinstance(control[5], tuple):
            control = _relocate(control, tol, xg, states, groups, starts)
        last[0] = control
    return states, control


def _block_sample(X, w, candidates, factor, seed):
    """Rows of one block drawn independently with probability min(1, factor·w·D²), D the
    distance to the nearest candidate; and the block's cost Σ w·D² before the draw."""
    from . import kernels

    X = np.ascontiguousarray(X, dtype=np.float64)
    labels = np.empty(X.shape[0], dtype=np.int32)
    dist2 = np.empty(X.shape[0])
    _run(kernels.assign, X, candidates, labels, dist2)
    cost = w * dist2
    if factor is None:
        return X[:0], float(cost.sum())
    keep = np.random.default_rng(seed).random(X.shape[0]) < factor * cost
    return X[keep], float(cost.sum())


def _block_candidate_weights(X, w, candidates):
    return np.bincount(block_labels(X, candidates), weights=w, minlength=len(candidates))


def kmeans_parallel(X, w, n_clusters, rng, rounds=5, oversampling=2.0):
    """k-means|| (Bahmani et al. 2012) on persisted Dask arrays: a first centre drawn in
    proportion to the weights; ``rounds`` rounds that each keep every point independently
    with probability ``oversampling·K·w·D²/ψ`` (ψ the current cost); each candidate weighted
    by the total weight of the points nearest to it; then k-means++ on the weighted
    candidates (``fastkm.init.kmeans_plusplus``). One compute per round."""
    import dask

    from .init import kmeans_plusplus

    xb, wb = X.to_delayed().ravel(), w.to_delayed().ravel()
    block_w = np.array(dask.compute(*[dask.delayed(np.sum)(v) for v in wb]), dtype=np.float64)
    if not np.isfinite(block_w.sum()):  # before the first step's own checks
        raise ValueError("sample_weight contains NaN or infinity, or sums to more than "
                         "float64 holds")
    u = rng.random() * block_w.sum()
    b = min(int(np.searchsorted(np.cumsum(block_w), u, side="right")), len(block_w) - 1)
    xs, ws = dask.compute(xb[b], wb[b])
    p = np.cumsum(ws)
    i = min(int(np.searchsorted(p, rng.random() * p[-1], side="right")), len(ws) - 1)
    candidates = np.ascontiguousarray(xs[i:i + 1], dtype=np.float64)
    sample = dask.delayed(_block_sample, pure=True)
    psi = sum(c for _, c in dask.compute(*[sample(x, v, candidates, None, 0)
                                          for x, v in zip(xb, wb)]))
    for _ in range(rounds):
        if not psi > 0:
            break
        seeds = rng.integers(0, 2**63 - 1, size=len(xb))
        parts = dask.compute(*[sample(x, v, candidates, oversampling * n_clusters / psi,
                                      int(s)) for x, v, s in zip(xb, wb, seeds)])
        new = [rows for rows, _ in parts if len(rows)]
        if new:
            candidates = np.ascontiguousarray(np.concatenate([candidates, *new]))
        psi = sum(c for _, c in parts)  # cost against the candidates before this round
    if len(candidates) < n_clusters:
        # Too few distinct draws (tiny or duplicate data): pad with more weighted draws.
        extra = dask.compute(*[sample(x, v, candidates, np.inf, 0) for x, v in zip(xb, wb)])
        rows = np.concatenate([r for r, _ in extra] or [candidates[:0]])
        candidates = np.ascontiguousarray(np.concatenate([candidates, rows]))
    weigh = dask.delayed(_block_candidate_weights, pure=True)
    weights = np.zeros(len(candidates))
    for part in dask.compute(*[weigh(x, v, candidates) for x, v in zip(xb, wb)]):
        weights += part
    if len(candidates) < n_clusters:
        raise ValueError(f"n_samples={len(candidates)} distinct points found, fewer than "
                         f"n_clusters={n_clusters}")
    return kmeans_plusplus(candidates, weights, n_clusters, rng)


def predict(km, X):
    """Labels of the Dask array ``X`` against ``km``'s centres, as a Dask array."""
    X, _ = _prepare(X, None)
    if X.shape[1] != km.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but KMeans was fitted with "
                         f"{km.n_features_in_}")
    return X.map_blocks(block_labels, km._centers64, dtype=np.int32, drop_axis=1)
