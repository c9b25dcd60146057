"""TreeSHAP explanations of the churn model, per feature and grouped by factor family."""

from __future__ import annotations

from collections.abc import Sequence
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
        families, onehot = family_onehot(self.values.columns)
        summed = self.values.to_numpy(np.float64) @ onehot if len(onehot) else None
        return pd.DataFrame(summed, index=self.values.index, columns=families)


def family_onehot(columns: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The families of feature ``columns`` (in the catalogue's order) and the (columns,
    families) 0/1 matrix that sums a row of attributions into its families."""
    names = [FEATURES[c][0] for c in columns]
    families = [f for f in FAMILIES if f in names]
    return families, np.array([[n == f for f in families] for n in names], dtype=np.float64)


def top_positive(values: np.ndarray, names: Sequence[str], k: int = 3) -> np.ndarray:
    """Per row of ``values`` (rows, len(names)), the ``k`` names with the largest positive
    values, largest first (None past the positive ones), shape (rows, k)."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    picked = np.asarray(names, dtype=object)[order]
    positive = np.take_along_axis(values, order, axis=1) > 0
    return np.where(positive, picked, None)


def top_positive_factors(contributions: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Per row, the ``k`` columns with the largest positive contributions, largest first (None
    past the positive ones): what pushes churn up the most."""
    names = top_positive(contributions.to_numpy(float), list(contributions.columns), k)
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
        return self.contributions(matrix)

    def contributions(self, matrix: xgb.DMatrix) -> np.ndarray:
        """TreeSHAP attributions of ``matrix``'s rows, shape (n, features + 1): the last
        column is the base value (the bias term). ``matrix`` has the booster's columns (it is
        made from them), so XGBoost's check of its names, a large share of a one-row call, is
        skipped."""
        contributions = self._booster.predict(matrix, pred_contribs=True, validate_features=False)
        return np.asarray(contributions, dtype=np.float64)

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
