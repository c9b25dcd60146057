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

    def top_factors(self, k: int = 3) -> list[list[str]]:
        """Per row, the ``k`` families pushing churn up the most (largest positive share)."""
        grouped = self.by_family()
        order = np.argsort(-grouped.to_numpy(), axis=1)[:, :k]
        return [list(grouped.columns[row]) for row in order]


def explain(model: xgb.XGBClassifier, X: pd.DataFrame) -> Explanation:
    """Path-dependent TreeSHAP (the interventional kind rejects categorical splits)."""
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(X), dtype=np.float64)
    base = float(np.ravel(explainer.expected_value)[0])
    return Explanation(
        values=pd.DataFrame(values, columns=X.columns, index=X.index), base=base, features=X
    )
