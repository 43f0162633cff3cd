"""scikit-learn's estimator protocol for lstmkit's estimators, without scikit-learn.

``get_params()`` returns the constructor's keywords exactly as they were given (the
defaults of the signatures for the others), ``set_params(**p)`` runs the constructor again
with them (so every value is checked as in ``Class(**p)``), and ``__sklearn_tags__`` says
what kind of estimator it is. With these, ``sklearn.base.clone``, ``cross_val_score``,
``GridSearchCV`` and ``Pipeline`` work on :class:`SequenceClassifier` and
:class:`SequenceRegressor` (tested with scikit-learn itself); the keyword list is written
once, in each constructor's signature.
"""

import inspect

from lstmkit.tasks.persist import keyword_params, restore, save_estimator

RUN_OPTIONS = ("progress", "checkpoint", "resume")  # how a fit runs, not what it fits


def constructor_params(init, values: dict, **resolved) -> dict:
    """An estimator's ``params``: the keyword-only arguments of its constructor ``init``
    (their signature's order, less :data:`RUN_OPTIONS`) read from ``values`` (the
    constructor's ``locals()``), with ``resolved`` in place of those it checked or
    resolved — so the keyword list is written once, in the signature."""
    names = [
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in RUN_OPTIONS
    ]
    unknown = sorted(set(resolved) - set(names))
    if unknown:  # a programming error: a resolved value for no keyword
        raise TypeError(f"constructor_params: {', '.join(unknown)} is not a keyword of {init}")
    return {name: resolved.get(name, values[name]) for name in names}


class Estimator:
    """The protocol's half every estimator shares, and saving; ``_estimator_type`` names its
    kind ("classifier", "regressor", or None), ``_kind`` its class in saved files and
    messages, ``_fit_call`` the call that fits it."""

    _estimator_type: str | None = None
    _kind = ""
    _fit_call = "fit(X, y)"

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._given = dict(kwargs)  # the constructor's keywords (they are keyword-only)
        return self

    @classmethod
    def _defaults(cls) -> dict:
        """Every constructor keyword of the class and its bases, with its default."""
        return {name: p.default for name, p in sorted(keyword_params(cls).items())}

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's keywords: as given, else their defaults (``deep`` is
        scikit-learn's; no parameter is itself an estimator)."""
        return {name: self._given.get(name, d) for name, d in self._defaults().items()}

    def set_params(self, **params):
        """Construct again with ``params`` over the current keywords; a fitted model must be
        fitted again. An unknown name is a ValueError, as in scikit-learn."""
        unknown = sorted(set(params) - set(self._defaults()))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.set_params: unknown parameter {unknown[0]!r}; expected "
                f"one of {', '.join(self._defaults())}"
            )
        given = {**self._given, **params}
        self.__init__(**given)
        self._given = given
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted (or loaded): the network exists (scikit-learn's check_is_fitted asks)."""
        return getattr(self, "net_", None) is not None

    def _check_fitted(self) -> None:
        if self.net_ is None:
            raise ValueError(f"this {self._kind} is not fitted yet: call {self._fit_call} first")

    def save(self, path):
        """Write safetensors weights + JSON config; ``Class.load(path)`` reads them back."""
        self._check_fitted()
        params, fitted, state = self._saved()
        return save_estimator(path, self._kind, {"params": params, "fitted": fitted}, state)

    def _saved(self) -> tuple[dict, dict, dict]:
        """What :meth:`save` writes: the params, the fitted attributes and the weights."""
        return self.params, self._fitted, self.net_.state_dict()

    @classmethod
    def load(cls, path):
        return restore(cls, path, cls._restore)

    def describe(self) -> dict:
        """What a report shows of the model: its resolved options (``params``) and, once
        fitted, its number of trainable parameters."""
        described = dict(self.params)
        net = getattr(self, "net_", None)
        if net is not None:
            described["trainable parameters"] = sum(t.numel() for t in net.parameters())
        return described

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        kind = self._estimator_type
        return Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=kind is not None),
            classifier_tags=ClassifierTags() if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(two_d_array=False, three_d_array=True),
            non_deterministic=False,
        )
