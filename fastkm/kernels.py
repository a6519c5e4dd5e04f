"""Compiled loops of k-means: assignment, accumulation, inertia and the bounded Lloyd step.

Conventions shared by every kernel:

- ``X`` is a C-contiguous (N, D) float32 or float64 array; ``centers`` is (K, D) float64;
  ``w`` is (N,) float64 per-point weights; ``labels`` is (N,) int32.
- Squared distances are summed over the D coordinates in order, in float64, so every kernel
  and the NumPy reference ``((X[:, None] - C[None]) ** 2).sum(-1)`` agree to the last bit.
- Ties go to the lowest centre index, as ``np.argmin`` does.
- Work is cut into fixed-size chunks of points (``chunk``), never into one piece per thread:
  partial sums then have the same grouping on any number of cores, so results are repeatable
  across machines, and no two threads ever write the same accumulator.
- Kernels that take a last ``key`` argument are wrapped (:func:`_keyed`) so that callers
  never pass it: it is ``width_key(D)``, which lets colours run code compiled for D = 3.

The kernels trust their inputs (shapes, dtypes, labels in range): ``fastkm.kmeans`` validates
before calling them, since an out-of-range index in compiled code is a crash, not an error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .jit import prange_only

#: Points per chunk of accumulation partial sums (fixed so results do not depend on threads).
CHUNK = 2048


#: Widths D for which the kernels are compiled with D as a constant, so that LLVM unrolls
#: their loops over coordinates: colours (RGB and OKLab). ``quantize`` then took 0.88 of
#: the time (geometric mean, 3 photos x K = 16/64/256), 0.74 at best (path-640.jpg,
#: K = 256). Other widths run the same code with D read from the array, in one more
#: compilation of each kernel.
_CONSTANT_WIDTHS = {3: (0, 0, 0)}


def width_key(n_dims):
    """The last argument of the kernels wrapped by :func:`_keyed`, for data of ``n_dims``
    columns: a tuple of that length (its length is known when Numba compiles) or ``()``."""
    return _CONSTANT_WIDTHS.get(n_dims, ())


def _keyed(kernel):
    """``kernel``, called with :func:`width_key` of its first argument's width appended."""
    def call(*args):
        return kernel(*args, width_key(args[0].shape[1]))
    call.__name__ = call.__qualname__ = kernel.__name__
    call.__doc__ = kernel.__doc__
    call.kernel = kernel
    return call


def serial_twin(kernel):
    """``kernel`` (a parallel kernel, or its :func:`_keyed` wrapper) compiled again without
    threads (its ``prange`` loops run as plain loops), named ``<name>_serial``: Numba caches
    it apart. For data so small that waking the threads costs more than the loop: a serial
    kernel also compiles in about half the time (no outlined parallel region)."""
    import types

    inner = getattr(kernel, "kernel", kernel)
    f = inner.py_func
    name = f"{f.__name__}_serial"
    twin = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = name
    twin.__module__ = f.__module__
    twin.__doc__ = f.__doc__
    twin = njit(cache=True)(twin)
    return _keyed(twin) if inner is not kernel else twin


@njit(cache=True, inline="always")
def _width(X, key):
    """D, the width of ``X``: the constant ``len(key)`` when the key names it."""
    return len(key) if len(key) else X.shape[1]


# Inlined by Numba, not left to LLVM: called as a function, each call in a hot loop paid
# for its array arguments (a late Lloyd pass at K = 256 on 150k colours: 2.7 -> 1.9 ms).
@njit(cache=True, inline="always")
def _sqdist(X, i, centers, k, key):
    s = 0.0
    for d in range(_width(X, key)):
        t = np.float64(X[i, d]) - centers[k, d]
        s += t * t
    return s


@njit(cache=True)
def _zeros(shape):
    # Allocated outside the parallel kernels: there each np.zeros becomes a parallel region
    # of its own, and every region waits for all threads (costly when cores are busy).
    return np.zeros(shape)


@njit(cache=True)
def _int_zeros(shape):
    return np.zeros(shape, dtype=np.int64)


