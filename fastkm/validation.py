"""Input checks at the edge of :class:`fastkm.KMeans`, with scikit-learn's kinds of errors.

Dense data becomes a C-contiguous float32 or float64 array; scipy sparse data (matrices
and arrays, any format) becomes a canonical CSR matrix. scipy is never imported here: a
sparse input is recognised by its ``tocsr`` method and its class's module, and scipy is
then already loaded by whoever built it.
"""

from __future__ import annotations

import sys

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """``predict``, ``transform`` or ``score`` was called before ``fit``."""


_SKLEARN_NOT_FITTED = []  # the class made by _not_fitted_class, once


def _not_fitted_class():
    """fastkm's NotFittedError, or, when scikit-learn is loaded, a subclass of it and of
    ``sklearn.exceptions.NotFittedError``, so that either ``except`` clause catches it.

    Code that names scikit-learn's class has imported scikit-learn, so it is enough to look
    in ``sys.modules``: fastkm never imports scikit-learn itself to raise an error.
    """
    if sys.modules.get("sklearn") is None:
        return NotFittedError
    if not _SKLEARN_NOT_FITTED:
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError

        class SklearnCompatibleNotFittedError(NotFittedError, SklearnNotFittedError):
            """fastkm's NotFittedError, also scikit-learn's."""

        SklearnCompatibleNotFittedError.__module__ = __name__
        globals()["SklearnCompatibleNotFittedError"] = SklearnCompatibleNotFittedError
        _SKLEARN_NOT_FITTED.append(SklearnCompatibleNotFittedError)
    return _SKLEARN_NOT_FITTED[0]


def not_fitted(estimator):
    """The error to raise when ``estimator`` is used before ``fit``."""
    return _not_fitted_class()(
        f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
        "appropriate arguments before using this estimator.")


def is_sparse(X):
    """True for scipy.sparse matrices and arrays, without importing scipy."""
    return hasattr(X, "tocsr") and type(X).__module__.startswith("scipy.sparse")


def _check_shape(shape, name):
    if shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 "
                         f"is required ({name} is empty).")
    if shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 "
                         f"is required ({name} is empty).")


def check_dense(X, name="X"):
    """``X`` as a C-contiguous 2-D float32/float64 array of finite numbers.

    Integers and booleans become float64; an object array of numbers converts as
    scikit-learn converts it (to float64); complex data, strings, 1-D and empty arrays are
    errors.
    """
    arr = np.asarray(X)
    if arr.dtype.kind == "O" and hasattr(X, "columns") and hasattr(X, "to_numpy"):
        # pandas' nullable columns hold pd.NA, which float() refuses: NaN, refused below.
        try:
            arr = X.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported ({name} has dtype {arr.dtype})")
    if arr.dtype.kind == "O":
        # As scikit-learn: a value float() refuses by its type (a dict) is a TypeError, a
        # string that is not a number a ValueError.
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:
            raise TypeError(f"{name} must be numeric: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1:
        raise ValueError(f"Expected 2D array, got 1D array instead: {name} has shape "
                         f"{arr.shape}. Reshape your data either using array.reshape(-1, 1) "
                         "if your data has a single feature or array.reshape(1, -1) if it "
                         "contains a single sample.")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape "
                         f"{arr.shape}")
    _check_shape(arr.shape, name)
    dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def check_sparse(X, name="X"):
    """A scipy sparse ``X`` as a CSR matrix in canonical form (sorted indices, no
    duplicates) with float32/float64 values, int32 column indices and finite values.

    The indices are checked here because the kernels index with them unchecked.
    """
    import scipy.sparse as sp

    if len(X.shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    _check_shape(X.shape, name)
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported ({name} has dtype {X.dtype})")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    csr = sp.csr_matrix(X)  # a copy only if X is not already a CSR matrix
    dtype = csr.dtype if csr.dtype in (np.float32, np.float64) else np.float64
    n, d = csr.shape
    indptr = np.asarray(csr.indptr, dtype=np.int64)
    indices = np.asarray(csr.indices)
    if indptr[0] != 0 or indptr[-1] != len(indices) or (np.diff(indptr) < 0).any():
        raise ValueError(f"{name} is not a valid CSR matrix: bad indptr")
    if len(indices) and (indices.min() < 0 or indices.max() >= d):
        raise ValueError(f"{name} is not a valid CSR matrix: column index out of range")
    if len(indices) > np.iinfo(np.int32).max:
        raise ValueError(f"{name} has more than 2**31 - 1 stored values")
    csr = sp.csr_matrix((np.asarray(csr.data, dtype=dtype), indices.astype(np.int32),
                         indptr), shape=(n, d))
    if not csr.has_canonical_format:
        # sum_duplicates sorts in place: on copies, never on the caller's arrays.
        csr = csr.copy()
        csr.sum_duplicates()
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return csr


def check_data(X, name="X", *, accept_sparse=True):
    """Dense (``check_dense``) or, if ``accept_sparse``, sparse (``check_sparse``) data."""
    if is_sparse(X):
        if not accept_sparse:
            raise ValueError(f"{name} must be a dense array, got a sparse matrix")
        return check_sparse(X, name)
    return check_dense(X, name)


def feature_names(X):
    """The column names of a DataFrame-like ``X`` if they are all strings, else None;
    strings mixed with other names are refused (scikit-learn's rules). pandas is not
    imported."""
    columns = getattr(X, "columns", None)
    if columns is None or is_sparse(X):
        return None
    names = np.asarray(list(columns), dtype=object)
    types = sorted({type(c).__name__ for c in names})
    if len(types) > 1 and "str" in types:
        raise TypeError("Feature names are only supported if all input features have string "
                        f"names, but your input has {types} as feature name / column name "
                        "types. If you want feature names to be stored and validated, you "
                        "must convert them all to strings, by using X.columns = "
                        "X.columns.astype(str) for example. Otherwise you can remove feature "
                        "/ column names from your input data, or convert them all to a "
                        "non-string data type.")
    if len(names) and types == ["str"]:
        return names
    return None


def check_feature_names(estimator, X):
    """scikit-learn's check of ``X``'s column names against those seen by ``fit``: a
    mismatch is an error (columns in another order give silently wrong results), names on
    one side only a warning."""
    import warnings

    fitted = getattr(estimator, "feature_names_in_", None)
    names = feature_names(X)
    kind = type(estimator).__name__
    if fitted is None and names is None:
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {kind} was fitted with "
                      "feature names", UserWarning, stacklevel=3)
        return
    if fitted is None:
        warnings.warn(f"X has feature names, but {kind} was fitted without feature names",
                      UserWarning, stacklevel=3)
        return
    if len(fitted) == len(names) and (fitted == names).all():
        return
    message = "The feature names should match those that were passed during fit.\n"
    known, given = set(fitted), set(names)
    unseen = [n for n in names if n not in known]
    missing = [n for n in fitted if n not in given]
    for title, group in (("Feature names unseen at fit time:", unseen),
                         ("Feature names seen at fit time, yet now missing:", missing)):
        if group:
            message += title + "\n" + "".join(f"- {n}\n" for n in group)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
