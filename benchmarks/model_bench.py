"""Benchmarks of the models: ``train`` end to end, the information limit of the features, and
``predict``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

# Simulator options that shape exports unlike the default (simulator.SimulationConfig):
# accounts older than the event history (13 months of them, the history two years long),
# plans that cancel only at renewal (30 % yearly), usage of some features that raises churn.
SCENARIOS: dict[str, dict] = {
    "default": {},
    "history": {"history_start_days": 395, "extra_days": 395},
    "renewal": {"yearly_share": 0.3, "cancel_at_renewal": True},
    "feature_effects": {"feature_effects": True},
}
EVALUATION_METRICS = (
    "auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "auc_gap_closed",
    "pr_auc_gap_closed",
    "auc_rule_gap_closed",
    "pr_auc_rule_gap_closed",
)


def train(
    workdir: str,
    suppliers: int,
    days: int,
    seed: int,
    trials: int,
    scenario: str,
    experiment: str,
) -> dict:
    """Simulate a fresh seed (with truth) under a scenario, then ``wedsync-cs train`` end to
    end: features, tuning, fits (evaluation, unconstrained, refit check, deployed refit),
    holdout evaluation against the truth, MLflow. Quality figures are the tables the command
    printed."""
    from simulator import SimulationConfig, simulate
    from wedsync_cs.model_jobs import train as run_train
    from wedsync_cs.settings import Settings

    options = dict(SCENARIOS[scenario])
    days += options.pop("extra_days", 0)
    data = Path(workdir) / "train_sim"
    sim = simulate(
        SimulationConfig(suppliers=suppliers, days=days, seed=seed, **options),
        data,
        overwrite=True,
    )
    settings = Settings(home=Path(workdir) / "train_home")
    began = time.perf_counter()
    r = run_train(
        settings,
        data / "raw",
        Path(experiment),
        trials=trials,
        time_budget=1e9,
        truth=data / "truth.parquet",
    )
    t = r.tuning
    return {
        "days": days,
        "train_seconds": round(time.perf_counter() - began, 1),
        "simulate_seconds": round(sim.seconds, 1),
        "cancellations": sim.cancellations,
        "monthly_churn_rate": round(sim.monthly_churn_rate, 4),
        "rows": r.rows,
        "rows_left_out_by_window": r.window.rows_left_out if r.window else None,
        "holdout_rows": r.evaluated_rows,
        "holdout_positives": r.evaluated_positives,
        "trials": t.trials_run,
        "pruned": t.trials_pruned,
        "kept": t.chosen,
        "rounds": t.rounds,
        "fold_losses": [round(v, 5) for v in t.kept.fold_losses],
        "fixed_fold_log_loss": round(t.fixed.log_loss, 5),
        "tuned_fold_log_loss": round(t.tuned.log_loss, 5) if t.tuned else None,
        "params": t.params,
        "table": {
            model: {m: round(float(v), 5) for m, v in row.items() if m in EVALUATION_METRICS}
            for model, row in r.evaluation.to_dict("index").items()
        },
        "refit_check": (r.refit_check.table.round(5).to_dict("index") if r.refit_check else None),
        "health_log_loss": r.health_holdout_log_loss,
        "bands_ordered": r.bands_ordered,
        "timing": {
            "c_index": round(r.timing.c_index, 5),
            "c_index_churn_score": round(r.timing.baseline_c_index, 5),
            "rank_agreement_with_churn": round(r.timing.rank_agreement, 4),
            "holdout_events": r.timing.holdout_events,
            "dated_share": round(r.timing.dated_share, 4),
            "scale": r.timing.scale,
            "rounds": r.timing.rounds,
        },
    }


def _login_history(frame: pd.DataFrame, raw: Path) -> pd.DataFrame:
    """Each row's raw login history: daily counts of the 28 days up to its feature day, weekly
    counts of the 22 weeks before those (zeros before signup)."""
    act = pd.read_parquet(
        raw / "activity_daily.parquet", columns=["supplier_id", "date", "logins"]
    )
    index = {s: i for i, s in enumerate(pd.unique(frame["supplier_id"]))}
    first = pd.Timestamp(act["date"].min())
    pad = 28 + 22 * 7
    span = (pd.Timestamp(act["date"].max()) - first).days + 1 + pad
    grid = np.zeros((len(index), span), np.float32)
    who = act["supplier_id"].map(index)
    known = who.notna().to_numpy()
    day = (pd.to_datetime(act["date"]) - first).dt.days.to_numpy()[known] + pad
    grid[who[known].to_numpy(int), day] = act["logins"].to_numpy()[known]
    rs = frame["supplier_id"].map(index).to_numpy(int)
    feature_day = frame["event_timestamp"].dt.tz_convert(None).dt.floor("D") - pd.Timedelta(days=1)
    rd = (feature_day - first).dt.days.to_numpy() + pad
    history = {f"logins_day_minus_{k}": grid[rs, rd - k] for k in range(28)}
    for w in range(4, 26):
        cells = rd[:, None] - 7 * w - np.arange(7)
        history[f"logins_week_minus_{w}"] = grid[rs[:, None], cells].sum(axis=1)
    return pd.DataFrame(history, index=frame.index)


def information_limit(workdir: str, experiment: str) -> dict:
    """How much any model of these features could reach, on the training benchmark's data and
    holdout: a gradient-boosted regression fitted to the simulator's true probabilities
    themselves on the tree window, twice (squared error on the logit; cross-entropy with the
    true probability as a soft label), the better of the two on each metric. No shipped model
    can learn from the truth; this one only measures what the features carry.

    A third fit asks whether the raw login history carries more than the features distil from
    it: the same regression (logit squared error) with each row's daily login counts of the 28
    days before its instant and weekly counts of the 22 weeks before those added. If it does not
    beat the features, the rest of the gap to the ceiling is state the tables do not reveal."""
    import xgboost as xgb
    from scipy.special import expit, logit

    from feature_repo.definitions import service_columns
    from training.config import load_experiment
    from training.metrics import evaluate
    from training.models import feature_matrix
    from training.pipeline import window_split
    from training.truth import join_truth
    from wedsync_cs.feature_jobs import training_set
    from wedsync_cs.settings import Settings

    data = Path(workdir) / "train_sim"
    settings = Settings(home=Path(workdir) / "train_home")
    cfg = load_experiment(Path(experiment))
    frame = training_set(
        settings,
        data / "raw",
        (cfg.feature_service, cfg.health_service),
        cfg.cadence,
        cfg.horizon_days,
    ).frame
    p_true = join_truth(frame, pd.read_parquet(data / "truth.parquet")).p_true
    X = feature_matrix(frame, service_columns(cfg.feature_service))
    y = frame["label"].to_numpy(int)
    split = window_split(frame["event_timestamp"], cfg)
    fit, stop, hold = split.trees & ~np.isnan(p_true), split.calibration, split.holdout
    z = logit(np.clip(p_true, 1e-5, 1 - 1e-5))
    base = {
        "max_depth": 6,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 20,
        "tree_method": "hist",
        "nthread": 2,
    }
    # two fits of E[p_true | features]: squared error on the logit, and cross-entropy with
    # p_true as a soft label (its minimiser is E[p_true | features] itself, weighted as log loss
    # weighs rows)
    targets = {
        "logit_squared_error": ("reg:squarederror", z, X),
        "soft_label_log_loss": ("binary:logistic", p_true, X),
        "logit_squared_error_with_login_history": (
            "reg:squarederror",
            z,
            pd.concat([X, _login_history(frame, data / "raw")], axis=1),
        ),
    }
    fits = {}
    for name, (objective, target, M) in targets.items():
        booster = xgb.train(
            {**base, "objective": objective},
            xgb.DMatrix(M[fit], target[fit], enable_categorical=True),
            3000,
            evals=[(xgb.DMatrix(M[stop], target[stop], enable_categorical=True), "stop")],
            early_stopping_rounds=50,
            verbose_eval=False,
        )
        out = booster.predict(
            xgb.DMatrix(M[hold], enable_categorical=True),
            iteration_range=(0, booster.best_iteration + 1),
        )
        prob = expit(out) if objective == "reg:squarederror" else out
        m = evaluate(y[hold], prob)
        fits[name] = {
            "rounds": booster.best_iteration + 1,
            **{k: round(m[k], 4) for k in ("auc", "pr_auc")},
        }
    # the limit is the better fit on each metric: an optimistic reading of what they carry
    best = {k: max(f[k] for n, f in fits.items() if "history" not in n) for k in ("auc", "pr_auc")}
    return {
        "holdout_rows": int(hold.sum()),
        "holdout_positives": int(y[hold].sum()),
        "fits": fits,
        "regression_on_truth": best,
    }


def predict(workdir: str, rows: int, span: str, days: int) -> dict:
    """``wedsync-cs predict`` for ``rows`` random (supplier, instant) rows with the champion of
    the training benchmark, every one of a supplier active at its instant (all are scored).

    ``span="recent"``: instants in the last four weeks of the data, the daily scoring case.
    ``span="history"``: instants anywhere in the data after its first 60 days, a backfill. Both
    include computing, on demand, the feature rows of every day they touch that the weekly
    training grid lacks (a few days for "recent", hundreds for "history")."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from serving.batch import entity_status
    from wedsync_cs.model_jobs import predict as run_predict
    from wedsync_cs.settings import Settings

    back = 28 if span == "recent" else 670
    raw = Path(workdir) / "train_sim" / "raw"
    sup = pd.read_parquet(raw / "suppliers.parquet", columns=["supplier_id", "signup_at"])
    rng = np.random.default_rng(3)
    last = pc.max(pq.read_table(raw / "activity_daily.parquet", columns=["date"])["date"])
    end = pd.Timestamp(last.as_py(), tz="UTC")
    start = end - pd.Timedelta(days=min(back, days - 60))
    # suppliers active at their instants only (the contract's rule, as predict applies it), so
    # that every row is scored: draw candidates and keep the first ``rows`` active ones
    candidates = 4 * rows
    stamps = start + pd.to_timedelta(
        rng.integers(0, (end - start).days * 24, candidates), unit="h"
    )
    pick = rng.integers(0, len(sup), candidates)
    drawn = pd.DataFrame({"supplier_id": sup["supplier_id"].to_numpy()[pick], "as_of": stamps})
    cancellations = pd.read_parquet(raw / "cancellations.parquet")
    keep = np.flatnonzero(entity_status(drawn, sup, cancellations) == "active")[:rows]
    if len(keep) < rows:
        raise RuntimeError(f"only {len(keep)} of {rows} candidates are active")
    entities = drawn.iloc[keep].reset_index(drop=True)
    path = Path(workdir) / "entities.parquet"
    entities.to_parquet(path)
    out = Path(workdir) / "predictions.parquet"
    settings = Settings(home=Path(workdir) / "train_home")
    began = time.perf_counter()
    run_predict(settings, raw, path, out)
    seconds = time.perf_counter() - began
    got = pd.read_parquet(out)
    return {
        "predict_seconds": round(seconds, 1),
        "rows": len(got),
        "status": got["status"].value_counts().to_dict(),
    }