@njit(cache=True)
def _total(a):
    t = 0
    for v in a:
        t += v
    return t


@njit(cache=True)
def _reduce(part_s, part_w, n_clusters, n_dims):
    """Sum per-chunk partial sums in chunk order (the same grouping on any number of cores)."""
    sums = np.zeros((n_clusters, n_dims))
    weights = np.zeros(n_clusters)
    for c in range(part_s.shape[0]):
        sums += part_s[c]
        weights += part_w[c]
    return sums, weights


@njit(cache=True)
def _reduce_counts(part_m, n_clusters):
    # Compiled apart: inside a parallel kernel this array sum would become a parallel region
    # per chunk, each waiting for every thread.
    counts = np.zeros(n_clusters, dtype=np.int64)
    for c in range(part_m.shape[0]):
        counts += part_m[c]
    return counts


@njit(cache=True)
def clear_empty(sums, weights, members):
    """Zero the sums and weight of every cluster with no member (what Hamerly's updates
    leave there is rounding residue); returns how many there are."""
    n_empty = 0
    for k in range(members.shape[0]):
        if members[k] == 0:
            sums[k, :] = 0.0
            weights[k] = 0.0
            n_empty += 1
    return n_empty


@njit(cache=True, error_model="numpy")
def moved_centers(sums, weights, centers, moved, relax, last, tol):
    """The new centres ``sums / weights`` and how far each moved from ``centers``
    (Euclidean). One call instead of half a dozen NumPy operations per Lloyd iteration.
    Each move is added to ``moved[k]`` and the largest to ``moved[K]`` (see
    :func:`bounded_pass`).

    ``relax`` > 1 over-relaxes: a centre whose step to its mean points the same way as its
    last step (``last``, (K, D), updated here) moves ``relax`` times that step, unless the
    steps to the means add up to at most ``tol`` (squared), where all stop at their means.
    """
    n_clusters, n_dims = sums.shape
    new = np.empty((n_clusters, n_dims))
    shift = np.empty(n_clusters)
    plain = 0.0
    for k in range(n_clusters):
        for d in range(n_dims):
            v = sums[k, d] / weights[k]
            new[k, d] = v
            t = v - centers[k, d]
            plain += t * t
    if relax != 1.0:
        on = plain > tol
        for k in range(n_clusters):
            dot = 0.0
            for d in range(n_dims):
                t = new[k, d] - centers[k, d]
                dot += t * last[k, d]
                last[k, d] = t
            if on and dot > 0.0:
                for d in range(n_dims):
                    new[k, d] = centers[k, d] + relax * (new[k, d] - centers[k, d])
    largest = 0.0
    for k in range(n_clusters):
        s = 0.0
        for d in range(n_dims):
            t = new[k, d] - centers[k, d]
            s += t * t
        shift[k] = np.sqrt(s)
        moved[k] += shift[k]
        largest = max(largest, shift[k])
    moved[n_clusters] += largest
    return new, shift


