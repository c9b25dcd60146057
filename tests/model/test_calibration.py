"""Calibration of the churn model on the later time slice (the holdout), against bounds the
sample size justifies.

The calibrator learns its map from the calibration slice: about 5,000 rows but only some 140
churns, from about 900 suppliers. A supplier's weekly rows share most of one 30-day future, so
the independent draws are suppliers rather than rows; the bounds count suppliers (the
conservative end: rows of one supplier treated as one draw). The simulator's true churn
probability ``p_true`` removes the holdout's own label noise where it is used.

Both bounds also reject the classic mistake of calibrating on the rows the trees learned from,
so they are not vacuous.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.model.conftest import FittedModels, SimulatedSet
from training.calibration import IsotonicCalibrator
from training.metrics import expected_calibration_error
from training.models import feature_matrix

DECILES = 10
# Two-sided normal quantile for a 1 % family-wise error over ten deciles (Bonferroni).
Z_LIMIT = 3.29
# The 99 % quantile of a chi-square with ten degrees of freedom: all deciles off together.
CHI2_LIMIT = 23.21
NULL_DRAWS = 400


def decile_z(
    raw: np.ndarray,
    predicted: np.ndarray,
    p_true: np.ndarray,
    suppliers: np.ndarray,
    holdout: np.ndarray,
    calibration: np.ndarray,
) -> np.ndarray:
    """Per decile of the holdout's prediction, (mean prediction - mean truth) / sd, where sd is
    the binomial error of a rate learned from the calibration suppliers whose raw scores fall
    in the decile's range of raw scores."""
    order = np.argsort(predicted[holdout], kind="stable")
    z = []
    for rows in np.array_split(np.flatnonzero(holdout)[order], DECILES):
        lo, hi = raw[rows].min(), raw[rows].max()
        learned_from = calibration & (raw >= lo) & (raw <= hi)
        draws = max(len(np.unique(suppliers[learned_from])), 1)
        p = p_true[rows].mean()
        z.append((predicted[rows].mean() - p) / np.sqrt(p * (1 - p) / draws))
    return np.asarray(z)


def null_ece(
    raw: np.ndarray,
    p_true: np.ndarray,
    suppliers: np.ndarray,
    holdout: np.ndarray,
    calibration: np.ndarray,
    draws: int = NULL_DRAWS,
    seed: int = 0,
) -> np.ndarray:
    """The holdout ECE of this model's ranking when every outcome is drawn from the truth: the
    calibrator refitted on drawn calibration outcomes, the holdout's outcomes drawn afresh.

    One uniform per supplier is shared by all its rows (a supplier's weekly rows share one
    future), the widest noise the rows' dependence allows.
    """
    rng = np.random.default_rng(seed)
    codes, distinct = pd.factorize(suppliers)
    out = np.empty(draws)
    for i in range(draws):
        y_cal = rng.random(len(distinct))[codes] < p_true
        y_hold = rng.random(len(distinct))[codes] < p_true
        calibrator = IsotonicCalibrator().fit(raw[calibration], y_cal[calibration])
        out[i] = expected_calibration_error(
            y_hold[holdout], calibrator.predict(raw[holdout]), DECILES
        )
    return out


@pytest.fixture(scope="module")
def scored(simulated: SimulatedSet, fitted: FittedModels) -> pd.DataFrame:
    frame = simulated.frame
    raw = fitted.churn.booster.predict_proba(feature_matrix(frame, fitted.churn.columns))[:, 1]
    trees = fitted.split.trees
    assert not np.isnan(frame["p_true"].to_numpy()).any()
    return pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"].astype(str),
            "label": frame["label"].to_numpy(int),
            "p_true": frame["p_true"].to_numpy(float),
            "raw": raw,
            "calibrated": fitted.churn.calibrator.predict(raw),
            # the mistake: calibrating on the trees' own rows
            "calibrated_on_trees": IsotonicCalibrator()
            .fit(raw[trees], frame["label"].to_numpy(int)[trees])
            .predict(raw),
        }
    )


def test_calibrated_probabilities_match_the_truth_per_decile(
    scored: pd.DataFrame, fitted: FittedModels
) -> None:
    split = fitted.split
    args = (scored["p_true"].to_numpy(), scored["supplier_id"].to_numpy())
    masks = (split.holdout, split.calibration)
    raw = scored["raw"].to_numpy()
    z = decile_z(raw, scored["calibrated"].to_numpy(), *args, *masks)
    # both tests pass: no decile is off, and the deciles are not off together
    assert np.abs(z).max() <= Z_LIMIT, np.round(z, 2)
    assert (z**2).sum() <= CHI2_LIMIT, np.round(z, 2)
    # and the same tests catch the classic mistake (it is off in every decile at once)
    mistake = decile_z(raw, scored["calibrated_on_trees"].to_numpy(), *args, *masks)
    assert np.abs(mistake).max() > Z_LIMIT or (mistake**2).sum() > CHI2_LIMIT, mistake


def test_holdout_ece_is_within_what_the_sample_size_explains(
    scored: pd.DataFrame, fitted: FittedModels
) -> None:
    split = fitted.split
    hold, y = split.holdout, scored["label"].to_numpy()
    ece = expected_calibration_error(y[hold], scored["calibrated"].to_numpy()[hold], DECILES)
    null = null_ece(
        scored["raw"].to_numpy(),
        scored["p_true"].to_numpy(),
        scored["supplier_id"].to_numpy(),
        hold,
        split.calibration,
    )
    bound = float(np.quantile(null, 0.99))
    assert ece <= bound, f"ECE {ece:.4f} above the 99th percentile {bound:.4f} of sampling noise"
    mistake = expected_calibration_error(
        y[hold], scored["calibrated_on_trees"].to_numpy()[hold], DECILES
    )
    assert mistake > bound
