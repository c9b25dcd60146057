"""Uplift of an intervention on churn, learned from the randomised control group, and the Qini
evaluation that decides whether to target by it.

The rule engine holds out a random ~10 % of its would-be contacts (the control group: recorded,
never contacted). Per intervention type, :class:`TLearnerUplift` learns from those executions
how much a contact changes a supplier's churn within 30 days, so the worklist can rank by
expected saved LTV (uplift x LTV) instead of by risk alone; :func:`beats_random` says whether
that ranking is better than targeting at random, on held-out data.

Conventions, throughout:

* ``treatment`` is 1 for a contacted supplier, 0 for one held out (control).
* ``y`` is 1 when the supplier churned within 30 days of the execution.
* Uplift is **churn prevented**: ``P(churn | control) - P(churn | contacted)``. Positive means
  the contact lowers churn; negative means it raises churn (a "sleeping dog").

Evaluation must be on held-out, later data: the caller splits by time, fits on the earlier
executions and calls :func:`qini_curve`, :func:`qini_coefficient`, :func:`uplift_at_k` and
:func:`beats_random` on the later ones. On the training rows the curves only measure how well
the trees memorised the noise.

Pure functions and an estimator; the only IO is :func:`save` and :func:`load` of a model folder
(XGBoost JSON and a JSON of metadata, never pickles).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

CONTROL_FILE: Final = "control.json"
TREATED_FILE: Final = "treated.json"
META_FILE: Final = "uplift.json"
FORMAT: Final = "wedsync-t-learner-uplift/1"
# One bootstrap draw: the row indices of a resample.
Draw = Callable[[np.random.Generator], np.ndarray]


# -- the model ---------------------------------------------------------------------------------
class TLearnerUplift(BaseEstimator):
    """Two XGBoost churn classifiers, one fitted on the contacted executions and one on the
    control group; the uplift of a supplier is the difference of their churn probabilities.

    The T-learner is the simplest uplift model that uses the randomisation directly: each arm's
    model is an ordinary churn model, and since the arms are random halves (or 90/10 splits) of
    the same population, their difference estimates the contact's effect. Its weakness is that
    the two models' errors do not cancel, so small effects drown in noise; hence the Qini check
    before anyone ranks by it.

    ``X`` is a DataFrame of numeric (or boolean) columns; categorical columns must be encoded by
    the caller (codes or one-hot), and missing values may be NaN (XGBoost routes them). The
    column names are kept, and a frame to predict on must have the same columns (any order).

    Args:
        n_estimators: trees per arm.
        max_depth: depth of each tree; shallow trees, since the effect is a small difference.
        learning_rate: XGBoost's shrinkage.
        min_child_weight: the least hessian (roughly p(1-p) x rows) in a leaf.
        subsample: share of rows each tree samples.
        min_rows_per_arm: fewer contacted or control rows than this is refused.
        n_jobs: XGBoost threads.
        random_state: XGBoost's seed.
        intervention_type: the intervention the model is about, kept in the saved metadata.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        min_child_weight: float = 1.0,
        subsample: float = 1.0,
        min_rows_per_arm: int = 100,
        n_jobs: int = 2,
        random_state: int = 0,
        intervention_type: str | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.min_rows_per_arm = min_rows_per_arm
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.intervention_type = intervention_type

    def _classifier(self) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            objective="binary:logistic",
            eval_metric="logloss",
            tree_method="hist",
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        treatment: np.ndarray,
        *,
        training_window: tuple[str, str] | None = None,
    ) -> TLearnerUplift:
        """Fit one classifier per arm.

        Args:
            X: features, shape (n, columns), numeric columns only.
            y: churn within 30 days, 0/1, shape (n,).
            treatment: 1 contacted, 0 control, shape (n,).
            training_window: the first and last day of the executions learned from (ISO
                strings), kept in the saved metadata.

        Raises:
            ValueError: X is not a numeric frame, the arrays disagree in length or are not
                0/1, or an arm has fewer than ``min_rows_per_arm`` rows or only one outcome.
        """
        _check_frame(X)
        y = _binary(y, "y", len(X))
        treatment = _binary(treatment, "treatment", len(X))
        treated = treatment == 1
        for arm, rows in (("contacted", treated), ("control", ~treated)):
            count = int(rows.sum())
            if count < self.min_rows_per_arm:
                raise ValueError(
                    f"the {arm} arm has {count} rows; at least {self.min_rows_per_arm} are "
                    "needed to fit its churn model"
                )
            churned = int(y[rows].sum())
            if churned in (0, count):
                raise ValueError(
                    f"the {arm} arm has a single outcome ({churned} of {count} rows churned); "
                    "its churn model needs both"
                )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.treated_model_ = self._classifier().fit(X[treated], y[treated])
        self.control_model_ = self._classifier().fit(X[~treated], y[~treated])
        self.n_treated_, self.n_control_ = int(treated.sum()), int((~treated).sum())
        self.training_window_ = None if training_window is None else tuple(training_window)
        return self

    def predict_proba_pair(self, X: pd.DataFrame) -> np.ndarray:
        """Churn probabilities, shape (n, 2): column 0 if held out (control), column 1 if
        contacted.

        Raises:
            ValueError: ``X``'s columns differ from the fitted ones (the missing and the extra
                columns are named).
        """
        check_is_fitted(self, "treated_model_")
        X = self._aligned(X)
        return np.column_stack(
            [
                self.control_model_.predict_proba(X)[:, 1],
                self.treated_model_.predict_proba(X)[:, 1],
            ]
        )

    def predict_uplift(self, X: pd.DataFrame) -> np.ndarray:
        """Churn prevented by a contact, ``P(churn | control) - P(churn | contacted)``, shape
        (n,); positive means the contact lowers churn."""
        pair = self.predict_proba_pair(X)
        return pair[:, 0] - pair[:, 1]

    def _aligned(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the fitted columns in the fitted order."""
        if not isinstance(X, pd.DataFrame):
            raise ValueError("X must be a DataFrame with the fitted columns")
        expected = list(self.feature_names_in_)
        missing = [c for c in expected if c not in X.columns]
        extra = [c for c in X.columns if c not in expected]
        if missing or extra:
            raise ValueError(
                f"X's columns differ from the fitted ones: missing {missing}, unexpected {extra}"
            )
        return X[expected]


def _check_frame(X: pd.DataFrame) -> None:
    if not isinstance(X, pd.DataFrame):
        raise ValueError("X must be a DataFrame (its column names are kept)")
    if X.columns.duplicated().any():
        raise ValueError(f"X has duplicated columns {list(X.columns[X.columns.duplicated()])}")
    not_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if not_numeric:
        raise ValueError(
            f"X's columns {not_numeric} are not numeric; encode categorical columns first"
        )


def _binary(values: Any, name: str, length: int) -> np.ndarray:
    """A 0/1 integer array of shape (length,)."""
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != length:
        raise ValueError(f"{name} must be 1-d of length {length}; it has shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.int64)
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return array.astype(np.int64)


# -- the model's files -------------------------------------------------------------------------
def save(model: TLearnerUplift, folder: Path) -> Path:
    """Write a fitted model to ``folder``: each arm's booster as XGBoost JSON
    (``control.json``, ``treated.json``) and ``uplift.json`` (feature names, parameters,
    intervention type, training window, rows per arm). Returns the folder."""
    check_is_fitted(model, "treated_model_")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.control_model_.save_model(folder / CONTROL_FILE)
    model.treated_model_.save_model(folder / TREATED_FILE)
    window = model.training_window_
    meta = {
        "format": FORMAT,
        "feature_names": [str(c) for c in model.feature_names_in_],
        "params": model.get_params(),
        "intervention_type": model.intervention_type,
        "training_window": None if window is None else list(window),
        "rows": {"treated": model.n_treated_, "control": model.n_control_},
        "xgboost_version": xgb.__version__,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    return folder


def load(folder: Path) -> TLearnerUplift:
    """A model written by :func:`save`; it predicts exactly what the saved one did.

    Raises:
        ValueError: the folder holds no model of this format.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the uplift model in {folder}: {error}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder / META_FILE} is not a {FORMAT} model: {meta.get('format')}")
    model = TLearnerUplift(**meta["params"])
    boosters = []
    for name in (CONTROL_FILE, TREATED_FILE):
        booster = xgb.XGBClassifier()
        booster.load_model(folder / name)
        booster.set_params(n_jobs=model.n_jobs)
        boosters.append(booster)
    model.control_model_, model.treated_model_ = boosters
    model.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
    model.n_features_in_ = len(meta["feature_names"])
    model.n_treated_, model.n_control_ = meta["rows"]["treated"], meta["rows"]["control"]
    window = meta["training_window"]
    model.training_window_ = None if window is None else tuple(window)
    return model