@njit(parallel=prange_only(), cache=True)
def assign(X, centers, labels, dist2):
    """Nearest centre of every point.

    ``labels[i] = argmin_k ||X[i] - centers[k]||²`` and ``dist2[i]`` is that minimum.
    """
    n, n_dims = X.shape
    n_clusters = centers.shape[0]
    centers_t = np.ascontiguousarray(centers.T)
    n_chunks = (n + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        buf = np.empty(n_clusters)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            # Centre-major inner loop: contiguous over k, so it vectorises for any D.
            buf[:] = 0.0
            for d in range(n_dims):
                x = np.float64(X[i, d])
                for k in range(n_clusters):
                    t = x - centers_t[d, k]
                    buf[k] += t * t
            best = 0
            best_d = buf[0]
            for k in range(1, n_clusters):
                if buf[k] < best_d:
                    best_d = buf[k]
                    best = k
            labels[i] = best
            dist2[i] = best_d


@_keyed
@njit(parallel=prange_only(), cache=True)
def assign_near(X, centers, guess, sdist, order, margin, labels, dist2, key):
    """:func:`assign`'s result, from a guess of each point's nearest centre.

    Only centres ``k`` with ``||c_a - c_k|| < 2·||x - c_a||`` (``a`` the guess) can be nearer
    than ``a`` (triangle inequality), so each point scans the centres in order of distance
    from its guess, ``(sdist, order)`` of :func:`center_geometry`, and stops there (with
    ``margin`` for rounding). After Lloyd, mapping colours to the rounded palette, the guesses
    are the labels and the scans are a few centres long instead of K.
    """
    n = X.shape[0]
    n_clusters = centers.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            a = guess[i]
            best = a
            best_d2 = _sqdist(X, i, centers, a, key)
            reach = 2.0 * np.sqrt(best_d2) + margin
            for j in range(1, n_clusters):
                if sdist[a, j] > reach:
                    break
                k = order[a, j]
                d2 = _sqdist(X, i, centers, k, key)
                if d2 < best_d2 or (d2 == best_d2 and k < best):
                    best_d2 = d2
                    best = k
            labels[i] = best
            dist2[i] = best_d2


@_keyed
@njit(parallel=prange_only(), cache=True)
def accumulate(X, w, labels, n_clusters, key):
    """Weighted per-cluster sums and weights.

    Returns ``sums[k] = Σ_{labels[i]=k} w[i]·X[i]`` (K, D) and ``weights[k] = Σ w[i]`` (K,),
    both float64, summed per chunk and then over chunks in chunk order.
    """
    n = X.shape[0]
    n_dims = _width(X, key)
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks, n_clusters, n_dims))
    part_w = _zeros((n_chunks, n_clusters))
    for c in prange(n_chunks):
        width = _width(X, key)  # here, where Numba's outlined loop body sees the constant
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            k = labels[i]
            wi = w[i]
            part_w[c, k] += wi
            for d in range(width):
                part_s[c, k, d] += wi * np.float64(X[i, d])
    return _reduce(part_s, part_w, n_clusters, n_dims)


@_keyed
@njit(parallel=prange_only(), cache=True)
def inertia(X, w, centers, labels, key):
    """``Σ_i w[i]·||X[i] - centers[labels[i]]||²`` in float64."""
    n = X.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part = _zeros(n_chunks)
    for c in prange(n_chunks):
        s = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            s += w[i] * _sqdist(X, i, centers, labels[i], key)
        part[c] = s
    total = 0.0
    for c in range(n_chunks):
        total += part[c]
    return total


@_keyed
@njit(parallel=prange_only(), cache=True)
def distances_to_labelled(X, centers, labels, dist2, key):
    """``dist2[i] = ||X[i] - centers[labels[i]]||²``."""
    for i in prange(X.shape[0]):
        dist2[i] = _sqdist(X, i, centers, labels[i], key)


@njit(cache=True, inline="always")
def _center_distance(centers, a, b, key):
    """Euclidean distance between centres ``a`` and ``b``."""
    s = 0.0
    for d in range(_width(centers, key)):
        t = centers[a, d] - centers[b, d]
        s += t * t
    return np.sqrt(s)


@njit(cache=True, inline="always")
def _distance_row(centers, a, out, key):
    """Row ``a`` of the (K, K) Euclidean distances between centres, -1 on the diagonal so
    that, sorted, each centre comes first in its own row."""
    for b in range(centers.shape[0]):
        out[a, b] = _center_distance(centers, a, b, key)
    out[a, a] = -1.0


@_keyed
@njit(cache=True)
def center_distances(centers, key):
    """(K, K) Euclidean distances between centres (see :func:`_distance_row`); symmetric to
    the last bit, as ``(x - y)²`` and ``(y - x)²`` round alike. Serial: once per Lloyd run,
    ~0.1 ms at K = 256, and no parallel loop to compile."""
    n_clusters = centers.shape[0]
    out = np.empty((n_clusters, n_clusters))
    for a in range(n_clusters):
        _distance_row(centers, a, out, key)
    return out


