"""The simulator's true churn probabilities joined to training rows (the evaluation's ceiling).

Training reads a truth file only when it is given one (the CLI finds the simulator's beside the
raw folder); a real export has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _utc_ns(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]").to_numpy()


@dataclass(frozen=True)
class TruthJoin:
    """The true churn probability of each training row (NaN where the truth has no row).

    ``label_mismatches`` counts matched rows whose truth label differs from the training label:
    any mismatch means the truth was simulated for another horizon, and it is not used.
    """

    p_true: np.ndarray
    source: str
    label_mismatches: int

    @property
    def matched(self) -> np.ndarray:
        return ~np.isnan(self.p_true)

    @property
    def usable(self) -> bool:
        return bool(self.matched.any()) and self.label_mismatches == 0


def join_truth(frame: pd.DataFrame, truth: pd.DataFrame, source: str = "") -> TruthJoin:
    """Join ``p_true`` on (supplier_id, instant): a training row at ``event_timestamp`` (the end
    of its snapshot day) meets the truth row whose ``as_of`` is that same instant. The simulator
    estimates truth at week boundaries (00:00 UTC), which are the weekly snapshot instants
    (Mondays) when the simulation starts on a Monday; other instants find no truth."""
    keys = pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"].astype(str).to_numpy(),
            "as_of": _utc_ns(frame["event_timestamp"]),
        }
    )
    t = pd.DataFrame(
        {
            "supplier_id": truth["supplier_id"].astype(str).to_numpy(),
            "as_of": _utc_ns(truth["as_of"]),
            "p_true": truth["p_true"].astype(float).to_numpy(),
            "truth_label": truth["label"].astype(int).to_numpy(),
        }
    )
    merged = keys.merge(t, how="left", on=["supplier_id", "as_of"], validate="many_to_one")
    p_true = merged["p_true"].to_numpy(float)
    matched = ~np.isnan(p_true)
    labels = frame["label"].to_numpy(int)
    mismatches = int((merged["truth_label"].to_numpy()[matched] != labels[matched]).sum())
    return TruthJoin(p_true=p_true, source=source, label_mismatches=mismatches)
