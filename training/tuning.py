"""Optuna tuning of the churn model on time-ordered folds inside the training window."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from sklearn.metrics import log_loss

from training.config import Range, Tuning
from training.models import make_churn_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialFit:
    """One configuration's result on the folds: each fold's validation log loss and its best
    number of rounds (early stopping)."""

    params: dict
    fold_losses: tuple[float, ...]
    fold_rounds: tuple[int, ...]

    @property
    def log_loss(self) -> float:
        return float(np.mean(self.fold_losses))

    @property
    def rounds(self) -> int:
        return int(np.mean(self.fold_rounds))


@dataclass(frozen=True)
class TuningResult:
    """The kept configuration (the better of the best tuned trial and the fixed one, on the
    same folds), with both for the record."""

    params: dict
    rounds: int
    fold_log_loss: float
    trials_run: int
    trials_pruned: int
    chosen: str  # "tuned" or "fixed"
    tuned: TrialFit | None
    fixed: TrialFit

    @property
    def kept(self) -> TrialFit:
        return self.fixed if self.chosen == "fixed" or self.tuned is None else self.tuned


def _suggest(trial: optuna.Trial, name: str, r: Range) -> float | int:
    if r.kind == "int":
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def tune(
    X: pd.DataFrame,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    tuning: Tuning,
    threads: int = 2,
) -> TuningResult:
    """Search hyperparameters by mean validation log loss over the folds, and keep the best
    trial only if it beats the experiment's fixed configuration on the same folds.

    Each trial fits one model per fold with early stopping on that fold's validation block;
    after each fold the running mean is reported, so the median pruner stops poor trials early.
    Every trial's booster is built by :func:`training.models.make_churn_model` (same objective,
    categories and monotone constraints as the final model). The fold matrices are built once
    for all trials; validation blocks are plain ``DMatrix`` objects, whose predictions XGBoost
    caches from round to round (a ``QuantileDMatrix`` validation set, what the scikit-learn
    wrapper builds, is re-predicted in full every round: most of the tuning time).
    """
    y = np.asarray(y)
    columns = list(X.columns)
    matrices = []
    for train, valid in folds:
        dtrain = xgb.QuantileDMatrix(X[train], y[train], enable_categorical=True, nthread=threads)
        dvalid = xgb.DMatrix(X[valid], y[valid], enable_categorical=True, nthread=threads)
        matrices.append((dtrain, dvalid, y[valid]))

    def fit_folds(params: dict, trial: optuna.Trial | None = None) -> TrialFit:
        booster_params = make_churn_model(
            params, columns, threads=threads, seed=tuning.seed
        ).get_xgb_params()
        losses, rounds = [], []
        for i, (dtrain, dvalid, y_valid) in enumerate(matrices):
            booster = xgb.train(
                booster_params,
                dtrain,
                num_boost_round=tuning.max_rounds,
                evals=[(dvalid, "valid")],
                early_stopping_rounds=tuning.early_stopping_rounds,
                verbose_eval=False,
            )
            best = booster.best_iteration
            p = booster.predict(dvalid, iteration_range=(0, best + 1))
            losses.append(float(log_loss(y_valid, p, labels=[0, 1])))
            rounds.append(best + 1)
            if trial is not None:
                trial.report(float(np.mean(losses)), i)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        return TrialFit(dict(params), tuple(losses), tuple(rounds))

    def objective(trial: optuna.Trial) -> float:
        params = {n: _suggest(trial, n, r) for n, r in tuning.search_space.items()}
        fit = fit_folds(params, trial)
        trial.set_user_attr("fold_losses", list(fit.fold_losses))
        trial.set_user_attr("fold_rounds", list(fit.fold_rounds))
        return fit.log_loss

    fixed = fit_folds(dict(tuning.fixed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=tuning.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    study.optimize(objective, n_trials=tuning.trials, timeout=tuning.time_budget_seconds)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    tuned = None
    if done:
        best = study.best_trial
        tuned = TrialFit(
            dict(best.params),
            tuple(best.user_attrs["fold_losses"]),
            tuple(best.user_attrs["fold_rounds"]),
        )
    chosen = "tuned" if tuned is not None and tuned.log_loss < fixed.log_loss else "fixed"
    kept = tuned if chosen == "tuned" else fixed
    log.info(
        "tuning: %d trials, best tuned fold log loss %s, fixed %.5f: kept the %s one",
        len(study.trials),
        f"{tuned.log_loss:.5f}" if tuned else "-",
        fixed.log_loss,
        chosen,
    )
    return TuningResult(
        params=dict(kept.params),
        rounds=kept.rounds,
        fold_log_loss=kept.log_loss,
        trials_run=len(study.trials),
        trials_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        chosen=chosen,
        tuned=tuned,
        fixed=fixed,
    )