@njit(cache=True, inline="always")
def _resort_row(centers, order, sdist, a, key):
    """Row ``a`` of the scan geometry: the distances from centre ``a`` to the others, taken
    in the previous ``order[a]``, and both rows sorted by them, in place, by insertion (the
    centres moved little since, so that costs about K). The pairs are sorted where they
    lie, so the sort reads no distance through ``order``; ``a`` itself sorts first (its key
    is -1) and its distance is then set to 0."""
    n_clusters = centers.shape[0]
    for j in range(n_clusters):
        b = order[a, j]
        sdist[a, j] = _center_distance(centers, a, b, key) if b != a else -1.0
    for j in range(1, n_clusters):
        dist = sdist[a, j]
        k = order[a, j]
        i = j - 1
        while i >= 0 and sdist[a, i] > dist:
            sdist[a, i + 1] = sdist[a, i]
            order[a, i + 1] = order[a, i]
            i -= 1
        sdist[a, i + 1] = dist
        order[a, i + 1] = k
    sdist[a, 0] = 0.0


@njit(parallel=prange_only(), cache=True)
def _resorted_distances(centers, order, key):
    # Rows are independent: at K = 256 the K² distances and K sorts took 0.37 ms per
    # Lloyd iteration on one core, ~10% of a late Hamerly pass.
    sdist = np.empty((centers.shape[0], centers.shape[0]))
    for a in prange(centers.shape[0]):
        _resort_row(centers, order, sdist, a, key)
    return sdist


# Below RESORT_PARALLEL_MIN the rows take less time than waking the threads.
_resorted_distances_serial = serial_twin(_resorted_distances)


#: Centres from which re-sorting the scan orders runs on every core.
RESORT_PARALLEL_MIN = 64


def _in_order(keyed, order):
    """``keyed[a, order[a, j]]`` at ``[a, j]``, with the -1 of ``a`` itself (first) made 0.
    NumPy, not a kernel: once per Lloyd run, and one kernel less to load at start-up."""
    sdist = np.take_along_axis(keyed, order, axis=1)
    sdist[:, 0] = 0.0
    return sdist


def _half_separations(sdist):
    """Half the distance from each centre to its nearest other (inf when there is none)."""
    if sdist.shape[0] < 2:
        return np.full(sdist.shape[0], np.inf)
    return 0.5 * sdist[:, 1]


def center_geometry(centers, order=None):
    """The centres in the order a scan from each of them visits the others.

    Returns ``(sdist, order, half_sep)``: ``order[a]`` all centre indices sorted by distance
    from centre ``a`` (``a`` itself first), ``sdist[a, j]`` the Euclidean distance from
    ``a`` to ``order[a, j]`` (so ``sdist[a]`` ascends from 0), and ``half_sep[a]`` half the
    distance from ``a`` to its nearest other centre. A previous ``order`` (int32, K x K) is
    re-sorted in place and returned: cheap when the centres moved little. Ties may go
    either way.
    """
    if order is None:
        keyed = center_distances(centers)
        # Ties may go either way, so no stable sort: NumPy's quicksort (SIMD on x86) took
        # 0.44 ms at K = 256 against 3.1 ms, once per Lloyd run.
        order = np.argsort(keyed, axis=1).astype(np.int32)
        sdist = _in_order(keyed, order)
    elif len(centers) >= RESORT_PARALLEL_MIN:
        sdist = _resorted_distances(centers, order, width_key(centers.shape[1]))
    else:
        sdist = _resorted_distances_serial(centers, order, width_key(centers.shape[1]))
    return sdist, order, _half_separations(sdist)


def separations(centers):
    """``(cdist, half_sep)`` for :func:`elkan_pass`, which visits the centres by index:
    the (K, K) distances between centres (:func:`center_distances`, -1 on the diagonal) and
    :func:`center_geometry`'s ``half_sep``."""
    cdist = center_distances(centers)
    if len(centers) < 2:
        return cdist, np.full(len(centers), np.inf)
    off = cdist.copy()
    np.fill_diagonal(off, np.inf)
    return cdist, 0.5 * off.min(axis=1)


