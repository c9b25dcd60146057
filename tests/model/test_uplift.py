"""The uplift model and its Qini evaluation on randomised synthetic executions with a planted
effect: a contact lowers churn strongly where ``x1 > 0`` and does nothing elsewhere, on a
baseline churn that rises with ``x0``; ``x2`` is noise. Models are fitted on one sample and
judged on another, as the caller must (earlier executions to fit, later ones to judge).

XGBoost runs on one thread: on this shared two-core machine, next to another busy process, two
threads made one fit here 15 to 40 times slower (0.1 s against 1.7 to 4 s), as
``tests/model/conftest.py`` found for the churn model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from monitoring.uplift import (
    QiniTest,
    TLearnerUplift,
    beats_random,
    load,
    qini_coefficient,
    qini_curve,
    save,
    uplift_at_k,
)

N = 20_000
THREADS = 1
N_BOOT = 100
# The contact's effect where x1 > 0, on the log-odds of churn.
EFFECT = -2.0


def executions(n: int, seed: int, effect: float = EFFECT) -> tuple[pd.DataFrame, ...]:
    """``n`` randomised executions, half contacted: features, churn, treatment and the true
    individual uplift ``P(churn | control) - P(churn | contacted)``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x0", "x1", "x2"])
    contacted = rng.random(n) < 0.5
    log_odds = -1.5 + X["x0"].to_numpy()
    p_control = 1 / (1 + np.exp(-log_odds))
    p_contacted = 1 / (1 + np.exp(-(log_odds + effect * (X["x1"].to_numpy() > 0))))
    churned = rng.random(n) < np.where(contacted, p_contacted, p_control)
    return X, churned.astype(int), contacted.astype(int), p_control - p_contacted


@pytest.fixture(scope="module")
def planted() -> dict[str, np.ndarray]:
    X, y, t, _ = executions(N, seed=1)
    model = TLearnerUplift(n_jobs=THREADS).fit(X, y, t)
    X_test, y_test, t_test, true_uplift = executions(N, seed=2)
    return {
        "uplift": model.predict_uplift(X_test),
        "y": y_test,
        "t": t_test,
        "true": true_uplift,
    }


def test_the_planted_effect_is_found_and_beats_random(planted: dict[str, np.ndarray]) -> None:
    rho = spearmanr(planted["uplift"], planted["true"]).statistic
    assert rho > 0.5, rho
    result = beats_random(planted["uplift"], planted["y"], planted["t"], n_boot=N_BOOT, seed=0)
    assert isinstance(result, QiniTest)
    assert result.ci_low > 0 and result.beats
    assert result.ci_low <= result.qini <= result.ci_high
    assert result.qini == qini_coefficient(planted["uplift"], planted["y"], planted["t"])
    assert result.reason == (
        f"Qini {result.qini:.3f} (95% CI {result.ci_low:.3f} to {result.ci_high:.3f}) "
        "above random targeting"
    )
    assert result.metrics()["qini_beats_random"] == 1.0


def test_the_top_of_the_ranking_gains_more_than_everyone(planted: dict[str, np.ndarray]) -> None:
    args = planted["uplift"], planted["y"], planted["t"]
    everyone = uplift_at_k(*args, k=1.0)
    # the effect sits in half the suppliers: their top third gains about twice the average
    assert uplift_at_k(*args, k=0.3) > 1.5 * everyone > 0
    # and the bottom of the ranking (the reversed ranking's top) gains about nothing
    assert abs(uplift_at_k(-planted["uplift"], planted["y"], planted["t"], k=0.3)) < 0.02


def test_the_true_uplift_curve_is_above_the_random_line(planted: dict[str, np.ndarray]) -> None:
    curve = qini_curve(planted["true"], planted["y"], planted["t"])
    assert curve["random"].iloc[-1] == curve["prevented"].iloc[-1]
    # between points (the true uplift's zeros are one tie, half the sample) the curve is the
    # straight line: random order within the tie
    deciles = np.linspace(0.1, 0.9, 9)
    gap = np.interp(deciles, curve["fraction"], curve["prevented"] - curve["random"])
    assert (gap > 0).all(), gap
    oracle = qini_coefficient(planted["true"], planted["y"], planted["t"])
    assert oracle > 0.02
    # a model cannot rank much better than the truth on the same sample
    assert qini_coefficient(planted["uplift"], planted["y"], planted["t"]) < oracle + 0.005


