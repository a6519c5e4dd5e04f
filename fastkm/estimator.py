"""scikit-learn's estimator protocol without scikit-learn.

``EstimatorProtocol`` gives an estimator what ``sklearn.base.BaseEstimator``,
``TransformerMixin`` and ``ClusterMixin`` would: ``get_params`` / ``set_params`` read from
the ``__init__`` signature, a repr showing the parameters that differ from their defaults,
``__sklearn_tags__``, ``set_output`` and ``get_feature_names_out``. scikit-learn is imported
only inside the methods that only scikit-learn calls (``__sklearn_tags__``) or when it is
already loaded (the global ``transform_output`` setting, and the NotFittedError that its
``except`` clause must catch, see ``fastkm.validation``). pandas and polars are imported only
when ``set_output`` asked for them.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np

from .validation import not_fitted


class EstimatorProtocol:
    """Mixin: the estimator protocol of scikit-learn, for an estimator whose ``__init__``
    takes only keyword-able parameters stored under their own names."""

    @classmethod
    def _param_names(cls):
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params
                      if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep=True):
        """The constructor's parameters, by name (``deep`` is accepted for scikit-learn;
        no parameter is an estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters by name; an unknown name is a ValueError."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. "
                                 f"Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default
                    for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
                same = False
            else:
                same = value is default or (type(value) is type(default) and value == default)
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self):
        # Called only by scikit-learn, so it is importable here.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type="clusterer", target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=["float64"]),
                    input_tags=InputTags(sparse=True))

    def __sklearn_is_fitted__(self):
        return hasattr(self, "cluster_centers_")

    def _check_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise not_fitted(self)

    def get_feature_names_out(self, input_features=None):
        """Names of the transform's columns: the class name in lower case followed by the
        column number ("kmeans0", "kmeans1", ...), as scikit-learn names them."""
        self._check_fitted()
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            known = getattr(self, "feature_names_in_", None)
            if known is not None and not np.array_equal(input_features, known):
                raise ValueError("input_features is not equal to feature_names_in_")
            if len(input_features) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of "
                                 f"features ({self.n_features_in_}), got "
                                 f"{len(input_features)}")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object)

    def set_output(self, *, transform=None):
        """Output container of ``transform`` and ``fit_transform``: "default" (NumPy),
        "pandas" or "polars"; None leaves it unchanged."""
        if transform is None:
            return self
        if transform not in ("default", "pandas", "polars"):
            raise ValueError(f"set_output: transform must be 'default', 'pandas', 'polars' or "
                             f"None, got {transform!r}")
        self._sklearn_output_config = {"transform": transform}
        return self

    def _wrap_output(self, out, X):
        """``out`` in the container ``set_output`` (or scikit-learn's global
        ``transform_output``, when scikit-learn is loaded) asks for."""
        config = getattr(self, "_sklearn_output_config", {}).get("transform")
        if config is None and sys.modules.get("sklearn") is not None:
            import sklearn

            config = sklearn.get_config().get("transform_output", "default")
        if config in (None, "default"):
            return out
        columns = self.get_feature_names_out()
        if config == "pandas":
            import pandas as pd

            index = getattr(X, "index", None) if hasattr(X, "columns") else None
            return pd.DataFrame(out, columns=columns, index=index, copy=False)
        import polars as pl

        return pl.DataFrame(out, schema=list(columns), orient="row")
