"""TreeSHAP explanations of the churn model, per feature and grouped by factor family."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap
import xgboost as xgb

from features.catalog import FEATURES


@dataclass(frozen=True)
class Explanation:
    """Attributions in log-odds: ``values`` (n, features), ``base`` the expected margin, and
    ``features`` the explained rows themselves (for the summary plot)."""

    values: pd.DataFrame
    base: float
    features: pd.DataFrame

    def by_family(self) -> pd.DataFrame:
        """Attributions summed per factor family (login, adoption, ...), shape (n, families)."""
        families = {c: FEATURES[c][0] for c in self.values.columns}
        return self.values.T.groupby(families).sum().T


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
    splits), built once and reused for every batch of rows."""

    def __init__(self, model: xgb.XGBClassifier) -> None:
        self._explainer = shap.TreeExplainer(model)
        self.base = float(np.ravel(self._explainer.expected_value)[0])

    def explain(self, X: pd.DataFrame) -> Explanation:
        if len(X) == 0:  # shap cannot explain no rows
            values = np.zeros((0, X.shape[1]))
        else:
            values = np.asarray(self._explainer.shap_values(X), dtype=np.float64)
        base = float(np.ravel(self._explainer.expected_value)[0])
        return Explanation(
            values=pd.DataFrame(values, columns=X.columns, index=X.index), base=base, features=X
        )


def explain(model: xgb.XGBClassifier, X: pd.DataFrame) -> Explanation:
    """One explanation of ``X`` (training's use; a scorer keeps a :class:`ChurnExplainer`)."""
    return ChurnExplainer(model).explain(X)