@njit(cache=True, inline="always")
def _scan_from(X, i, centers, sdist, order, a, d2a, margin, key):
    """The three nearest centres of point ``i``, scanning from centre ``a`` (at squared
    distance ``d2a``) in order of distance from ``a``.

    Every centre from the j-th on is at least ``sdist[a, j] - ||x - c_a||`` away (triangle
    inequality), so the scan stops once that exceeds the third nearest so far (with
    ``margin`` for rounding). Squared distances until then, so a square root is taken only
    when the third nearest changes. Returns ``(best, best_d2, second, second_d2, third_d2)``
    (``second`` is ``best`` when there is no other centre); ties go to the lowest index for
    both, as in :func:`assign` and :func:`first_pass`.
    """
    n_clusters = centers.shape[0]
    u = np.sqrt(d2a)
    best = a
    best_d2 = d2a
    second = a
    second2 = np.inf
    third2 = np.inf
    stop = np.inf
    for j in range(1, n_clusters):
        if sdist[a, j] > stop:
            break
        k = order[a, j]
        d2 = _sqdist(X, i, centers, k, key)
        if d2 > third2:
            continue
        # Selects, not branches, for which of the three it displaces (as in first_pass).
        # Ties keep best < second, so c1 implies c2.
        c1 = d2 < best_d2 or (d2 == best_d2 and k < best)
        c2 = d2 < second2 or (d2 == second2 and k < second)
        third2 = second2 if c2 else d2
        second2 = best_d2 if c1 else (d2 if c2 else second2)
        second = best if c1 else (k if c2 else second)
        best_d2 = d2 if c1 else best_d2
        best = k if c1 else best
        stop = u + np.sqrt(third2) + margin
    return best, best_d2, second, second2, third2


@njit(cache=True, inline="always")
def _record_first(X, w, i, c, best, best_d2, second, second_d2, third_d2, labels, upper,
                  seconds, lower, part_s, part_w, key):
    """A first pass's result for point ``i``: its label, the distance to it, its second
    nearest centre and the bounds (see :func:`bounded_pass`), and its weight and weighted
    coordinates added to chunk ``c``'s sums for that label."""
    labels[i] = best
    upper[i] = np.sqrt(best_d2)
    seconds[i] = second
    lower[i, 0] = np.sqrt(second_d2)
    lower[i, 1] = np.sqrt(third_d2)
    wi = w[i]
    part_w[c, best] += wi
    for d in range(_width(X, key)):
        part_s[c, best, d] += wi * np.float64(X[i, d])


@_keyed
@njit(parallel=prange_only(), cache=True)
def first_pass(X, w, centers, labels, upper, seconds, lower, key):
    """Brute-force assignment that also records the bounds :func:`bounded_pass` keeps.

    Sets ``labels``, ``upper[i]`` = distance to the nearest centre, ``seconds[i]`` = the
    second nearest centre (the nearest itself when K = 1), ``lower[i, 0]`` = distance to it
    and ``lower[i, 1]`` = distance to the third nearest (Euclidean, not squared; inf where
    there is none); returns ``(sums, weights)`` as :func:`accumulate` does for the new
    labels.
    """
    n = X.shape[0]
    n_dims = _width(X, key)
    n_clusters = centers.shape[0]
    centers_t = np.ascontiguousarray(centers.T)
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks, n_clusters, n_dims))
    part_w = _zeros((n_chunks, n_clusters))
    for c in prange(n_chunks):
        width = _width(X, key)  # see accumulate
        buf = np.empty(n_clusters)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            buf[:] = 0.0
            for d in range(width):
                x = np.float64(X[i, d])
                for k in range(n_clusters):
                    t = x - centers_t[d, k]
                    buf[k] += t * t
            best = 0
            second = 0
            b1 = buf[0]
            b2 = np.inf
            b3 = np.inf
            # Selects, not branches: which of the three a distance displaces is a coin toss
            # the branch predictor lost (6,739 random 3-D points: K = 16 272 -> 243 us,
            # K = 64 701 -> 564 us).
            for k in range(1, n_clusters):
                v = buf[k]
                c1 = v < b1
                c2 = v < b2
                b3 = b2 if c2 else (v if v < b3 else b3)
                b2 = b1 if c1 else (v if c2 else b2)
                second = best if c1 else (k if c2 else second)
                b1 = v if c1 else b1
                best = k if c1 else best
            _record_first(X, w, i, c, best, b1, second, b2, b3, labels, upper, seconds, lower,
                          part_s, part_w, key)
    return _reduce(part_s, part_w, n_clusters, n_dims)


