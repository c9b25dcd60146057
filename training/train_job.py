"""The training job: the churn and health models fitted on one time split, every score evaluated
on the same holdout rows, the churn model explained, and everything recorded in MLflow with a
promotion gate.

The steps are plain functions over frames (``fit_models``, ``evaluate_holdout``, ...); files and
MLflow are touched only by :func:`write_artifacts`, :func:`record_runs` and :func:`run_training`
at the end of the module. Nothing here reads settings: the caller passes the training frame (from
``wedsync_cs.feature_jobs.training_set``), the tracking URI and the artifact root.

Model files are JSON or UBJSON only (never pickles): the XGBoost booster as ``model.ubj`` with
``calibrator.json``, ``features.json`` (columns and category levels) and ``experiment.json``
beside it in the logged model ``churn``; ``health_model.json`` and ``experiment.json`` in the
logged model ``health_calibration``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from feature_repo.definitions import service_columns
from features import contract
from features.catalog import CATEGORIES, FEATURES, HEALTH_FACTORS
from training import plots
from training.baseline import make_logistic_baseline
from training.config import ExperimentConfig, Tuning
from training.dataset import TrainingWindow
from training.explain import Explanation, explain
from training.health_model import HealthFit, fit_health_model
from training.metrics import EPS
from training.models import feature_matrix
from training.pipeline import ChurnFit, evaluation_table, fit_churn, fit_unconstrained
from training.refit import DeployedFit, RefitCheck, deployed_fit, refit_check
from training.registry import (
    CHURN_MODEL,
    HEALTH_MODEL,
    ChampionScore,
    ChampionScorer,
    Promotion,
    version_run_id,
)
from training.risk import band_table, bands_ordered
from training.tuning import TuningResult

log = logging.getLogger(__name__)

# Both models are promoted on holdout log loss: a proper scoring rule, so it rewards ranking and
# calibration together; CS acts on the calibrated probability (risk levels, LTV at risk), not on
# the order alone, which is all PR-AUC sees.
PROMOTION_METRIC: Final = "log_loss"
SHAP_SAMPLE: Final = 5000
CEILING: Final = "ceiling"
# The registered files are the refit on every labelled row; the evaluation fit is logged beside
# them (``<model>_evaluation_fit``) and named in this version tag, so that a later gate compares
# evaluation fits on its holdout.
EVALUATION_SUFFIX: Final = "_evaluation_fit"
EVALUATION_FIT_TAG: Final = "evaluation_fit_uri"
# The churn model's configuration fitted without monotone constraints (what they cost or gain).
UNCONSTRAINED: Final = "churn_model_unconstrained"


# -- configuration ---------------------------------------------------------------------------
def with_overrides(
    cfg: ExperimentConfig, trials: int | None = None, time_budget: float | None = None
) -> ExperimentConfig:
    """The experiment with the command line's tuning budget, validated like the YAML."""
    given = {"trials": trials, "time_budget_seconds": time_budget}
    update = {k: v for k, v in given.items() if v is not None}
    if not update:
        return cfg
    tuning = Tuning.model_validate({**cfg.tuning.model_dump(), **update})
    return cfg.model_copy(update={"tuning": tuning})


# -- the simulator's truth -------------------------------------------------------------------
def find_truth(raw: Path) -> Path | None:
    """``truth.parquet`` beside the raw folder (where the simulator writes it) or inside it."""
    raw = Path(raw)
    for candidate in (raw.parent / "truth.parquet", raw / "truth.parquet"):
        if candidate.is_file():
            return candidate
    return None


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