# -- evaluation --------------------------------------------------------------------------------
def qini_curve(uplift: np.ndarray, y: np.ndarray, treatment: np.ndarray) -> pd.DataFrame:
    """The Qini curve of targeting suppliers in decreasing predicted uplift.

    For the top ``k`` suppliers, with ``N_T(k)``, ``N_C(k)`` contacted and control suppliers
    among them and ``R_T(k)``, ``R_C(k)`` churners among those,

        ``Q(k) = R_C(k) * N_T(k) / N_C(k) - R_T(k)``

    the churns the contacts prevented: the churners the contacted would have had at the control
    group's churn rate, minus those they had. Positive is good (fewer churns), the sign
    convention of the uplift itself. Until the first control supplier is reached the control
    rate is unknown and ``Q`` is 0. Suppliers with equal uplift are taken together (the curve
    has one point per distinct value, so the order of ties does not matter).

    Args:
        uplift: predicted churn prevented, shape (n,).
        y: churn within 30 days, 0/1, shape (n,).
        treatment: 1 contacted, 0 control, shape (n,).

    Returns:
        One row per point, the first being nothing targeted: ``targeted`` (k), ``fraction``
        (k / n), ``treated`` and ``control`` (N_T(k), N_C(k)), ``treated_churns`` and
        ``control_churns`` (R_T(k), R_C(k)), ``prevented`` (Q(k)) and ``random`` (the straight
        line of random targeting, ``Q(n) * k / n``).
    """
    u, y, t = _sorted(*_evaluation_inputs(uplift, y, treatment))
    return _curve(u, y, t)