def test_without_an_effect_the_model_does_not_beat_random() -> None:
    X, y, t, _ = executions(N, seed=3, effect=0.0)
    model = TLearnerUplift(n_jobs=THREADS).fit(X, y, t)
    X_test, y_test, t_test, _ = executions(N, seed=4, effect=0.0)
    result = beats_random(model.predict_uplift(X_test), y_test, t_test, n_boot=N_BOOT, seed=0)
    assert result.ci_low < 0 < result.ci_high
    assert not result.beats
    assert result.reason.endswith("not better than random: ranking by risk")


def test_random_scores_rarely_beat_random() -> None:
    """A one-sided 2.5 % error: of 20 null samples, more than 3 beating random would be a
    chance of about 0.2 %."""
    wins = 0
    for seed in range(20):
        _, y, t, _ = executions(4_000, seed=100 + seed, effect=0.0)
        scores = np.random.default_rng(seed).random(len(y))
        wins += beats_random(scores, y, t, n_boot=50, seed=seed).beats
    assert wins <= 3


def test_groups_resample_whole_suppliers() -> None:
    """Five copies of each execution carry no more information than one: the rows' bootstrap
    narrows the interval by about sqrt(5), the suppliers' bootstrap does not."""
    _, y, t, _ = executions(4_000, seed=7, effect=0.0)
    scores = np.random.default_rng(7).random(len(y))
    once = beats_random(scores, y, t, n_boot=N_BOOT, seed=0)
    copies = [np.repeat(a, 5) for a in (scores, y, t)]
    rows = beats_random(*copies, n_boot=N_BOOT, seed=0)
    suppliers = beats_random(*copies, n_boot=N_BOOT, seed=0, groups=np.repeat(np.arange(4_000), 5))

    def width(r: QiniTest) -> float:
        return r.ci_high - r.ci_low

    assert rows.qini == pytest.approx(once.qini, abs=1e-12)
    assert width(rows) < 0.6 * width(once)
    assert 0.75 < width(suppliers) / width(once) < 1.33


# -- the Qini curve by hand ----------------------------------------------------------------------
# Rows A..F by decreasing uplift (B and C tie), given in the order D, F, B, A, E, C.
HAND_UPLIFT = np.array([0.4, 0.1, 0.7, 0.9, 0.2, 0.7])
HAND_T = np.array([1, 0, 0, 1, 0, 1])
HAND_Y = np.array([0, 1, 1, 1, 0, 0])


def test_qini_curve_matches_the_hand_computation() -> None:
    curve = qini_curve(HAND_UPLIFT, HAND_Y, HAND_T)
    # A is contacted and churned; no control row yet, so nothing is claimed.
    # {A,B,C}: 1 * 2/1 - 1 = 1; +D: 1 * 3/1 - 1 = 2; +E: 1 * 3/2 - 1 = 0.5; +F: 2 * 3/3 - 1 = 1
    expected = {
        "targeted": [0, 1, 3, 4, 5, 6],
        "treated": [0, 1, 2, 3, 3, 3],
        "control": [0, 0, 1, 1, 2, 3],
        "treated_churns": [0, 1, 1, 1, 1, 1],
        "control_churns": [0, 0, 1, 1, 1, 2],
        "prevented": [0.0, 0.0, 1.0, 2.0, 0.5, 1.0],
    }
    for column, values in expected.items():
        assert curve[column].tolist() == values, column
    assert curve["fraction"].tolist() == (np.array(expected["targeted"]) / 6).tolist()
    assert curve["random"].tolist() == (np.array(expected["targeted"]) / 6).tolist()
    # y = prevented / 3 at x = k / 6: trapezoids 0 + 1/18 + 1/12 + 5/72 + 1/24 = 1/4, less the
    # random line's 1/6
    assert qini_coefficient(HAND_UPLIFT, HAND_Y, HAND_T) == pytest.approx(1 / 12, abs=1e-15)


def test_the_order_of_ties_does_not_matter() -> None:
    swapped = [2, 5, 4, 3, 0, 1]  # C before B, everything else shuffled
    args = HAND_UPLIFT[swapped], HAND_Y[swapped], HAND_T[swapped]
    pd.testing.assert_frame_equal(qini_curve(*args), qini_curve(HAND_UPLIFT, HAND_Y, HAND_T))
    assert qini_coefficient(*args) == qini_coefficient(HAND_UPLIFT, HAND_Y, HAND_T)


