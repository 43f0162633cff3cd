"""scikit-learn's estimator protocol, checked with scikit-learn itself: clone, get/set_params,
cross_val_score and GridSearchCV against the same folds done by hand, and Pipeline."""

import inspect

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from lstmkit.data import load_dataset
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)

ESTIMATORS = (Forecaster, SequenceClassifier, SequenceRegressor, SequenceTagger, TextGenerator)
SMALL = {"hidden_size": 6, "epochs": 3, "conv_filters": (), "progress": False}


def keywords(cls) -> dict:
    """Every keyword-only constructor argument of ``cls`` and its bases, with its default."""
    found = {}
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__ and klass is not object:
            for p in inspect.signature(klass.__dict__["__init__"]).parameters.values():
                if p.kind is p.KEYWORD_ONLY:
                    found.setdefault(p.name, p.default)
    return found


@pytest.fixture(scope="module")
def italy():
    data = load_dataset("italy_power_demand")
    return np.asarray(data.X_train), np.asarray(data.y_train)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_get_params_are_the_constructor_keywords_as_given(cls):
    assert cls().get_params() == keywords(cls)
    options = {"seed": 7, "cell": "gru"}
    model = cls(**options)
    assert model.get_params() == keywords(cls) | options
    twin = clone(model)  # scikit-learn checks each parameter is passed through unchanged
    assert type(twin) is cls and twin.get_params() == model.get_params() and twin is not model


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_set_params_constructs_again(cls):
    model = cls()
    assert model.set_params(seed=3, cell="gru") is model
    assert model.get_params()["seed"] == 3 and model.params["cell"] == "gru"
    with pytest.raises(ValueError, match="unknown parameter 'sede'"):
        model.set_params(sede=3)
    with pytest.raises(ValueError, match="cell"):  # checked as the constructor checks it
        model.set_params(cell="rnn")


def test_kinds_are_what_scikit_learn_asks():
    assert is_classifier(SequenceClassifier()) and not is_regressor(SequenceClassifier())
    assert is_regressor(SequenceRegressor()) and not is_classifier(SequenceRegressor())
    assert not is_classifier(Forecaster()) and not is_regressor(Forecaster())


def test_cross_val_score_is_the_same_folds_by_hand(italy):
    X, y = italy
    model = SequenceClassifier(**SMALL)
    scores = cross_val_score(model, X, y, cv=3)
    by_hand = [
        accuracy_score(
            y[test], SequenceClassifier(**SMALL).fit(X[train], y[train]).predict(X[test])
        )
        for train, test in StratifiedKFold(3).split(X, y)
    ]
    np.testing.assert_allclose(scores, by_hand)
    assert model.net_ is None  # cross_val_score fits clones, never the estimator given


def test_grid_search_picks_the_best_mean_fold_score(italy):
    X, y = italy
    search = GridSearchCV(SequenceClassifier(**SMALL), {"hidden_size": [2, 6]}, cv=2).fit(X, y)
    means = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"hidden_size": [2, 6][int(np.argmax(means))]}
    assert search.best_score_ == pytest.approx(means.max())
    assert search.best_estimator_.params["hidden_size"] == search.best_params_["hidden_size"]
    assert search.score(X, y) == pytest.approx(accuracy_score(y, search.predict(X)))


def test_pipeline_and_regressor_score_is_r2(italy):
    X, _ = italy
    y = X[:, :12, 0].mean(axis=1)  # the mean of the first half day: a regression target
    pipe = Pipeline(
        [("double", FunctionTransformer(lambda v: 2 * v)), ("reg", SequenceRegressor(**SMALL))]
    )
    scores = cross_val_score(pipe, X, y, cv=2)
    by_hand = [
        r2_score(
            y[test], SequenceRegressor(**SMALL).fit(2 * X[train], y[train]).predict(2 * X[test])
        )
        for train, test in KFold(2).split(X)
    ]
    np.testing.assert_allclose(scores, by_hand, rtol=1e-9)


def test_describe_is_the_options_and_the_parameter_count(italy):
    X, y = italy
    model = SequenceClassifier(**SMALL)
    assert model.describe() == model.params  # nothing fitted: no parameter count yet
    model.fit(X[:20], y[:20])
    count = sum(t.numel() for t in model.net_.parameters())
    assert model.describe() == {**model.params, "trainable parameters": count}


def test_check_is_fitted_knows_a_fitted_and_a_loaded_model(italy, tmp_path):
    X, _ = italy
    model = SequenceRegressor(**SMALL)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    model.fit(X[:20], X[:20, :12, 0].mean(axis=1))
    check_is_fitted(model)
    model.save(tmp_path / "m")
    check_is_fitted(SequenceRegressor.load(tmp_path / "m"))
