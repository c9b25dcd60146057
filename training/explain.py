"""TreeSHAP explanations of the churn model, per feature and grouped by factor family."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from features.catalog import FAMILIES, FEATURES


@dataclass(frozen=True)
class Explanation:
    """Attributions in log-odds: ``values`` (n, features), ``base`` the expected margin, and
    ``features`` the explained rows themselves (for the summary plot)."""

    values: pd.DataFrame
    base: float
    features: pd.DataFrame

    def by_family(self) -> pd.DataFrame:
        """Attributions summed per factor family (login, adoption, ...), shape (n, families),
        the families in the catalogue's order."""
        names = [FEATURES[c][0] for c in self.values.columns]
        families = [f for f in FAMILIES if f in names]
        onehot = np.array([[n == f for f in families] for n in names], dtype=np.float64)
        summed = self.values.to_numpy(np.float64) @ onehot if len(names) else None
        return pd.DataFrame(summed, index=self.values.index, columns=families)


def top_positive_factors(contributions: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Per row, the ``k`` columns with the largest positive contributions, largest first (None
    past the positive ones): what pushes churn up the most."""
    values = contributions.to_numpy(float)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    names = np.asarray(contributions.columns, dtype=object)[order]
    positive = np.take_along_axis(values, order, axis=1) > 0
    names = np.where(positive, names, None)
    return pd.DataFrame(
        names, index=contributions.index, columns=[f"top_factor_{i + 1}" for i in range(k)]
    )


class ChurnExplainer:
    """Path-dependent TreeSHAP of one booster (the interventional kind rejects categorical
    splits), computed by XGBoost itself (``pred_contribs``), built once and reused for every
    batch of rows.

    The attributions equal ``shap.TreeExplainer``'s, but the base value is XGBoost's own bias
    term, so that attributions plus base equal the margin exactly; shap's expected value was
    found 0.064 log-odds off it for a champion read back from its UBJSON file.
    """

    def __init__(self, model: xgb.XGBClassifier) -> None:
        self._booster = model.get_booster()
        self._base: float | None = None

    def _contributions(self, X: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> np.ndarray:
        matrix = matrix if matrix is not None else xgb.DMatrix(X, enable_categorical=True)
        return np.asarray(self._booster.predict(matrix, pred_contribs=True), dtype=np.float64)

    def base_of(self, X: pd.DataFrame) -> float:
        """The base value (the bias term, the same for every row) of rows shaped like ``X``."""
        if self._base is None:
            blank = X.head(0).reindex([0])  # one all-missing row in X's dtypes
            self._base = float(self._contributions(blank)[0, -1])
        return self._base

    def explain(self, X: pd.DataFrame, matrix: xgb.DMatrix | None = None) -> Explanation:
        """Attributions of the rows ``X`` (``matrix``: the same rows already as a DMatrix)."""
        if len(X) == 0:
            values = np.zeros((0, X.shape[1]))
        else:
            contributions = self._contributions(X, matrix)
            values = contributions[:, :-1]
            self._base = float(contributions[0, -1])
        return Explanation(
            values=pd.DataFrame(values, columns=X.columns, index=X.index),
            base=self.base_of(X),
            features=X,
        )


def explain(model: xgb.XGBClassifier, X: pd.DataFrame) -> Explanation:
    """One explanation of ``X`` (training's use; a scorer keeps a :class:`ChurnExplainer`)."""
    return ChurnExplainer(model).explain(X)
