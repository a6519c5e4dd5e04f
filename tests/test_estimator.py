"""fastkm.KMeans in a scikit-learn user's code, unchanged, and scikit-learn's own checks.

Every test needs scikit-learn and skips without it; tests/test_kmeans.py covers the
protocol without it.
"""

import pickle

import numpy as np
import pytest

import fastkm

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks

# scikit-learn's own KMeans fails these two (sklearn/utils/_test_common/
# instance_generator.py lists them as expected failures of KMeans): with few points a
# k-means++ draw differs between weighted and repeated data, so do the clusters.
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data":
        "as scikit-learn's KMeans: sample_weight is not equivalent to removing/repeating "
        "samples (the random seeding draws differently)",
    "check_sample_weight_equivalence_on_sparse_data":
        "as scikit-learn's KMeans: sample_weight is not equivalent to removing/repeating "
        "samples (the random seeding draws differently)",
}


@parametrize_with_checks([fastkm.KMeans(n_clusters=2, n_init=2, max_iter=5)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def blobs(n=300, d=3, k=4, seed=0):
    from sklearn.datasets import make_blobs

    return make_blobs(n, n_features=d, centers=k, random_state=seed)


def test_clone_keeps_params_not_fit():
    from sklearn.base import clone

    X, _ = blobs()
    km = fastkm.KMeans(5, random_state=0, algorithm="elkan").fit(X)
    copy = clone(km)
    assert copy.get_params() == km.get_params()
    assert not hasattr(copy, "cluster_centers_")
    assert repr(copy) == "KMeans(algorithm='elkan', n_clusters=5, random_state=0)"


def test_not_fitted_error_is_sklearns():
    from sklearn.exceptions import NotFittedError

    from fastkm.kmeans import NotFittedError as OwnNotFittedError

    for method in ("predict", "transform", "score", "get_feature_names_out"):
        with pytest.raises(NotFittedError) as info:
            getattr(fastkm.KMeans(), method)(np.zeros((3, 2)))
        assert isinstance(info.value, OwnNotFittedError)
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(NotFittedError):
        check_is_fitted(fastkm.KMeans())


def test_pipeline_with_standard_scaler():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = blobs()
    X = X * [1, 100, 0.01]
    start = np.random.default_rng(0).normal(size=(4, 3))
    pipe = make_pipeline(StandardScaler(), fastkm.KMeans(4, init=start)).fit(X)
    Z = StandardScaler().fit_transform(X)
    km = fastkm.KMeans(4, init=start).fit(Z)
    np.testing.assert_array_equal(pipe.predict(X), km.labels_)
    np.testing.assert_allclose(pipe.transform(X), km.transform(Z), rtol=1e-12)
    np.testing.assert_allclose(pipe.fit_transform(X), km.transform(Z), rtol=1e-12)
    assert pipe.score(X) == pytest.approx(-km.inertia_, rel=1e-12)
    out = pipe.set_output(transform="pandas").fit(X).transform(X)
    assert list(out.columns) == ["kmeans0", "kmeans1", "kmeans2", "kmeans3"]


def test_grid_search_over_n_clusters_and_cross_val_score():
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, _ = blobs(400, 2, 4, seed=1)
    search = GridSearchCV(fastkm.KMeans(random_state=0), {"n_clusters": [2, 4, 8]}, cv=3)
    search.fit(X)
    # score is minus the inertia, which falls as K grows: the largest K wins.
    assert search.best_params_ == {"n_clusters": 8}
    assert search.best_estimator_.n_clusters == 8
    scores = cross_val_score(fastkm.KMeans(4, random_state=0), X, cv=4)
    assert scores.shape == (4,) and (scores < 0).all()


def test_pickle_of_a_fitted_estimator_in_a_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = blobs()
    pipe = make_pipeline(StandardScaler(), fastkm.KMeans(3, random_state=0)).fit(X)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.predict(X), pipe.predict(X))


def test_pandas_dataframe_gives_feature_names_in_and_set_output():
    pd = pytest.importorskip("pandas")
    X, _ = blobs()
    df = pd.DataFrame(X, columns=["x", "y", "z"], index=np.arange(len(X)) + 10)
    km = fastkm.KMeans(3, random_state=0).set_output(transform="pandas").fit(df)
    np.testing.assert_array_equal(km.feature_names_in_, ["x", "y", "z"])
    out = km.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["kmeans0", "kmeans1", "kmeans2"]
    assert list(out.index) == list(df.index)
    np.testing.assert_allclose(out.to_numpy(), km.set_output(transform="default").transform(df))
    with pytest.raises(ValueError, match="transform must be 'default', 'pandas', 'polars'"):
        km.set_output(transform="arrow")


def test_feature_names_are_checked_as_sklearn():
    """Columns in another order gave silently wrong labels; now scikit-learn's errors and
    warnings, word for word."""
    pd = pytest.importorskip("pandas")
    X, _ = blobs()
    df = pd.DataFrame(X * [1, 10, 100], columns=["a", "b", "c"])
    km = fastkm.KMeans(3, random_state=0).fit(df)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        km.predict(df[["c", "b", "a"]])
    with pytest.raises(ValueError, match="(?s)unseen at fit time:\n- q.*now missing:\n- a"):
        km.transform(df.rename(columns={"a": "q"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but KMeans "
                                         "was fitted with feature names"):
        km.score(df.to_numpy())
    plain = fastkm.KMeans(3, random_state=0).fit(df.to_numpy())
    with pytest.warns(UserWarning, match="X has feature names, but KMeans was fitted "
                                         "without feature names"):
        plain.predict(df)
    with pytest.raises(TypeError, match=r"\['int', 'str'\] as feature name"):
        fastkm.KMeans(3).fit(pd.DataFrame(X, columns=["a", 1, "c"]))


def test_pandas_missing_values_are_named():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": pd.array([1.0, None, 3.0, 4.0], dtype="Float64"),
                       "b": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fastkm.KMeans(2).fit(df)
    df["a"] = df["a"].fillna(2.0)
    assert fastkm.KMeans(2, random_state=0).fit(df).cluster_centers_.dtype == np.float64


def test_defaults_are_sklearns():
    from sklearn.cluster import KMeans

    ours, theirs = fastkm.KMeans().get_params(), KMeans().get_params()
    # fastkm's default algorithm is "auto" (Hamerly's bounds): the same labels as "lloyd".
    assert ours.pop("algorithm") == "auto"
    assert theirs.pop("algorithm") == "lloyd"
    assert ours == theirs