def qini_coefficient(uplift: np.ndarray, y: np.ndarray, treatment: np.ndarray) -> float:
    """The area between the Qini curve and the random-targeting line.

    Normalisation: the x axis is the fraction of suppliers targeted (0 to 1) and the y axis is
    ``Q(k) / N_T(n)``, the churns prevented per contacted supplier of the whole sample, whose
    value at full targeting is the average effect (control churn rate - contacted churn rate).
    The coefficient is therefore in churn-rate units and does not depend on the sample size or
    on the share held out: an effect of 0.10 on the best half of the suppliers and none on the
    rest, ranked perfectly, gives 0.0125. Zero is random targeting; negative is worse than
    random. Areas are trapezoids between the curve's points.
    """
    u, y, t = _sorted(*_evaluation_inputs(uplift, y, treatment))
    return _coefficient(u, y, t)


def uplift_at_k(uplift: np.ndarray, y: np.ndarray, treatment: np.ndarray, k: float) -> float:
    """The observed churn prevented within the top ``k`` fraction by predicted uplift: the
    control group's churn rate minus the contacted suppliers' churn rate among the first
    ``ceil(k * n)`` suppliers (ties at the cut are taken in input order).

    Raises:
        ValueError: ``k`` is not in (0, 1], or the top rows lack an arm.
    """
    if not 0 < k <= 1:
        raise ValueError(f"k must be a fraction in (0, 1]; it is {k}")
    u, y, t = _sorted(*_evaluation_inputs(uplift, y, treatment))
    top = int(np.ceil(k * len(u)))
    y, t = y[:top], t[:top]
    if t.all() or not t.any():
        raise ValueError(f"the top {top} suppliers hold only one arm; no difference to measure")
    return float(y[t == 0].mean() - y[t == 1].mean())


@dataclass(frozen=True)
class QiniTest:
    """Whether an uplift ranking beats random targeting on held-out data.

    Attributes:
        qini: :func:`qini_coefficient` of the sample.
        ci_low, ci_high: the bootstrap percentile interval of the coefficient.
        level: the interval's coverage (0.95).
        n_boot: bootstrap draws.
        beats: the interval's lower bound is above 0.
        reason: one sentence for the report.
    """

    qini: float
    ci_low: float
    ci_high: float
    level: float
    n_boot: int
    beats: bool
    reason: str

    def metrics(self) -> dict[str, float]:
        """The figures to log (MLflow metrics are numbers)."""
        return {
            "qini": self.qini,
            "qini_ci_low": self.ci_low,
            "qini_ci_high": self.ci_high,
            "qini_beats_random": float(self.beats),
        }