def test_uplift_at_k_by_hand() -> None:
    # top 3 {A, B, C}: control B churned (1/1), contacted A churned, C did not (1/2)
    assert uplift_at_k(HAND_UPLIFT, HAND_Y, HAND_T, k=0.5) == 0.5
    # top 4 adds D (contacted, stayed): 1 - 1/3
    assert uplift_at_k(HAND_UPLIFT, HAND_Y, HAND_T, k=4 / 6) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="one arm"):
        uplift_at_k(HAND_UPLIFT, HAND_Y, HAND_T, k=0.1)
    with pytest.raises(ValueError, match="fraction"):
        uplift_at_k(HAND_UPLIFT, HAND_Y, HAND_T, k=0.0)


def test_evaluation_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="0 and 1"):
        qini_curve(HAND_UPLIFT, HAND_Y, HAND_T * 2)
    with pytest.raises(ValueError, match="length"):
        qini_curve(HAND_UPLIFT, HAND_Y[:-1], HAND_T)
    with pytest.raises(ValueError, match="finite"):
        qini_curve(np.r_[HAND_UPLIFT[:-1], np.nan], HAND_Y, HAND_T)
    with pytest.raises(ValueError, match="contacted and control"):
        qini_curve(HAND_UPLIFT, HAND_Y, np.ones(6, int))


# -- the model's contract and files --------------------------------------------------------------
@pytest.fixture(scope="module")
def small() -> tuple[TLearnerUplift, pd.DataFrame]:
    X, y, t, _ = executions(2_000, seed=11)
    model = TLearnerUplift(n_estimators=50, n_jobs=THREADS, intervention_type="check_in_call")
    return model.fit(X, y, t, training_window=("2025-01-01", "2025-06-30")), X


def test_save_and_load_round_trip_exactly_without_pickles(
    small: tuple[TLearnerUplift, pd.DataFrame], tmp_path: Path
) -> None:
    model, X = small
    folder = save(model, tmp_path / "uplift")
    back = load(folder)
    np.testing.assert_array_equal(back.predict_proba_pair(X), model.predict_proba_pair(X))
    np.testing.assert_array_equal(back.predict_uplift(X), model.predict_uplift(X))
    assert back.get_params() == model.get_params()
    assert back.intervention_type == "check_in_call"
    assert back.training_window_ == ("2025-01-01", "2025-06-30")
    assert list(back.feature_names_in_) == ["x0", "x1", "x2"]
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert [p.name for p in files] == ["control.json", "treated.json", "uplift.json"]
    for path in files:  # a pickle (protocol 2+) starts with 0x80; JSON with "{"
        head = path.read_bytes()[:1]
        assert head != b"\x80" and head == b"{", path


def test_predict_refuses_other_columns_and_accepts_another_order(
    small: tuple[TLearnerUplift, pd.DataFrame],
) -> None:
    model, X = small
    with pytest.raises(ValueError, match=r"missing \['x2'\], unexpected \['noise'\]"):
        model.predict_uplift(X.rename(columns={"x2": "noise"}))
    with pytest.raises(ValueError, match=r"unexpected \['x3'\]"):
        model.predict_proba_pair(X.assign(x3=0.0))
    reordered = X[["x2", "x0", "x1"]]
    np.testing.assert_array_equal(model.predict_uplift(reordered), model.predict_uplift(X))


def test_uplift_is_control_minus_contacted(small: tuple[TLearnerUplift, pd.DataFrame]) -> None:
    model, X = small
    pair = model.predict_proba_pair(X)
    assert pair.shape == (len(X), 2) and ((pair > 0) & (pair < 1)).all()
    np.testing.assert_array_equal(model.predict_uplift(X), pair[:, 0] - pair[:, 1])


def test_fit_refuses_what_it_cannot_learn_from() -> None:
    X, y, t, _ = executions(1_000, seed=12)
    model = TLearnerUplift(n_estimators=5, n_jobs=THREADS, min_rows_per_arm=100)
    few_control = t.copy()
    few_control[np.flatnonzero(t == 0)[50:]] = 1
    with pytest.raises(ValueError, match="control arm has 50 rows; at least 100"):
        model.fit(X, y, few_control)
    no_churn_contacted = np.where(t == 1, 0, y)
    with pytest.raises(ValueError, match="contacted arm has a single outcome"):
        model.fit(X, no_churn_contacted, t)
    with pytest.raises(ValueError, match=r"\['plan'\] are not numeric"):
        model.fit(X.assign(plan="pro"), y, t)
    with pytest.raises(NotFittedError):
        model.predict_uplift(X)
    assert clone(model).get_params() == model.get_params()