# -- fitting ---------------------------------------------------------------------------------
def health_inputs(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The six factors and the segment of the health service's columns."""
    factors = frame[list(HEALTH_FACTORS)].astype(float)
    return factors, frame["health_segment"].astype(object)


@dataclass(frozen=True)
class TrainedModels:
    columns: list[str]
    churn: ChurnFit
    health: HealthFit
    logistic: Pipeline
    unconstrained: ChurnFit | None = None


def fit_models(
    frame: pd.DataFrame, columns: list[str], cfg: ExperimentConfig, threads: int = 2
) -> TrainedModels:
    """Tuned, calibrated churn model; health model; logistic baseline: one split for all three.

    The health weights are learned on the tree window and chosen on the calibration slice; the
    logistic baseline sees the tree window only. The holdout stays unseen by every fit.
    """
    X = feature_matrix(frame, columns)
    y = frame["label"].to_numpy(int)
    churn = fit_churn(X, y, frame["event_timestamp"], cfg, threads)
    split = churn.split
    factors, segment = health_inputs(frame)
    health = fit_health_model(factors, segment, y, split.trees, split.calibration)
    logistic = make_logistic_baseline(columns).fit(X[split.trees], y[split.trees])
    return TrainedModels(
        columns=list(columns),
        churn=churn,
        health=health,
        logistic=logistic,
        unconstrained=fit_unconstrained(X, y, churn, cfg, threads),
    )


# -- evaluation ------------------------------------------------------------------------------
def holdout_scores(frame: pd.DataFrame, models: TrainedModels) -> dict[str, np.ndarray]:
    """Every score on ``frame``'s rows: churn probabilities, and the rule's ``1 - score/100``."""
    X = feature_matrix(frame, models.columns)
    factors, segment = health_inputs(frame)
    scores = {
        "churn_model": models.churn.predict(X),
        "health_calibrated": models.health.model.churn_probability(factors, segment),
        "fixed_weight_rule": 1 - frame["health_score"].to_numpy(float) / 100,
        "logistic_baseline": models.logistic.predict_proba(X)[:, 1],
    }
    if models.unconstrained is not None:
        scores[UNCONSTRAINED] = models.unconstrained.predict(X)
    return scores


def health_log_losses(frame: pd.DataFrame, y: np.ndarray, health: HealthFit) -> dict[str, float]:
    """Log loss of the brief's weights and of the re-learned ones, each with its own map."""
    factors, segment = health_inputs(frame)
    return {
        name: float(
            log_loss(
                y, np.clip(m.churn_probability(factors, segment), EPS, 1 - EPS), labels=[0, 1]
            )
        )
        for name, m in (("brief_weights", health.brief), ("relearned_weights", health.relearned))
    }


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on the holdout rows that are evaluated (those with truth, if any)."""

    rows: np.ndarray
    y: np.ndarray
    scores: dict[str, np.ndarray]
    table: pd.DataFrame
    health_log_loss: dict[str, float]
    bands: pd.DataFrame
    bands_ordered: bool
    explanation: Explanation

    @property
    def feature_importance(self) -> pd.Series:
        """Mean |SHAP| per feature (log-odds), largest first."""
        return self.explanation.values.abs().mean().sort_values(ascending=False)

    @property
    def family_importance(self) -> pd.Series:
        """Mean |SHAP| per factor family of the per-row family sums, largest first."""
        return self.explanation.by_family().abs().mean().sort_values(ascending=False)


def evaluate_holdout(
    frame: pd.DataFrame,
    models: TrainedModels,
    cfg: ExperimentConfig,
    truth: TruthJoin | None = None,
    shap_sample: int = SHAP_SAMPLE,
) -> Evaluation:
    """Scores, the evaluation table, the health bands and SHAP on the holdout.

    With usable truth, every score is evaluated on the holdout rows that have a true
    probability, and the truth itself is the ``ceiling`` row.

    Raises:
        ValueError: the evaluated rows hold no churner (or only churners).
    """
    rows = models.churn.split.holdout.copy()
    if truth is not None and truth.usable:
        rows &= truth.matched
    y = frame["label"].to_numpy(int)[rows]
    if y.min() == y.max():
        raise ValueError(
            f"the {rows.sum():,} holdout rows hold only label {y[0]}: no metric can rank them; "
            "use more suppliers or days, or a larger holdout_share"
        )
    hold = frame[rows].reset_index(drop=True)
    scores = holdout_scores(hold, models)
    if truth is not None and truth.usable:
        scores[CEILING] = truth.p_true[rows]
    table = evaluation_table(
        y,
        scores,
        cfg.thresholds.top_k,
        ceiling=CEILING if CEILING in scores else None,
        groups=hold["event_timestamp"].to_numpy(),
    )
    factors, segment = health_inputs(hold)
    bands = band_table(models.health.model.score(factors, segment), y, cfg.thresholds)
    X = feature_matrix(hold, models.columns)
    sample = X.sample(n=shap_sample, random_state=cfg.tuning.seed) if len(X) > shap_sample else X
    return Evaluation(
        rows=rows,
        y=y,
        scores=scores,
        table=table,
        health_log_loss=health_log_losses(hold, y, models.health),
        bands=bands,
        bands_ordered=bands_ordered(bands),
        explanation=explain(models.churn.model, sample),
    )


# -- identities ------------------------------------------------------------------------------
def raw_fingerprint(raw: Path) -> str:
    """SHA-256 over the bytes of the folder's contract files (the same data, the same print)."""
    digest = hashlib.sha256()
    for spec in contract.TABLES:
        path = Path(raw) / f"{spec.name}.parquet"
        if path.is_file():
            with path.open("rb") as f:
                digest.update(spec.name.encode() + hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()


def holdout_identity(
    fingerprint: str, cfg: ExperimentConfig, stamps: pd.Series, truth_only: bool
) -> str:
    """Names the evaluated rows: data, cadence, horizon, holdout dates, row count, truth subset.
    Two runs compare their metrics only when this is equal."""
    s = pd.to_datetime(stamps, utc=True)
    return (
        f"{fingerprint[:16]}/{cfg.cadence}/h{cfg.horizon_days}/"
        f"{s.min():%Y-%m-%d}..{s.max():%Y-%m-%d}/{len(s)}rows{'/truth' if truth_only else ''}"
    )


def training_digest(frame: pd.DataFrame, fingerprint: str) -> str:
    """A 32-character digest of the training rows (keys and labels) and the raw data."""
    keys = pd.util.hash_pandas_object(
        frame[["supplier_id", "event_timestamp", "label"]], index=False
    )
    return hashlib.sha256(fingerprint.encode() + keys.to_numpy().tobytes()).hexdigest()[:32]


# -- artifacts -------------------------------------------------------------------------------
def markdown_table(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-style markdown table (no extra dependency)."""
    header = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_churn_model_files(
    columns: list[str], churn: ChurnFit, cfg: ExperimentConfig, folder: Path
) -> list[Path]:
    """The churn model's companions of ``model.ubj``: calibrator, features, experiment."""
    folder.mkdir(parents=True, exist_ok=True)
    calibrator = folder / "calibrator.json"
    churn.calibrator.save(calibrator)
    features = folder / "features.json"
    features.write_text(
        json.dumps(
            {
                "feature_service": cfg.feature_service,
                "columns": columns,
                "categories": {
                    c: list(CATEGORIES[c]) for c in columns if FEATURES[c][1] == "category"
                },
            },
            indent=2,
        )
    )
    experiment = folder / "experiment.json"
    experiment.write_text(cfg.model_dump_json(indent=2))
    return [calibrator, features, experiment]


def write_health_model_files(health: HealthFit, cfg: ExperimentConfig, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "health_model.json").write_text(health.model.to_json())
    (folder / "experiment.json").write_text(cfg.model_dump_json(indent=2))
    return folder


def write_artifacts(evaluation: Evaluation, folder: Path) -> Path:
    """Tables (CSV and markdown) and figures (PNG) of the evaluation under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    evaluation.table.to_csv(folder / "evaluation.csv", index_label="model")
    (folder / "evaluation.md").write_text(markdown_table(evaluation.table))
    evaluation.bands.to_csv(folder / "health_bands.csv", index=False)
    (folder / "health_bands.md").write_text(markdown_table(evaluation.bands.set_index("band")))
    families = evaluation.family_importance.rename("mean_abs_shap")
    families.to_csv(folder / "shap_families.csv", index_label="family")
    (folder / "shap_families.md").write_text(markdown_table(families.to_frame()))
    evaluation.feature_importance.rename("mean_abs_shap").to_csv(
        folder / "shap_features.csv", index_label="feature"
    )
    figures = folder / "plots"
    plots.importance_bar(
        evaluation.feature_importance, figures / "shap_features.png", "Churn model: top features"
    )
    plots.importance_bar(families, figures / "shap_families.png", "Churn model: factor families")
    plots.shap_summary(
        evaluation.explanation.values,
        evaluation.explanation.features,
        figures / "shap_summary.png",
    )
    probabilities = {
        k: v
        for k, v in evaluation.scores.items()
        if k in ("churn_model", "health_calibrated", "fixed_weight_rule", CEILING)
    }
    plots.reliability(evaluation.y, probabilities, figures / "reliability.png")
    plots.precision_recall(evaluation.y, evaluation.scores, figures / "precision_recall.png")
    return folder


# -- MLflow ----------------------------------------------------------------------------------
def _flatten(data: dict, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def table_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Every cell of the evaluation table as ``holdout/<model>/<metric>``."""
    return {
        f"holdout/{model}/{metric}": float(value)
        for model, row in table.iterrows()
        for metric, value in row.items()
    }


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version, the run that produced it, and the gate's decision."""

    name: str
    version: str
    run_id: str
    model_uri: str
    artifact_uri: str
    model_location: str
    promotion: Promotion


@dataclass(frozen=True)
class RunContext:
    """What identifies a training run's data, shared by both runs."""

    raw: Path
    fingerprint: str
    holdout_id: str
    train_until: pd.Timestamp | None
    params: dict[str, str]
    dataset_digest: str
    metrics: dict[str, float]


SCHEMA_SAMPLE: Final = 2000


def training_columns(frame: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """The keys, the label and the experiment's services' columns (a frame may carry more: the
    champions' columns, for the promotion gate)."""
    columns = dict.fromkeys(
        [
            "supplier_id",
            "event_timestamp",
            "label",
            *service_columns(cfg.feature_service),
            *service_columns(cfg.health_service),
        ]
    )
    return frame[[c for c in columns if c in frame.columns]]


def _log_dataset(frame: pd.DataFrame, cfg: ExperimentConfig, ctx: RunContext) -> None:
    """``mlflow.log_input`` of the training set: its name, the raw folder as source, our digest,
    the row count, and the schema of a sample (MLflow would otherwise infer the schema value by
    value over every row, about 80 s per million rows; a sample has the same columns)."""
    import mlflow
    from mlflow.models import infer_signature

    with warnings.catch_warnings():  # file:// resolves to two identical local sources
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column")
        dataset = mlflow.data.from_pandas(
            frame,
            source=Path(ctx.raw).resolve().as_uri(),
            name=f"{cfg.name}_training_set",
            targets="label",
            digest=ctx.dataset_digest,
        )
        # ``schema`` is a functools.cached_property: a value set first is the one used
        dataset.__dict__["schema"] = infer_signature(frame.head(SCHEMA_SAMPLE)).inputs
        mlflow.log_input(
            dataset,
            context="training",
            tags={"feature_services": f"{cfg.feature_service},{cfg.health_service}"},
        )


def _common_tags(cfg: ExperimentConfig, ctx: RunContext) -> dict[str, str]:
    return {
        "metrics_of": "evaluation_fit",
        "model_files_of": "refit_on_all_labelled_rows",
        "experiment_config": cfg.name,
        "feature_service": cfg.feature_service,
        "health_service": cfg.health_service,
        "raw": str(Path(ctx.raw).resolve()),
        "raw_fingerprint": ctx.fingerprint,
        "holdout_id": ctx.holdout_id,
    }


def record_runs(
    frame: pd.DataFrame,
    models: TrainedModels,
    deployed: DeployedFit,
    evaluation: Evaluation,
    cfg: ExperimentConfig,
    ctx: RunContext,
    tracking_uri: str,
    artifact_root: Path,
    threads: int = 2,
) -> tuple[RegisteredVersion, RegisteredVersion]:
    """One run per model in the experiments ``churn`` and ``health_calibration``; register the
    models, and move each ``champion`` alias only when the new version wins on this holdout.

    The metrics are the evaluation fit's (``models``, tagged ``metrics_of``); the model files
    registered are the deployed refit's (``deployed``), the same configuration on every
    labelled row. The gate compares evaluation fits on one holdout, like for like.
    """
    import mlflow
    import xgboost as xgb

    from training.registry import configure, ensure_experiment

    client = configure(tracking_uri)
    metrics = table_metrics(evaluation.table)
    hold = frame[evaluation.rows].reset_index(drop=True)
    holdout_start = pd.to_datetime(hold["event_timestamp"], utc=True).min()
    with tempfile.TemporaryDirectory(prefix="cs-train-") as tmp:
        work = Path(tmp)
        reports = write_artifacts(evaluation, work / "reports")

        # churn
        experiment = ensure_experiment(client, CHURN_MODEL, artifact_root)
        with mlflow.start_run(experiment_id=experiment, run_name=f"{cfg.name}-churn") as run:
            mlflow.set_tags(_common_tags(cfg, ctx))
            _log_dataset(training_columns(frame, cfg), cfg, ctx)
            tuning = models.churn.tuning
            mlflow.log_params(
                {
                    **ctx.params,
                    **{f"best.{k}": str(v) for k, v in tuning.params.items()},
                    "tuning.rounds": str(tuning.rounds),
                    "tuning.trials_run": str(tuning.trials_run),
                    "tuning.trials_pruned": str(tuning.trials_pruned),
                    "tuning.chosen": tuning.chosen,
                    "promotion_metric": PROMOTION_METRIC,
                }
            )
            mlflow.log_metrics(
                {
                    **metrics,
                    **ctx.metrics,
                    "tuning/fold_log_loss": tuning.fold_log_loss,
                    "tuning/fixed_fold_log_loss": tuning.fixed.log_loss,
                    **{
                        f"tuning/fold_{i}/log_loss": v
                        for i, v in enumerate(tuning.kept.fold_losses)
                    },
                    **{
                        f"tuning/fold_{i}/rounds": v for i, v in enumerate(tuning.kept.fold_rounds)
                    },
                    **{
                        f"shap/{fam}/mean_abs": float(v)
                        for fam, v in evaluation.family_importance.items()
                    },
                }
            )
            mlflow.log_artifacts(str(reports))
            logged = {}
            for label, fit in (("", deployed.churn), (EVALUATION_SUFFIX, models.churn)):
                extra = write_churn_model_files(
                    models.columns, fit, cfg, work / f"churn_files{label}"
                )
                logged[label] = mlflow.xgboost.log_model(
                    fit.model,
                    name=f"{CHURN_MODEL}{label}",
                    model_format="ubj",
                    extra_files=[str(p) for p in extra],
                    pip_requirements=[f"xgboost=={xgb.__version__}"],
                    metadata={
                        "feature_service": cfg.feature_service,
                        "holdout_id": ctx.holdout_id,
                    },
                )
            info = logged[""]
            churn = _register_and_gate(
                client,
                CHURN_MODEL,
                info.model_uri,
                run.info.run_id,
                run.info.artifact_uri,
                float(evaluation.table.loc["churn_model", PROMOTION_METRIC]),
                ctx,
                champion_scorer(client, CHURN_MODEL, hold, evaluation.y, holdout_start, threads),
                logged[EVALUATION_SUFFIX].model_uri,
            )

        # health calibration
        experiment = ensure_experiment(client, HEALTH_MODEL, artifact_root)
        with mlflow.start_run(experiment_id=experiment, run_name=f"{cfg.name}-health") as run:
            mlflow.set_tags(
                {
                    **_common_tags(cfg, ctx),
                    "health_relearned": str(deployed.health.model.relearned).lower(),
                }
            )
            _log_dataset(training_columns(frame, cfg), cfg, ctx)
            mlflow.log_params(
                {
                    **ctx.params,
                    "health.relearned": str(deployed.health.model.relearned),
                    **{
                        f"health.weights.{segment}": ",".join(f"{w:.4f}" for w in weights)
                        for segment, weights in deployed.health.model.weights.items()
                    },
                    "promotion_metric": PROMOTION_METRIC,
                }
            )
            mlflow.log_metrics(
                {
                    **metrics,
                    **{
                        f"holdout/health_{k}/log_loss": v
                        for k, v in evaluation.health_log_loss.items()
                    },
                    **{
                        f"calibration/health_{k}/log_loss": v
                        for k, v in models.health.calibration_log_loss.items()
                    },
                    **{
                        f"bands/{r.band}/{m}": float(getattr(r, m))
                        for r in evaluation.bands.itertuples()
                        for m in ("rows", "churn_rate")
                    },
                    "bands/ordered": float(evaluation.bands_ordered),
                }
            )
            mlflow.log_artifacts(str(reports))
            health_uris = {}
            for label, fit in (("", deployed.health), (EVALUATION_SUFFIX, models.health)):
                folder = write_health_model_files(fit, cfg, work / f"health_model{label}")
                logged_health = mlflow.initialize_logged_model(
                    name=f"{HEALTH_MODEL}{label}",
                    source_run_id=run.info.run_id,
                    experiment_id=experiment,
                    model_type="health_calibration",
                    tags={"format": "json"},
                )
                client.log_model_artifacts(logged_health.model_id, str(folder))
                mlflow.finalize_logged_model(logged_health.model_id, "READY")
                health_uris[label] = f"models:/{logged_health.model_id}"
            health = _register_and_gate(
                client,
                HEALTH_MODEL,
                health_uris[""],
                run.info.run_id,
                run.info.artifact_uri,
                float(evaluation.table.loc["health_calibrated", PROMOTION_METRIC]),
                ctx,
                champion_scorer(client, HEALTH_MODEL, hold, evaluation.y, holdout_start, threads),
                health_uris[EVALUATION_SUFFIX],
            )
    return churn, health


def champion_scorer(
    client,
    name: str,
    hold: pd.DataFrame,
    y: np.ndarray,
    holdout_start: pd.Timestamp,
    threads: int = 2,
) -> ChampionScorer:
    """Scores a registered version of ``name`` on this run's holdout rows ``hold`` (log loss).

    A champion whose features this training set lacks (another feature service) cannot be
    scored. One whose training labels reach into the holdout has seen some of its outcomes: it
    is still scored, and the note says its figure is optimistic (the gate then favours it).
    """

    def score(version) -> ChampionScore:
        try:
            return _score(version)
        except Exception as err:  # the champion keeps its alias; the reason names the error
            log.warning("cannot score %s v%s on this holdout: %s", name, version.version, err)
            return ChampionScore(None, f"{type(err).__name__}: {err}")

    def _score(version) -> ChampionScore:
        from training.predict import load_churn_model, load_health_model

        # like for like: the champion's evaluation fit, when it was logged (older versions were
        # their own evaluation fit)
        evaluation_uri = (version.tags or {}).get(EVALUATION_FIT_TAG)
        uri = evaluation_uri or f"models:/{name}/{version.version}"
        if name == CHURN_MODEL:
            churn = load_churn_model(uri, threads=threads)
            missing = sorted(set(churn.columns) - set(hold.columns))
            if missing:
                return ChampionScore(
                    None, f"it reads {len(missing)} features this training set lacks: {missing}"
                )
            p, config = churn.predict(hold), churn.config
        else:
            health = load_health_model(uri)
            factors, segment = health_inputs(hold)
            p, config = health.model.churn_probability(factors, segment), health.config
        value = float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
        run_id = version_run_id(version)
        params = client.get_run(run_id).data.params if run_id else {}
        window = "split.calibration.to" if evaluation_uri else "refit.calibration.to"
        fitted_to = params.get(window, params.get("split.calibration.to"))
        if fitted_to is None:
            return ChampionScore(value, "its training window is not recorded")
        labels_end = pd.Timestamp(fitted_to, tz="UTC") + pd.Timedelta(days=config.horizon_days)
        if labels_end >= holdout_start:
            return ChampionScore(
                value,
                f"its training labels reach {labels_end:%Y-%m-%d}, into this holdout, so its "
                "figure is optimistic",
            )
        return ChampionScore(value)

    return score


def _register_and_gate(
    client,
    name: str,
    model_uri: str,
    run_id: str,
    artifact_uri: str,
    value: float,
    ctx: RunContext,
    rescore: ChampionScorer,
    evaluation_uri: str,
) -> RegisteredVersion:
    """Register the deployed refit at ``model_uri``, tagged with its evaluation fit's URI (what
    a later gate re-scores), and gate it."""
    import mlflow

    from training.registry import promote_if_better

    version = mlflow.register_model(
        model_uri,
        name,
        tags={
            "run_id": run_id,
            "raw_fingerprint": ctx.fingerprint,
            EVALUATION_FIT_TAG: evaluation_uri,
        },
    )
    promotion = promote_if_better(
        client, name, version.version, PROMOTION_METRIC, value, False, ctx.holdout_id, rescore
    )
    mlflow.set_tags(
        {
            "model_version": str(version.version),
            "promoted": str(promotion.promoted).lower(),
            "promotion": promotion.reason,
        }
    )
    log.info("%s v%s: %s", name, version.version, promotion.reason)
    return RegisteredVersion(
        name=name,
        version=str(version.version),
        run_id=run_id,
        model_uri=model_uri,
        artifact_uri=artifact_uri,
        model_location=mlflow.get_logged_model(
            model_uri.removeprefix("models:/")
        ).artifact_location,
        promotion=promotion,
    )


# -- the job ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSpan:
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; the CLI prints it, tests inspect it."""

    config: ExperimentConfig
    rows: int
    suppliers: int
    dropped_without_features: int
    splits: dict[str, SplitSpan]
    tuning: TuningResult
    evaluation: pd.DataFrame
    evaluated_rows: int
    evaluated_positives: int
    truth_source: str | None
    truth_note: str | None
    rows_without_truth: int
    holdout_rows_without_truth: int
    health_relearned: bool
    health_holdout_log_loss: dict[str, float]
    health_calibration_log_loss: dict[str, float]
    bands: pd.DataFrame
    bands_ordered: bool
    families: pd.Series
    holdout_id: str
    train_until: pd.Timestamp | None
    churn: RegisteredVersion
    health: RegisteredVersion
    tracking_uri: str
    artifact_root: Path
    window: TrainingWindow | None
    refit_check: RefitCheck | None
    refit_splits: dict[str, SplitSpan]


def _check_metrics(check: RefitCheck | None) -> dict[str, float]:
    if check is None:
        return {}
    return {
        f"refit_check/{fit}/{metric}": float(value)
        for fit, row in check.table.iterrows()
        for metric, value in row.items()
    }


def _window_params(window: TrainingWindow) -> dict[str, str]:
    h = window.history
    return {
        "window.history_start": str(h.start),
        "window.first_signup": str(h.first_signup),
        "window.accounts_older_than_history": str(h.signed_up_before),
        "window.first_cancellation": str(h.first_cancellation),
        "window.rows_left_out": str(window.rows_left_out),
    }


def _span(stamps: pd.Series, mask: np.ndarray) -> SplitSpan:
    s = stamps[mask]
    return SplitSpan(rows=int(mask.sum()), first=s.min(), last=s.max())


def _span_params(prefix: str, spans: dict) -> dict[str, str]:
    """MLflow parameters of named row spans: ``<prefix>.<name>.rows|from|to``."""
    return {
        f"{prefix}.{name}.{key}": str(value)
        for name, span in spans.items()
        for key, value in (
            ("rows", span.rows),
            ("from", f"{span.first:%Y-%m-%d}"),
            ("to", f"{span.last:%Y-%m-%d}"),
        )
    }


def run_training(
    frame: pd.DataFrame,
    cfg: ExperimentConfig,
    *,
    raw: Path,
    tracking_uri: str,
    artifact_root: Path,
    train_until: pd.Timestamp | None = None,
    threads: int = 2,
    window: TrainingWindow | None = None,
) -> TrainResult:
    """Fit, evaluate, explain, refit on every row, record and gate, on one training frame.

    Args:
        frame: ``supplier_id``, ``event_timestamp`` (UTC), ``label`` and the columns of the
            experiment's churn and health services, every label observed; it may also hold the
            current champions' columns, with which the promotion gate scores them.
        raw: the raw folder the frame comes from (fingerprinted; its truth is used when found).
        window: the observation window that chose the frame's rows (recorded and printed).
    """
    frame = frame.sort_values(["event_timestamp", "supplier_id"], kind="stable")
    has_features = frame["health_score"].notna().to_numpy()
    dropped = int((~has_features).sum())
    if dropped:
        log.warning("%d training rows have no feature row and are left out", dropped)
    frame = frame[has_features].reset_index(drop=True)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)

    truth_path = find_truth(raw)
    truth, note = None, None
    if truth_path is not None:
        truth = join_truth(frame, pd.read_parquet(truth_path), str(truth_path))
        if truth.label_mismatches:
            note = (
                f"{truth.label_mismatches:,} rows' truth labels differ from the training labels "
                f"(truth simulated for another horizon?): no ceiling"
            )
        elif not truth.matched.any():
            note = (
                "no truth row falls on a training instant (truth is estimated at week "
                "boundaries of the simulation; weekly snapshots are Mondays 00:00 UTC): "
                "no ceiling"
            )
        if note:
            log.warning(note)

    log.info("fitting on %d rows (%d suppliers)", len(frame), frame["supplier_id"].nunique())
    models = fit_models(frame, service_columns(cfg.feature_service), cfg, threads)
    split = models.churn.split
    evaluation = evaluate_holdout(frame, models, cfg, truth)
    X = feature_matrix(frame, models.columns)
    y = frame["label"].to_numpy(int)
    log.info("refit check on the later half of the holdout")
    check = refit_check(X, y, stamps, evaluation.rows, models.churn, cfg, threads)
    log.info("refitting on all %d labelled rows", len(frame))
    factors, segment = health_inputs(frame)
    deployed = deployed_fit(X, y, stamps, factors, segment, models.churn, cfg, threads)
    del X, factors, segment
    usable = truth is not None and truth.usable
    fingerprint = raw_fingerprint(raw)
    holdout_id = holdout_identity(fingerprint, cfg, stamps[evaluation.rows], usable)
    splits = {
        "trees": _span(stamps, split.trees),
        "calibration": _span(stamps, split.calibration),
        "holdout": _span(stamps, split.holdout),
    }
    refit_splits = {
        "trees": _span(stamps, deployed.churn.split.trees),
        "calibration": _span(stamps, deployed.churn.split.calibration),
    }
    params = {
        **_flatten(cfg.model_dump(), "experiment."),
        "data.raw": str(Path(raw).resolve()),
        "data.rows": str(len(frame)),
        "data.suppliers": str(frame["supplier_id"].nunique()),
        "data.first_snapshot": f"{stamps.min():%Y-%m-%d %H:%M}",
        "data.last_snapshot": f"{stamps.max():%Y-%m-%d %H:%M}",
        "data.train_until": "end of data" if train_until is None else f"{train_until}",
        "data.truth": str(truth_path) if usable else "none",
        "data.evaluated_rows": str(int(evaluation.rows.sum())),
        **_span_params("split", splits),
        **_span_params("refit", refit_splits),
        **(_window_params(window) if window is not None else {}),
    }
    ctx = RunContext(
        raw=Path(raw),
        fingerprint=fingerprint,
        holdout_id=holdout_id,
        train_until=train_until,
        params=params,
        dataset_digest=training_digest(frame, fingerprint),
        metrics=_check_metrics(check),
    )
    churn, health = record_runs(
        frame, models, deployed, evaluation, cfg, ctx, tracking_uri, artifact_root, threads
    )
    missing = (~truth.matched) if truth is not None else np.zeros(len(frame), bool)
    return TrainResult(
        config=cfg,
        rows=len(frame),
        suppliers=int(frame["supplier_id"].nunique()),
        dropped_without_features=dropped,
        splits=splits,
        tuning=models.churn.tuning,
        evaluation=evaluation.table,
        evaluated_rows=int(evaluation.rows.sum()),
        evaluated_positives=int(evaluation.y.sum()),
        truth_source=str(truth_path) if truth_path is not None else None,
        truth_note=note,
        rows_without_truth=int(missing.sum()) if truth is not None else 0,
        holdout_rows_without_truth=int((missing & split.holdout).sum()),
        health_relearned=models.health.model.relearned,
        health_holdout_log_loss=evaluation.health_log_loss,
        health_calibration_log_loss=models.health.calibration_log_loss,
        bands=evaluation.bands,
        bands_ordered=evaluation.bands_ordered,
        families=evaluation.family_importance,
        holdout_id=holdout_id,
        train_until=train_until,
        churn=churn,
        health=health,
        tracking_uri=tracking_uri,
        artifact_root=Path(artifact_root),
        window=window,
        refit_check=check,
        refit_splits=refit_splits,
    )