def beats_random(
    uplift: np.ndarray,
    y: np.ndarray,
    treatment: np.ndarray,
    *,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    groups: np.ndarray | None = None,
) -> QiniTest:
    """The Qini coefficient with a bootstrap percentile interval; the ranking beats random
    targeting when the whole interval is above 0.

    The bootstrap redraws rows within each arm (the arms' sizes were fixed by the
    randomisation), or, given ``groups`` (e.g. supplier ids, when a supplier has several
    executions whose futures overlap), redraws whole groups. The model is not refitted, so the
    interval is the evaluation sample's noise for this model, not the noise of training.

    Args:
        uplift: predicted churn prevented on held-out (later) executions, shape (n,).
        y: churn within 30 days, 0/1, shape (n,).
        treatment: 1 contacted, 0 control, shape (n,).
        n_boot: bootstrap draws.
        seed: the bootstrap's seed.
        level: the interval's coverage.
        groups: optional cluster labels, shape (n,).
    """
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError("n_boot must be positive and level in (0, 1)")
    uplift, y, t = _evaluation_inputs(uplift, y, treatment)
    order = np.argsort(-uplift, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    qini = _coefficient(uplift[order], y[order], t[order])
    draw = _cluster_draws(groups, len(y)) if groups is not None else _arm_draws(t)
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        rows = draw(rng)
        rows = rows[np.argsort(rank[rows], kind="stable")]
        # a draw of whole groups can miss an arm (only with very few groups): it is left out
        boot[b] = (
            _coefficient(*(a[rows] for a in (uplift, y, t))) if _both_arms(t[rows]) else np.nan
        )
    tail = (1 - level) / 2
    low, high = (float(v) for v in np.nanquantile(boot, [tail, 1 - tail]))
    beats = low > 0
    interval = f"Qini {qini:.3f} ({level:.0%} CI {low:.3f} to {high:.3f})"
    reason = (
        f"{interval} above random targeting"
        if beats
        else f"{interval} not better than random: ranking by risk"
    )
    return QiniTest(qini, low, high, level, n_boot, beats, reason)


def _evaluation_inputs(
    uplift: np.ndarray, y: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.asarray(uplift, dtype=float)
    if u.ndim != 1 or not len(u) or not np.isfinite(u).all():
        raise ValueError("uplift must be a non-empty 1-d array of finite numbers")
    y, t = _binary(y, "y", len(u)), _binary(treatment, "treatment", len(u))
    if not _both_arms(t):
        raise ValueError("the evaluation needs contacted and control rows")
    return u, y, t


def _both_arms(t: np.ndarray) -> bool:
    return bool(t.any() and not t.all())


def _sorted(
    u: np.ndarray, y: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-u, kind="stable")
    return u[order], y[order], t[order]


def _curve(u: np.ndarray, y: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    """:func:`qini_curve` of rows already in decreasing uplift."""
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    r_t, r_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    ends = np.r_[np.flatnonzero(u[1:] != u[:-1]), len(u) - 1]  # the last row of each tie
    n_t, n_c, r_t, r_c = (np.r_[0, a[ends]] for a in (n_t, n_c, r_t, r_c))
    scaled = np.divide(r_c * n_t, n_c, out=np.zeros(len(n_c)), where=n_c > 0)
    prevented = np.where(n_c > 0, scaled - r_t, 0.0)
    targeted = np.r_[0, ends + 1]
    fraction = targeted / len(u)
    return pd.DataFrame(
        {
            "targeted": targeted,
            "fraction": fraction,
            "treated": n_t,
            "control": n_c,
            "treated_churns": r_t,
            "control_churns": r_c,
            "prevented": prevented,
            "random": prevented[-1] * fraction,
        }
    )


def _coefficient(u: np.ndarray, y: np.ndarray, t: np.ndarray) -> float:
    """:func:`qini_coefficient` of rows already in decreasing uplift."""
    curve = _curve(u, y, t)
    x = curve["fraction"].to_numpy()
    q = curve["prevented"].to_numpy() / curve["treated"].iloc[-1]
    return float(np.trapezoid(q, x) - q[-1] / 2)


def _arm_draws(t: np.ndarray) -> Draw:
    treated, control = np.flatnonzero(t == 1), np.flatnonzero(t == 0)

    def draw(rng: np.random.Generator) -> np.ndarray:
        return np.r_[rng.choice(treated, len(treated)), rng.choice(control, len(control))]

    return draw


def _cluster_draws(groups: np.ndarray, n: int) -> Draw:
    codes, distinct = pd.factorize(np.asarray(groups))
    if len(codes) != n:
        raise ValueError(f"groups must have length {n}; it has {len(codes)}")
    by_group = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(distinct))
    starts = np.r_[0, np.cumsum(counts)[:-1]]

    def draw(rng: np.random.Generator) -> np.ndarray:
        picked = rng.integers(0, len(distinct), len(distinct))
        sizes = counts[picked]
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return by_group[np.repeat(starts[picked], sizes) + offsets]

    return draw
