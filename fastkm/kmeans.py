"""The KMeans estimator: validation, restarts, convergence and empty clusters.

The interface follows scikit-learn's ``KMeans`` so that one can replace the other; the loops
run in :mod:`fastkm.kernels`. The algorithm is exact Lloyd: every iteration gives the labels
brute force would give; bounds only decide which distances need not be computed.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from . import init as _init
from . import kernels, scan
from .estimator import EstimatorProtocol
from .validation import NotFittedError, check_data, check_dense, check_feature_names, feature_names, is_sparse

__all__ = ["KMeans", "NotFittedError", "lloyd"]

_ALGORITHMS = ("lloyd", "elkan", "auto", "hamerly")
# Relative slack on the bounds: far above the float64 rounding they gather over many
# iterations, far below any gap between distances that decides a label.
_BOUND_SLACK = 1e-9
# From this K on, a first assignment searches from a guess (kernels.first_pass_from) instead
# of computing all K distances: 150k colours of path.jpg from their own labels, 10.5 ms
# instead of 31 at K = 256 and 7.2 instead of 8.9 at K = 64; at K = 32 the two are within
# this machine's noise (6.0 and 6.8 ms, the other way round in an earlier build), and at
# K = 16 the brute force's straight SIMD loop wins (3.2 ms against 4.5).
_GUIDED_MIN_CLUSTERS = 64
# Over-relaxed steps may cycle: labels flip back and forth and never settle (relax 3 on
# seven points in 1-D, three centres; hypothesis found it). From this iteration on a run
# takes plain steps, which end as Lloyd's do. The photos' relaxed runs end within 42.
_RELAX_MAX_ITER = 100


def _csr(X):
    """A validated scipy CSR matrix as ``fastkm.sparse.CSR``. The sparse kernels are
    imported (compiled, or loaded from Numba's cache) only when sparse data arrives."""
    from . import sparse

    return sparse.CSR(X)


def _is_csr(X):
    return not isinstance(X, np.ndarray)


def _check_data(X, name="X"):
    """Dense ``X`` as a C-contiguous float32/float64 array (``validation.check_dense``)."""
    return check_dense(X, name)


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(sample_weight)
    if w.dtype.kind == "O":  # numbers in an object array or list, as scikit-learn takes
        try:
            w = w.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("sample_weight must be numeric, got dtype object") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}")
    if w.ndim == 0:  # one weight for every point, as scikit-learn
        w = np.full(n, w, dtype=np.float64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if (w < 0).any():
        raise ValueError(f"sample_weight must be >= 0, got a minimum of {w.min()}")
    with np.errstate(over="ignore"):
        total = w.sum()
    if not total > 0:
        raise ValueError("sample_weight must not be all zero")
    if not np.isfinite(total):
        raise ValueError("sample_weight sums to more than float64 holds; scale it down")
    return w


def _as_rng(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")


def _weighted_mean_variance(X, w):
    """Mean over features of the weighted variance of ``X``, in the compiled kernels.

    Not ``w @ X``: that wakes OpenBLAS's threads, which then spin for milliseconds on the
    cores Numba's threads need; one Lloyd pass in three then waited ~4 ms for a core
    (fallenleaf.jpg, K = 16: k-means 92 -> 56 ms without).
    """
    everyone = np.zeros(X.shape[0], dtype=np.int32)
    # first_pass against one centre gives accumulate's sums to the bit (same chunks, same
    # order) from a kernel the fit compiles anyway: a cold start compiles accumulate no more.
    sums, weights = kernels.nearest_with_sums(X, w, np.zeros((1, X.shape[1])), everyone)
    mean = sums / weights[:, None]
    return float(kernels.inertia(X, w, mean, everyone) / (weights[0] * X.shape[1]))


def _largest(X):
    """The largest magnitude of a coordinate of ``X``. Not np.abs(X).max(), which writes an
    (N, D) copy first (1M x 16: 38 ms against 18)."""
    return max(-float(X.min()), float(X.max())) if X.size else 0.0


def _bound_margin(X, largest=None):
    """Absolute slack for triangle-inequality tests on distances between rows of ``X`` and
    centres: ``_BOUND_SLACK`` relative to the largest coordinate norm."""
    largest = _largest(X) if largest is None else largest
    return _BOUND_SLACK * (largest * np.sqrt(X.shape[1]) + 1.0)


# "auto" chooses its pass per iteration (_PassChooser). Elkan's N*K bounds are not among
# the choices: from k-means++ starts Hamerly's bounds beat them at D = 3 and D = 16 alike
# (0.20 s vs 0.91 s at N = 200k, D = 16, K = 64).

#: From this K on, "auto" also weighs Hamerly's sorted scan (kernels.bounded_pass), which
#: visits only the centres near a point: below it the vectorised scan of all K won
#: wherever it was tried (bench/RESULTS.md, kmeans and hard sections).
_SORTED_MIN_CLUSTERS = 128


_CHOOSER_MARGIN = 0.9


class _PassChooser:
    """Which pass "auto" runs each iteration: the one that took the least time when last
    run in this fit. Each kind is tried once; a kind not chosen is tried again after
    ``patience`` iterations, which doubles each time it loses and resets when it wins, so
    a kind that became cheaper (bounds prune more as the centres settle) is found again.

    Kinds: "scan" (``scan.scan_pass``, every distance, vectorised), "vector" (bounds, the
    rest rescanned vectorised: ``scan.bounded_scan_pass``), "sorted" (bounds, rescans of
    the nearby centres in order: ``kernels.bounded_pass``). All three give the same labels
    and update the sums from the points that changed label in the same order, so the
    choice changes only the time, never a bit of the result.
    """

    def __init__(self, kinds):
        self.kinds = kinds
        self.seconds = {}
        self.idle = dict.fromkeys(kinds, 0)
        self.patience = dict.fromkeys(kinds, 1)
        self.log = []

    def pick(self):
        for kind in self.kinds:
            if kind not in self.seconds:
                return kind
        best = min(self.kinds, key=self.seconds.__getitem__)
        for kind in self.kinds:
            # Not the scan: its time depends on N, K and D only, not on the centres.
            if kind not in (best, "scan") and self.idle[kind] >= self.patience[kind]:
                return kind
        return best

    def record(self, kind, seconds, skipped):
        others = [t for k, t in self.seconds.items() if k != kind]
        # A win by a margin: the bounded passes get cheaper every iteration as the centres
        # settle, so the one timed last looks best against the others' older times, and
        # two kinds within a few percent would otherwise take turns.
        if others and seconds > _CHOOSER_MARGIN * min(others):
            self.patience[kind] *= 2
        else:
            self.patience[kind] = 1
        self.seconds[kind] = seconds
        for k in self.kinds:
            self.idle[k] = 0 if k == kind else self.idle[k] + 1
        self.log.append((kind, seconds, skipped))


def _auto_pass(chooser, kind, X, w, centers, labels, upper, seconds, lower, moved, margin,
               largest, order, deltas=True):
    """One assignment of "auto"'s kind ``kind``; returns ``(sums, weights, members,
    changed, order)``, changes of them from the points that changed label unless
    ``deltas`` is False (only the scan counts every point), and logs its time and the
    share of distances it skipped."""
    n, n_clusters = len(X), len(centers)
    t = time.perf_counter()
    err = scan.float32_error(largest, centers) if kind != "sorted" else None
    if kind == "scan":
        sums, weights, members, changed = scan.scan_pass(X, w, centers, labels, upper, seconds,
                                                         lower, moved, deltas, *err)
        computed = n * n_clusters
    elif kind == "vector":
        half_sep = kernels.separations(centers)[1]
        sums, weights, members, changed, computed = scan.bounded_scan_pass(
            X, w, centers, half_sep, labels, upper, seconds, lower, moved, margin, *err)
    else:
        sdist, order, half_sep = kernels.center_geometry(centers, order)
        sums, weights, members, changed = kernels.bounded_pass(
            X, w, centers, sdist, order, half_sep, labels, upper, seconds, lower, moved,
            margin, 2)
        computed = None
    chooser.record(kind, time.perf_counter() - t,
                   None if computed is None else 1.0 - computed / (n * n_clusters))
    return sums, weights, members, changed, order


def first_assignment(X, w, centers, guess, margin, labels, upper, seconds, lower):
    """Nearest centre of each point, the distance to it and the bounds
    ``kernels.bounded_pass`` keeps (see ``kernels.first_pass``), by a search from ``guess``
    (a centre near each point, or None; ``margin`` is ``_bound_margin(X)``) when K is large
    enough for that to pay. Returns ``(sums, weights, order)``, ``order`` the centres' scan
    order if one was made, else None."""
    if guess is None or len(centers) < _GUIDED_MIN_CLUSTERS:
        return (*kernels.first_pass(X, w, centers, labels, upper, seconds, lower), None)
    sdist, order, _ = kernels.center_geometry(centers)
    sums, weights = kernels.first_pass_from(X, w, centers, sdist, order, guess, margin, labels,
                                            upper, seconds, lower)
    return sums, weights, order


def lloyd(X, w, centers, *, max_iter, tol, method="hamerly", guess=None, margin=None,
          relax=1.0, verbose=False, log=None):
    """Run exact Lloyd from ``centers`` until labels stop changing, the squared centre shift
    falls to ``tol`` (absolute), or ``max_iter`` iterations.

    ``guess`` (N,) optionally names a centre near each point, such as a previous run's
    labels: Hamerly's first assignment then searches from it instead of over all K. It
    changes only the speed, never the result. ``margin`` is ``_bound_margin(X)``, passed by
    callers that run Lloyd many times on the same points.

    ``relax`` > 1 over-relaxes the centre updates (``kernels.moved_centers``): a centre
    whose step to its mean keeps the direction of its last step moves ``relax`` times as
    far. Labels stay exact for the centres of each pass, and the run still ends where
    plain Lloyd stops: once no label changes or the steps fall to ``tol`` (and in the last
    iteration ``max_iter`` allows), the centres land on their means. After
    ``_RELAX_MAX_ITER`` iterations the steps are plain, so a run that cycles still ends.
    ``fastkm.quantize`` uses it; ``KMeans.fit`` runs plain Lloyd.

    ``verbose`` prints each iteration's inertia (of the labels and the centres they were
    assigned to) as scikit-learn does.

    ``method``: "lloyd" (every distance, scalar), "hamerly", "elkan" (see ``KMeans``), or
    "auto", which picks each iteration's pass by the times measured in this run
    (``_PassChooser``); "auto" appends ``(kind, seconds, share of distances skipped)`` of
    each pass to ``log`` when given (the share is None for the sorted scan, which does not
    count them).

    Returns ``(centers, labels, inertia, n_iter)``; as in scikit-learn, the labels returned
    are those of the returned centres, and ``n_iter`` counts the centre updates.
    """
    n = X.shape[0]
    n_clusters = centers.shape[0]
    if guess is not None:
        guess = np.ascontiguousarray(guess, dtype=np.int32)
        # The kernel indexes centres with it: a bad value would be a crash, not an error.
        if guess.shape != (n,) or (n and (guess.min() < 0 or guess.max() >= n_clusters)):
            raise ValueError(f"guess must be {n} centre indices in [0, {n_clusters})")
    centers = np.array(centers, dtype=np.float64, order="C")
    labels = np.zeros(n, dtype=np.int32)
    upper = np.empty(n)
    lower = np.empty((n, n_clusters if method == "elkan" else 2))
    seconds = np.empty(n, dtype=np.int32)
    dist2 = np.empty(n)
    shift = np.zeros(n_clusters)
    moved = np.zeros(n_clusters + 1)  # see kernels.bounded_pass
    largest = _largest(X) if method == "auto" or margin is None else None
    if margin is None:
        margin = _bound_margin(X, largest)
    strict = False
    last = np.zeros((n_clusters, X.shape[1]) if relax != 1.0 else (0, 0))
    order = None  # the centres' scan order, re-sorted each iteration
    # Hamerly's pass keeps the sums up to date from the points that changed label, once they
    # have been counted in full; after an empty cluster is re-seeded they are counted again.
    full = True
    chooser = None
    if method == "auto":
        chooser = _PassChooser(("scan", "vector") if n_clusters < _SORTED_MIN_CLUSTERS
                               else ("scan", "vector", "sorted"))
    guided = guess is not None and n_clusters >= _GUIDED_MIN_CLUSTERS
    for it in range(max_iter):
        if it == 0 and method == "auto" and not guided:
            sums, weights, members, _, order = _auto_pass(chooser, "scan", X, w, centers, labels,
                                                          upper, seconds, lower, moved, margin,
                                                          largest, order, deltas=False)
            changed = n
        elif it == 0 and method != "lloyd":
            if method in ("hamerly", "auto"):
                sums, weights, order = first_assignment(X, w, centers, guess, margin, labels,
                                                        upper, seconds, lower)
            else:
                sums, weights = kernels.elkan_first_pass(X, w, centers, labels, upper, lower)
            members = np.bincount(labels, weights=w > 0, minlength=n_clusters).astype(np.int64)
            changed = n
        elif method in ("auto", "hamerly"):
            if method == "auto":
                # After an empty cluster was re-seeded, the bounds are redone and the sums
                # counted again by a full scan.
                d_sums, d_weights, d_members, changed, order = _auto_pass(
                    chooser, "scan" if full else chooser.pick(), X, w, centers, labels, upper,
                    seconds, lower, moved, margin, largest, order, deltas=not full)
            else:
                sdist, order, half_sep = kernels.center_geometry(centers, order)
                d_sums, d_weights, d_members, changed = kernels.bounded_pass(
                    X, w, centers, sdist, order, half_sep, labels, upper, seconds, lower,
                    moved, margin, 1 if full else 2)
            # Sums counted in full, or their changes from the points that changed label.
            if full:
                sums, weights, members = d_sums, d_weights, d_members
            else:
                sums += d_sums
                weights += d_weights
                members += d_members
        elif method == "elkan":
            sums, weights, changed = kernels.elkan_pass(X, w, centers,
                                                        *kernels.separations(centers),
                                                        labels, upper, lower, shift, margin, True)
            members = np.bincount(labels, weights=w > 0, minlength=n_clusters).astype(np.int64)
        else:
            old = labels.copy()
            kernels.assign(X, centers, labels, dist2)
            sums, weights = kernels.accumulate(X, w, labels, n_clusters)
            members = np.bincount(labels, weights=w > 0, minlength=n_clusters).astype(np.int64)
            changed = int(np.count_nonzero(old != labels))
        full = False
        # Settled: clusters are empty and every point is on its centre (none to re-seed
        # them with); nothing can change but rounding, so the run ends here.
        settled = False
        if kernels.clear_empty(sums, weights, members):
            settled = not _relocate_empty(X, w, centers, labels, sums, weights, members, dist2)
            full = True
        if verbose:
            print(f"Iteration {it}, inertia {kernels.inertia(X, w, centers, labels)}.")
        relaxing = relax != 1.0
        if relaxing and ((it > 0 and changed == 0) or settled or it == max_iter - 1
                         or it == _RELAX_MAX_ITER):
            # The labels have settled, or this is the last update, or the last relaxed
            # one: the centres land on their means.
            relax = 1.0
        centers, shift = kernels.moved_centers(sums, weights, centers, moved, relax, last, tol)
        if (it > 0 and changed == 0 and not relaxing) or settled:
            strict = True
            break
        if float((shift ** 2).sum()) <= tol:
            break
    if not strict:
        if method == "auto":
            # A re-seeded cluster leaves bounds that no longer hold: then a full scan.
            _auto_pass(chooser, "scan" if full else chooser.pick(), X, w, centers, labels,
                       upper, seconds, lower, moved, margin, largest, order, deltas=not full)
        elif method == "hamerly":
            kernels.bounded_pass(X, w, centers, *kernels.center_geometry(centers, order), labels,
                                 upper, seconds, lower, moved, margin, 0)
        elif method == "elkan":
            kernels.elkan_pass(X, w, centers, *kernels.separations(centers), labels, upper,
                               lower, shift, margin, False)
        else:
            kernels.assign(X, centers, labels, dist2)
    if log is not None and chooser is not None:
        log.extend(chooser.log)
    return centers, labels, kernels.inertia(X, w, centers, labels), it + 1


def farthest(score, take):
    """Indices of the ``take`` largest of ``score``, largest first and the lowest index
    first among equals (a rule the Dask fit can follow block by block), in O(N)."""
    take = min(take, len(score))
    if take <= 0:
        return np.empty(0, dtype=np.intp)
    threshold = score[np.argpartition(-score, take - 1)[take - 1]]
    above = np.flatnonzero(score > threshold)
    tied = np.flatnonzero(score == threshold)[:take - len(above)]
    far = np.concatenate([above, tied])
    return far[np.lexsort((far, -score[far]))]


def _relocate_empty(X, w, centers, labels, sums, weights, members, dist2):
    """Re-seed each empty cluster with one of the points farthest from their own centre.

    Works on the sums before they are divided, as scikit-learn does: the point moves out of
    its old cluster's sum and becomes the new cluster's only member. Returns how many
    clusters were re-seeded.
    """
    empty = np.flatnonzero(members == 0)
    score = far_scores(X, w, centers, labels, dist2)
    far = farthest(score, min(empty.size, int(np.count_nonzero(score > 0))))
    reseed(sums, weights, members, centers, empty[:len(far)], X[far], w[far], labels[far])
    return len(far)


#: A point closer to its centre than this share of their squared norms is on it: the mean
#: of identical points differs from them by its rounding only.
ON_CENTRE = 1e-20


def far_scores(X, w, centers, labels, dist2):
    """What re-seeding ranks (:func:`farthest`): each point's squared distance to its own
    centre (into ``dist2``), -1 where its weight is 0 or it is on its centre
    (``ON_CENTRE``). Only points scoring above 0 are taken: one on its centre would only
    duplicate it (with K above the number of distinct points, moving such points made
    Lloyd cycle to max_iter)."""
    kernels.distances_to_labelled(X, centers, labels, dist2)
    scale = (np.einsum("ij,ij->i", X, X, dtype=np.float64)
             + np.einsum("ij,ij->i", centers, centers)[labels])
    return scores_off_centre(dist2, w, scale, ON_CENTRE)


def scores_off_centre(dist2, w, scale, on_centre):
    """``dist2`` where the point has weight and is off its centre (``dist2`` above
    ``on_centre`` times ``scale``, its and its centre's squared norms), else -1: the scores
    :func:`farthest` ranks for re-seeding, dense or sparse (whose distances round more)."""
    return np.where((w > 0) & (dist2 > on_centre * scale), dist2, -1.0)


def reseed(sums, weights, members, centers, empty, rows, w, labels):
    """Move each chosen point (``rows``, weights ``w`` > 0, old ``labels``, in re-seeding
    order) out of its old cluster's sums and member count into the next cluster of
    ``empty``; any cluster left without a member keeps its centre (by the counts: the
    weights subtracted leave rounding residue, which divided by itself put a centre
    anywhere)."""
    for k, x, wi, old in zip(empty, rows, w, labels):
        x = x.astype(np.float64)
        sums[old] -= wi * x
        weights[old] -= wi
        members[old] -= 1
        sums[k] = wi * x
        weights[k] = wi
        members[k] = 1
    still = members == 0
    sums[still] = centers[still]
    weights[still] = 1.0


def warn_if_few_clusters(n_found, n_clusters, stacklevel):
    """scikit-learn's warning when fewer clusters than asked have members."""
    if n_found < n_clusters:
        warnings.warn(f"Number of distinct clusters ({n_found}) found smaller than "
                      f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
                      RuntimeWarning, stacklevel=stacklevel + 1)


class KMeans(EstimatorProtocol):
    """K-means clustering with scikit-learn's interface, exact Lloyd iterations in Numba.

    A scikit-learn estimator without depending on scikit-learn (``fastkm.estimator``):
    ``clone``, ``Pipeline``, ``GridSearchCV`` and ``check_estimator`` work with it. ``X`` is
    a dense array (float32 stays float32) or a scipy.sparse matrix or array (any format; it
    is clustered as CSR by ``fastkm.sparse``).

    Parameters
    ----------
    n_clusters : int
        Number of clusters K, 1 <= K <= n_samples.
    init : {"k-means++", "random"}, callable or array of shape (K, D)
        Seeding: greedy k-means++, K distinct points drawn in proportion to their weight,
        ``init(X, n_clusters, random_state)`` returning the (K, D) centres (scikit-learn's
        signature; ``random_state`` is a ``numpy.random.RandomState``), or explicit starting
        centres.
    n_init : int or "auto"
        Number of seeded runs; the one with the lowest inertia is kept. "auto" (default)
        means 1 for k-means++ or explicit centres and 10 for random or a callable, as in
        scikit-learn.
    max_iter : int
        Maximum number of Lloyd iterations per run.
    tol : float
        Convergence when the summed squared centre shift is at most ``tol`` times the mean
        per-feature variance of X (unweighted, whatever ``sample_weight``: scikit-learn's
        definition). Runs also stop when no label changes.
    verbose : int
        Non-zero prints one line per iteration ("Iteration i, inertia x.") as scikit-learn.
    random_state : None, int, numpy Generator or RandomState
        Seed; the same seed gives the same result.
    copy_x : bool
        Accepted for scikit-learn compatibility: fastkm never modifies X (it does not
        centre the data in place as scikit-learn does), so both values give the same result.
    algorithm : {"lloyd", "elkan", "auto", "hamerly"}
        "lloyd" computes every distance each iteration; "hamerly" (two lower bounds per
        point, on its second-nearest centre and on the rest, and a scan of centres sorted
        by distance) and "elkan" (one bound per point and centre)
        skip the distances that cannot change a label. "auto" picks each iteration's pass
        by the time each kind took when last run in the same fit: a vectorised scan of
        every centre (``fastkm.scan``, best where bounds prune little: overlapping
        clusters, a random start, the first iterations) or Hamerly's bounds with the
        points they cannot settle rescanned vectorised or (K >= 128) in sorted order; its
        result is Hamerly's to the bit, whichever passes ran. All give the same labels;
        Hamerly and "auto" update the cluster sums from the points that change label, so
        their centres may differ from the others' in the last bits. Elkan also needs
        N*K*8 bytes. Sparse input always runs exact Lloyd.
    """

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, copy_x=True, algorithm="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm

    def _check_params(self, X):
        n, n_dims = X.shape
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"n_clusters must be an integer >= 1, got {k!r}")
        if k > n:
            raise ValueError(f"n_clusters={k} must be <= n_samples={n}")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random', a callable or an array, "
                                 f"got {init!r}")
        elif not callable(init):
            init = self._check_centers(init, "init", k, n_dims)
        n_init = self.n_init
        if isinstance(n_init, str) and n_init == "auto":
            n_init = 10 if callable(init) or (isinstance(init, str) and init == "random") else 1
        elif isinstance(n_init, bool) or not isinstance(n_init, numbers.Integral) or n_init < 1:
            raise ValueError(f"n_init must be an integer >= 1 or 'auto', got {n_init!r}")
        if isinstance(init, np.ndarray) and n_init != 1:
            warnings.warn(f"explicit initial centres given: n_init={n_init} reduced to 1",
                          RuntimeWarning, stacklevel=4)
            n_init = 1
        mi = self.max_iter
        if isinstance(mi, bool) or not isinstance(mi, numbers.Integral) or mi < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {mi!r}")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0 or tol == np.inf:
            raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"algorithm must be one of {_ALGORITHMS}, got {self.algorithm!r}")
        # ValueError for bad types too, as scikit-learn's InvalidParameterError is one.
        if not isinstance(self.verbose, numbers.Integral):
            raise ValueError(f"verbose must be an integer or a bool, got {self.verbose!r}")  # noqa: TRY004
        if not isinstance(self.copy_x, (bool, np.bool_)):
            raise ValueError(f"copy_x must be a bool, got {self.copy_x!r}")  # noqa: TRY004
        return init, int(n_init)

    @staticmethod
    def _check_centers(centers, name, k, n_dims):
        if is_sparse(centers):
            centers = centers.toarray()
        centers = check_dense(centers, name)
        if centers.shape != (k, n_dims):
            raise ValueError(f"{name} must have shape (n_clusters, n_features) = ({k}, {n_dims}), "
                             f"got {centers.shape}")
        return centers.astype(np.float64)

    def _seed(self, init, X, w, rng, sparse_x, raw):
        """Starting centres (K, D) float64, and a guess of each point's nearest (or None)."""
        k = self.n_clusters
        if callable(init):
            state = np.random.RandomState(int(rng.integers(2**31 - 1)))
            return self._check_centers(init(raw, k, state), "init(X, n_clusters, random_state)",
                                       k, X.shape[1]), None
        if sparse_x is not None:
            from . import sparse

            if init == "k-means++":
                return sparse.kmeans_plusplus(sparse_x, w, k, rng), None
            return sparse.random_rows(sparse_x, w, k, rng), None
        if init == "k-means++":
            # Each point's nearest seed, known from the seeding, is where Lloyd's first
            # assignment searches from (path-640.jpg's 21k cells at K = 256: 2.0 ms instead of
            # 5.6 by brute force).
            near = np.empty(X.shape[0], dtype=np.int32)
            return _init.kmeans_plusplus(X, w, k, rng, nearest=near), near
        return _init.random_points(X, w, k, rng), None

    def fit(self, X, y=None, sample_weight=None):
        """Cluster ``X`` (N, D), dense or scipy.sparse; ``sample_weight`` (N,) weighs each
        point (a point of weight w counts as w copies of it)."""
        if type(X).__module__.startswith("dask."):  # on the workers: fastkm.dask_kmeans
            from .dask_kmeans import fit
            return fit(self, X, sample_weight)
        return self._fit(X, sample_weight)

    def _fit(self, X, sample_weight=None, guess=None, relax=1.0, counts=False):
        # ``guess``: a centre index near each point for the first assignment from explicit
        # starting centres (see ``lloyd``), such as the labels of the run they come from;
        # ``relax``: ``lloyd``'s over-relaxation (1: plain Lloyd, as ``fit``); ``counts``:
        # the weights count repeated points (a histogram), so tol scales with the variance
        # of the points repeated, as the fit on every pixel would have it.
        names = feature_names(X)
        raw = X
        X = check_data(X)
        sparse_x = _csr(X) if is_sparse(X) else None
        w = _check_weights(sample_weight, X.shape[0])
        init, n_init = self._check_params(X)
        # An explicit start draws nothing: no fresh generator for it (default_rng(None) reads
        # the OS's entropy, ~30 us a fit).
        explicit = isinstance(init, np.ndarray)
        rng = None if explicit and self.random_state is None else _as_rng(self.random_state)
        tol = 0.0
        if self.tol > 0:
            # scikit-learn's scale for tol: the features' variance, whatever the sample
            # weights, unless they count repeated points.
            scale_w = w if counts else np.ones(X.shape[0])
            variance = (sparse_x.mean_variance(scale_w) if sparse_x is not None
                        else _weighted_mean_variance(X, scale_w))
            tol = self.tol * variance
        method = self.algorithm
        best = None
        for _ in range(n_init):
            if explicit:
                start, near = init, guess
            else:
                start, near = self._seed(init, X, w, rng, sparse_x, raw)
            if self.verbose:
                print("Initialization complete")
            if sparse_x is not None:
                from . import sparse

                run = sparse.lloyd(sparse_x, w, start, max_iter=int(self.max_iter), tol=tol,
                                    verbose=bool(self.verbose))
            else:
                run = lloyd(X, w, start, max_iter=int(self.max_iter), tol=tol, method=method,
                            guess=near, relax=relax, verbose=bool(self.verbose))
            if best is None or run[2] < best[2]:
                best = run
        centers, labels, inertia, n_iter = best
        # Unweighted when every weight is 1: 1.5 ms against 4 at 1M points.
        members = np.bincount(labels, weights=None if sample_weight is None else w,
                              minlength=self.n_clusters)
        n_found = int(np.count_nonzero(members > 0))
        warn_if_few_clusters(n_found, self.n_clusters, stacklevel=3)
        self.cluster_centers_ = centers.astype(X.dtype, copy=False)
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._n_features_out = self.n_clusters
        self._centers64 = centers
        return self

    def _validate(self, X):
        """Fitted check, then ``X`` validated against the fit (dense array or ``CSR``)."""
        self._check_fitted()
        check_feature_names(self, X)
        X = check_data(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input (it was "
                             f"fitted with {self.n_features_in_})")
        return _csr(X) if is_sparse(X) else X

    def _labels(self, X):
        if _is_csr(X):
            return X.labels(self._centers64)[0]
        labels = np.empty(X.shape[0], dtype=np.int32)
        kernels.assign(X, self._centers64, labels, np.empty(X.shape[0]))
        return labels

    def predict(self, X):
        """Index of the nearest centre of each row of ``X``."""
        if type(X).__module__.startswith("dask."):  # on the workers: fastkm.dask_kmeans
            self._check_fitted()
            from .dask_kmeans import predict
            return predict(self, X)
        return self._labels(self._validate(X))

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit`` then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance (N, K) of each row of ``X`` to each centre."""
        raw = X
        X = self._validate(X)
        if _is_csr(X):
            out = np.sqrt(X.sq_distances(self._centers64))
        else:
            out = np.empty((X.shape[0], self.n_clusters))
            x = X.astype(np.float64, copy=False)
            for j, c in enumerate(self._centers64):
                out[:, j] = np.sqrt(((x - c) ** 2).sum(axis=1))
        return self._wrap_output(out.astype(self.cluster_centers_.dtype, copy=False), raw)

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit`` then ``transform`` of the same ``X``."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the inertia of ``X`` against the fitted centres (scikit-learn's sign)."""
        X = self._validate(X)
        w = _check_weights(sample_weight, X.shape[0])
        labels = self._labels(X)
        if _is_csr(X):
            return -float(X.inertia(w, self._centers64, labels))
        return -float(kernels.inertia(X, w, self._centers64, labels))