def nearest_with_sums(X, w, centers, labels):
    """:func:`first_pass` without its bounds: ``labels`` set to each point's nearest centre
    (ties to the lowest index), returns ``(sums, weights)``. For a nearest-centre search or
    a weighted sum where the fit has compiled first_pass already (no other kernel needed)."""
    n = X.shape[0]
    return first_pass(X, w, centers, labels, np.empty(n), np.empty(n, dtype=np.int32),
                      np.empty((n, 2)))


@_keyed
@njit(parallel=prange_only(), cache=True)
def first_pass_from(X, w, centers, sdist, order, guess, margin, labels, upper, seconds, lower,
                    key):
    """:func:`first_pass`'s results to the last bit, from a guess of each point's nearest
    centre (any valid index; ``(sdist, order)`` of :func:`center_geometry`).

    Each point scans the centres in order of distance from its guess (:func:`_scan_from`)
    instead of all K: when Lloyd restarts from centres near those of a previous run, the
    guesses are that run's labels and the scans are a few centres long.
    """
    n = X.shape[0]
    n_dims = _width(X, key)
    n_clusters = centers.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks, n_clusters, n_dims))
    part_w = _zeros((n_chunks, n_clusters))
    for c in prange(n_chunks):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            a = guess[i]
            best, best_d2, second, second2, third2 = _scan_from(
                X, i, centers, sdist, order, a, _sqdist(X, i, centers, a, key), margin, key)
            _record_first(X, w, i, c, best, best_d2, second, second2, third2, labels, upper,
                          seconds, lower, part_s, part_w, key)
    return _reduce(part_s, part_w, n_clusters, n_dims)


@njit(cache=True, inline="always")
def _threshold(i, a, lower, seconds, moved, half_sep, margin):
    """The distance under which point ``i``'s own centre ``a`` is certain to stay its
    nearest (see :func:`bounded_pass`), less ``margin``."""
    rest = lower[i, 1] - moved[moved.shape[0] - 1]
    return max(half_sep[a], min(lower[i, 0] - moved[seconds[i]], rest)) - margin


@njit(cache=True, inline="always")
def _count(X, w, i, c, a, part_s, part_w, part_m, key):
    """Point ``i`` counted in cluster ``a``'s sums of chunk ``c``."""
    wi = w[i]
    part_w[c, a] += wi
    if wi > 0:
        part_m[c, a] += 1
    for d in range(_width(X, key)):
        part_s[c, a, d] += wi * np.float64(X[i, d])


@njit(cache=True, inline="always")
def _move(X, w, i, c, old, new, part_s, part_w, part_m, key):
    """Point ``i`` leaves cluster ``old`` for ``new``: chunk ``c``'s sums change by it."""
    wi = w[i]
    part_w[c, old] -= wi
    part_w[c, new] += wi
    if wi > 0:
        part_m[c, old] -= 1
        part_m[c, new] += 1
    for d in range(_width(X, key)):
        x = wi * np.float64(X[i, d])
        part_s[c, old, d] -= x
        part_s[c, new, d] += x


#: Up to this many dimensions :func:`bounded_pass` computes each point's distance to its own
#: centre every time instead of testing an upper bound on it first (see there).
TIGHT_MAX_DIMS = 4


@_keyed
@njit(parallel=prange_only(), cache=True)
def bounded_pass(X, w, centers, sdist, order, half_sep, labels, upper, seconds, lower, moved,
                 margin, sums_mode, key):
    """One exact Lloyd assignment that skips the distances which cannot change a label.

    Hamerly's bounds, with the full search replaced by a scan of the centres in order of their
    distance from the point's current centre ``a``, stopped as soon as the triangle
    inequality ``||x - c_k|| >= ||c_a - c_k|| - ||x - c_a||`` rules out every centre left.

    Hamerly's lower bound is split in two. Each point keeps its second-nearest centre by
    name, ``b = seconds[i]``, with a bound on its distance to ``c_b`` and one on its distance
    to every other centre but its own. Late in a run a few centres still move far while most
    barely move: a single bound over all other centres falls by the largest move every
    iteration; this way only the bound on the (farther) rest does, and the one on ``b`` falls
    by ``b``'s own moves.

    The bounds are kept net of the moves so far, so a point whose label is certain is only
    read, never written: ``moved[k]`` is the total distance centre ``k`` has moved since the
    first pass and ``moved[K]`` the sum over iterations of the largest move of any centre;
    ``lower[i, 0] - moved[b]`` is at most the distance to ``c_b`` and ``lower[i, 1] -
    moved[K]`` at most the distance to every other centre but ``a``. Above ``TIGHT_MAX_DIMS``
    dimensions ``upper[i] + moved[a]`` is at least the distance to the point's own centre;
    up to it ``upper`` is not used: that distance is computed every time. ``margin``
    absorbs float rounding in the bounds: a point is skipped only when its label is certain
    by more than ``margin``, so labels equal those of brute-force ``assign`` (ties to the
    lowest index included). ``(sdist, order, half_sep)`` is :func:`center_geometry` of
    ``centers``.

    Returns ``(sums, weights, members, n_changed)``: per cluster the weighted sum of its
    points, their total weight and how many of them have positive weight, for the new labels
    (``sums_mode`` 1), or only the changes those quantities undergo, from the points that
    changed label (``sums_mode`` 2: late iterations move few points, and this way the points
    that keep their label are never read), or zeros (``sums_mode`` 0).
    """
    n = X.shape[0]
    n_dims = _width(X, key)
    n_clusters = centers.shape[0]
    moved_rest = moved[n_clusters]
    n_chunks = (n + CHUNK - 1) // CHUNK
    n_parts = n_chunks if sums_mode != 0 else 0
    part_s = _zeros((n_parts, n_clusters, n_dims))
    part_w = _zeros((n_parts, n_clusters))
    part_m = _int_zeros((n_parts, n_clusters))
    changed = _int_zeros(n_chunks)
    for c in prange(n_chunks):
        width = _width(X, key)  # see accumulate
        n_changed = 0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            a = labels[i]
            t = _threshold(i, a, lower, seconds, moved, half_sep, margin)
            # In few dimensions the exact distance to its own centre is computed for every
            # point: an upper bound tested first failed at random for a quarter of the
            # points, and that branch cost more than the distance (fallenleaf.jpg, K = 64,
            # 192k colours: 74 -> 65 ms a run). In more, the distance costs more than the
            # branch (blobs, D = 16, K = 64: 0.08 s with the bound, 0.14 s without).
            if width > TIGHT_MAX_DIMS and upper[i] + moved[a] < t:
                certain = True
            else:
                d2a = _sqdist(X, i, centers, a, key)
                # Squared, so no square root unless the point is scanned.
                certain = t > 0.0 and d2a < t * t
                if certain and width > TIGHT_MAX_DIMS:
                    upper[i] = np.sqrt(d2a) - moved[a]
            if not certain:
                best, best_d2, second, second2, third2 = _scan_from(
                    X, i, centers, sdist, order, a, d2a, margin, key)
                if best != a:
                    labels[i] = best
                    n_changed += 1
                    if sums_mode == 2:
                        _move(X, w, i, c, a, best, part_s, part_w, part_m, key)
                    a = best
                seconds[i] = second
                lower[i, 0] = np.sqrt(second2) + moved[second]
                lower[i, 1] = np.sqrt(third2) + moved_rest
                if width > TIGHT_MAX_DIMS:
                    upper[i] = np.sqrt(best_d2) - moved[a]
            if sums_mode == 1:
                _count(X, w, i, c, a, part_s, part_w, part_m, key)
        changed[c] = n_changed
    sums, weights = _reduce(part_s, part_w, n_clusters, n_dims)
    return sums, weights, _reduce_counts(part_m, n_clusters), _total(changed)


@njit(parallel=prange_only(), cache=True)
def elkan_first_pass(X, w, centers, labels, upper, lower):
    """Brute-force assignment that records Elkan's bounds: ``lower[i, k]`` = distance from
    point ``i`` to centre ``k`` and ``upper[i]`` = distance to its own. Returns
    ``(sums, weights)`` as :func:`accumulate`. Elkan's bounds serve D of 8 and more
    (only on request: ``KMeans(algorithm="elkan")``), so neither Elkan kernel takes a width key."""
    n, n_dims = X.shape
    n_clusters = centers.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks, n_clusters, n_dims))
    part_w = _zeros((n_chunks, n_clusters))
    for c in prange(n_chunks):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            best = 0
            best_d2 = np.inf
            for k in range(n_clusters):
                d2 = _sqdist(X, i, centers, k, ())
                lower[i, k] = np.sqrt(d2)
                if d2 < best_d2:
                    best_d2 = d2
                    best = k
            labels[i] = best
            upper[i] = np.sqrt(best_d2)
            wi = w[i]
            part_w[c, best] += wi
            for d in range(n_dims):
                part_s[c, best, d] += wi * np.float64(X[i, d])
    return _reduce(part_s, part_w, n_clusters, n_dims)


@njit(parallel=prange_only(), cache=True)
def elkan_pass(X, w, centers, cdist, half_sep, labels, upper, lower, shift, margin,
               accumulate_sums):
    """One exact Lloyd assignment with Elkan's bounds (one lower bound per point and centre).

    Unlike :func:`bounded_pass`, a centre that moves far loosens only its own bounds, which
    is what keeps moderate dimensions (D of 8 and more) fast. Same contract otherwise: on
    entry the bounds hold for the previous centres and ``shift[k]`` is how far centre ``k``
    moved; labels equal those of :func:`assign`. ``(cdist, half_sep)`` is
    :func:`separations` of ``centers``. Returns ``(sums, weights, n_changed)``.
    """
    n, n_dims = X.shape
    n_clusters = centers.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    part_s = _zeros((n_chunks if accumulate_sums else 0, n_clusters, n_dims))
    part_w = _zeros((n_chunks if accumulate_sums else 0, n_clusters))
    changed = _int_zeros(n_chunks)
    for c in prange(n_chunks):
        n_changed = 0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            for k in range(n_clusters):
                lower[i, k] = lower[i, k] - shift[k]
            a = labels[i]
            u = upper[i] + shift[a]
            if u + margin >= half_sep[a]:
                tight = False
                d2a = 0.0
                a0 = a
                for k in range(n_clusters):
                    if k == a:
                        continue
                    if u + margin < lower[i, k] or u + margin < 0.5 * cdist[a, k]:
                        continue
                    if not tight:
                        d2a = _sqdist(X, i, centers, a, ())
                        u = np.sqrt(d2a)
                        lower[i, a] = u
                        tight = True
                        if u + margin < lower[i, k] or u + margin < 0.5 * cdist[a, k]:
                            continue
                    d2 = _sqdist(X, i, centers, k, ())
                    dk = np.sqrt(d2)
                    lower[i, k] = dk
                    if d2 < d2a or (d2 == d2a and k < a):
                        a = k
                        d2a = d2
                        u = dk
                if a != a0:
                    labels[i] = a
                    n_changed += 1
            upper[i] = u
            if accumulate_sums:
                wi = w[i]
                part_w[c, a] += wi
                for d in range(n_dims):
                    part_s[c, a, d] += wi * np.float64(X[i, d])
        changed[c] = n_changed
    sums, weights = _reduce(part_s, part_w, n_clusters, n_dims)
    return sums, weights, _total(changed)
