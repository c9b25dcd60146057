"""``wedsync-cs monitor uplift``: per intervention type, an uplift model learned from the rule
engine's randomised executions, judged against random targeting on later executions, and the
decision the worklist reads (rank by expected saved LTV, or keep ranking by risk).

The units. Each supplier's *first* execution of each intervention type decided by a rule
(``rule_id`` set: not a manual trigger, a bulk campaign or an export), by decision ``day`` (the
data's day the rules ran for), whose 30 days have passed by ``as_of``: ``day + 30 <= as_of``.
``treatment`` is 1 when the execution was to contact the supplier, 0 when the supplier is in the
randomised control group (``control_group``, status ``held_out``: nothing was sent); the
control group is a fixed random share of suppliers, so within a type the two arms differ only
by chance (intention to treat: a contact that failed to reach the supplier stays contacted).
``y`` is 1 when the supplier cancelled by the end of the 30 days after the decision day's end
(``cancelled_at <= day + 1 + 30 days``, 00:00 UTC; one already cancelled counts as churned).

The features. The champion churn model's columns of the supplier's feature row of the decision
day (stamped ``day + 1`` 00:00 UTC), or of the newest row up to
:data:`FEATURE_TOLERANCE_DAYS` before it (older history keeps weekly rows only); a unit
without one is left out. Categorical columns are ordinal codes of the feature catalogue's fixed
levels (``features.catalog.CATEGORIES``: the same code for the same level on every run and
every batch; a missing or unknown level is NaN, which XGBoost routes), booleans 0/1, the rest
floats. :data:`CHURN_PROBABILITY`, the champion's churn probability of the row, is one more
column.

The judgement. Per type, a time split: the earlier 70 % of the distinct decision days train,
the later 30 % judge, so no judged unit was seen by the model. With fewer than
:class:`ArmMinimum` contacted or held-out units in training (or too few in the judged part)
no model is fitted and targeting stays off, the reason saying how many there are and how many
are needed. Otherwise :class:`monitoring.uplift.TLearnerUplift` (:data:`UPLIFT_PARAMS`) is
fitted on the earlier units and :func:`monitoring.uplift.beats_random` (a bootstrap of whole
suppliers) judges its ranking on the later ones: targeting is on for the type exactly when the
Qini coefficient's 95 % interval is above 0. The fitted model (the one judged, not a refit) is
saved with :func:`monitoring.uplift.save` under ``CS_HOME/models/uplift/<type>/``.

The files. ``CS_HOME/models/uplift/decision.json`` (:func:`decision_document`: per type on/off,
the reason, the model's folder, when it was trained and on which days), and
``CS_HOME/models/uplift/scores-<day>.parquet`` for the newest scored day: per active supplier
and fitted type, the predicted uplift, the LTV (``serving.advice.ltv``) and their product, the
expected saved LTV (:data:`SCORES_SCHEMA`), which ``serving.worklist`` ranks by when the
decision is on (a Parquet file rather than a table, so that no migration is needed; the
decision names it). ``CS_HOME/reports/uplift-<as of>.json`` is the list of per-type records
(:func:`type_record`) that ``monitoring.report`` shows; the metrics and both JSON files are
logged to the champion's MLflow run (no pickle anywhere).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from wedsync_cs.settings import Settings

if TYPE_CHECKING:
    from monitoring.uplift import TLearnerUplift

HORIZON_DAYS: Final = 30
TRAIN_SHARE: Final = 0.7  # the earlier share of decision days that trains
FEATURE_TOLERANCE_DAYS: Final = 7
MAX_CURVE_POINTS: Final = 101
KEEP_SCORES: Final = 7  # the newest scores files kept (one per scored day the job ran for)
N_BOOT: Final = 200
SEED: Final = 20261203
CHURN_PROBABILITY: Final = "churn_probability"
STAMP: Final = "datetime64[ns, UTC]"  # one resolution for the point-in-time join's keys
# Shallow trees: each arm's model is an ordinary churn model, and the uplift is the small
# difference of two. A leaf needs a hessian of 5 (about 25 to 50 suppliers at churn rates of
# 10 to 30 %): enough against noise, while a control arm of the minimum 50 can still split
# (20 left it a constant, and the Qini of a constant is 0). One XGBoost thread: the samples are
# small, and two threads on a busy two-core machine are many times slower
# (tests/model/test_uplift.py).
UPLIFT_PARAMS: Final[dict[str, Any]] = {
    "n_estimators": 100,
    "max_depth": 2,
    "learning_rate": 0.05,
    "min_child_weight": 5.0,
    "subsample": 1.0,
    "n_jobs": 1,
    "random_state": 0,
}
SCORES_SCHEMA: Final = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("day", pa.date32()),
        ("intervention_type", pa.string()),
        ("uplift", pa.float64()),  # P(churn | not contacted) - P(churn | contacted)
        ("ltv", pa.float64()),
        ("expected_saved_ltv", pa.float64()),  # uplift x LTV
    ]
)


@dataclass(frozen=True)
class ArmMinimum:
    """The fewest units per arm before a model is fitted (``treated`` contacted and ``control``
    held out, in the training days) and judged (``test_treated``, ``test_control``, in the
    later days).

    200 contacted and 50 held-out units in training: with a 10 % control group, 50 held out
    means about 500 decided executions of the type, and fewer leave each arm's churn model with
    a handful of churners. The judged part needs 50 and 20: the bootstrap interval of fewer is
    too wide to conclude anything.
    """

    treated: int = 200
    control: int = 50
    test_treated: int = 50
    test_control: int = 20


def load_arm_minimum(path: Path | None = None) -> ArmMinimum:
    """The ``uplift`` section of ``experiments/monitoring.yaml``: the fewest units per arm.

    Raises:
        ValueError: the file or the section is missing or wrong (named).
    """
    import yaml

    from monitoring.outcomes import MONITORING_CONFIG

    path = path or MONITORING_CONFIG
    try:
        raw = (yaml.safe_load(path.read_text()) or {}).get("uplift")
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the uplift minimums in {path}: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} has no uplift section")
    names = {f.name for f in fields(ArmMinimum)}
    unknown = sorted(set(raw) - names)
    wrong = sorted(k for k in names & set(raw) if not isinstance(raw[k], int) or raw[k] < 1)
    if unknown or wrong or set(raw) != names:
        raise ValueError(
            f"{path}: uplift needs positive whole numbers for {sorted(names)}; "
            f"unknown {unknown}, wrong {wrong}, missing {sorted(names - set(raw))}"
        )
    return ArmMinimum(**raw)


# -- the units -------------------------------------------------------------------------------
def uplift_units(
    executions: pd.DataFrame,
    suppliers: pd.DataFrame,
    as_of: date,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Each supplier's first rule-decided execution of each type, with its arm and outcome.

    Args:
        executions: ``supplier_id``, ``intervention_type``, ``day`` (the decision day),
            ``control_group`` and ``rule_id`` (None: manual, bulk or export; left out).
        suppliers: ``supplier_id`` and ``cancelled_at`` (UTC instants, NaT: still there).
        as_of: the last day whose cancellations are known.

    Returns:
        One row per unit: ``supplier_id``, ``intervention_type``, ``day`` (a date),
        ``treatment`` (0/1), ``matured`` (its horizon has ended by the end of ``as_of``) and
        ``y`` (0/1, NA while not matured), sorted by day, type and supplier.
    """
    columns = ["supplier_id", "intervention_type", "day", "treatment", "matured", "y"]
    rows = executions[executions["rule_id"].notna() & executions["day"].notna()]
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    rows = rows.assign(day=pd.to_datetime(rows["day"]).dt.normalize())
    first = (
        rows.sort_values(["day", "rule_id"], kind="stable")
        .drop_duplicates(["supplier_id", "intervention_type"], keep="first")
        .merge(suppliers[["supplier_id", "cancelled_at"]], on="supplier_id", how="left")
    )
    day_end = first["day"].dt.tz_localize(UTC) + pd.Timedelta(days=1)
    horizon_end = day_end + pd.Timedelta(days=horizon_days)
    cancelled = pd.to_datetime(first["cancelled_at"], utc=True)
    matured = (first["day"] + pd.Timedelta(days=horizon_days)).dt.date <= as_of
    churned = (cancelled <= horizon_end).fillna(False).astype("Int8")
    units = pd.DataFrame(
        {
            "supplier_id": first["supplier_id"].astype(str),
            "intervention_type": first["intervention_type"].astype(str),
            "day": first["day"].dt.date,
            "treatment": (~first["control_group"].astype(bool)).astype(np.int64),
            "matured": matured.to_numpy(),
            "y": churned.where(matured, pd.NA),
        }
    )
    return units.sort_values(["day", "intervention_type", "supplier_id"]).reset_index(drop=True)


def encode_features(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The uplift model's numeric input: catalogue categories as ordinal codes of their fixed
    levels (NaN for a missing or unknown level), booleans 0/1, everything else as float.

    Raises:
        KeyError: a column is missing.
        ValueError: a text column the catalogue has no levels for (no fixed coding).
    """
    from features.catalog import CATEGORIES

    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise KeyError(f"feature columns missing from the rows: {missing}")
    out: dict[str, np.ndarray] = {}
    for name in columns:
        column = rows[name]
        if name in CATEGORIES:
            codes = pd.Categorical(column.astype(object), categories=CATEGORIES[name]).codes
            out[name] = np.where(codes < 0, np.nan, codes).astype(np.float64)
        elif pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
            out[name] = pd.to_numeric(column).astype("float64").to_numpy()
        else:
            raise ValueError(f"column {name!r} is text without catalogue levels: cannot code it")
    return pd.DataFrame(out, index=rows.index)


def with_features(
    units: pd.DataFrame,
    rows: pd.DataFrame,
    columns: list[str],
    tolerance_days: int = FEATURE_TOLERANCE_DAYS,
) -> pd.DataFrame:
    """``units`` with the encoded ``columns`` of each unit's feature row: the row stamped at the
    end of its decision day, or the newest up to ``tolerance_days`` older; units without one
    are left out.

    Args:
        units: :func:`uplift_units`' rows.
        rows: feature rows, ``supplier_id``, ``event_timestamp`` (UTC) and ``columns``.
    """
    if units.empty:
        return units.assign(**{c: pd.Series(dtype=float) for c in columns})
    encoded = encode_features(rows, columns)
    stamps = pd.to_datetime(rows["event_timestamp"], utc=True).astype(STAMP)
    right = pd.concat([rows[["supplier_id"]].astype(str), stamps], axis=1).join(encoded)
    right = right.drop_duplicates(["supplier_id", "event_timestamp"], keep="last")
    left = units.assign(
        stamp=(pd.to_datetime(units["day"]).dt.tz_localize(UTC) + pd.Timedelta(days=1)).astype(
            STAMP
        )
    )
    joined = pd.merge_asof(
        left.sort_values("stamp"),
        right.sort_values("event_timestamp"),
        left_on="stamp",
        right_on="event_timestamp",
        by="supplier_id",
        direction="backward",
        tolerance=pd.Timedelta(days=tolerance_days),
    )
    joined = joined[joined["event_timestamp"].notna()].drop(columns=["stamp", "event_timestamp"])
    return joined.sort_values(["day", "intervention_type", "supplier_id"]).reset_index(drop=True)


def training_frame(
    executions: pd.DataFrame,
    suppliers: pd.DataFrame,
    rows: pd.DataFrame,
    columns: list[str],
    as_of: date,
) -> pd.DataFrame:
    """The matured units (:func:`uplift_units`) with their features (:func:`with_features`):
    ``supplier_id``, ``intervention_type``, ``day``, ``treatment``, ``y`` and ``columns``."""
    units = uplift_units(executions, suppliers, as_of)
    matured = units[units["matured"].astype(bool)].drop(columns="matured")
    matured = matured.assign(y=matured["y"].astype(np.int64))
    return with_features(matured, rows, columns)


def time_split(days: pd.Series, train_share: float = TRAIN_SHARE) -> date | None:
    """The last training day: the earlier ``train_share`` of the distinct decision days train
    (at least one, and at least one is left to judge); None with fewer than two days."""
    distinct = sorted(set(days))
    if len(distinct) < 2:
        return None
    n_train = min(max(1, math.floor(train_share * len(distinct))), len(distinct) - 1)
    return distinct[n_train - 1]


# -- one type ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TypeOutcome:
    """One type's judgement: its report record, the fitted model (None: not enough units)
    and the judged units with their predicted ``uplift`` (empty without a model)."""

    record: dict[str, Any]
    model: TLearnerUplift | None
    judged: pd.DataFrame


def _arms(frame: pd.DataFrame) -> tuple[int, int]:
    treated = int(frame["treatment"].sum())
    return treated, len(frame) - treated


def _shortfall(treated: int, control: int, need_treated: int, need_control: int) -> list[str]:
    short = []
    if treated < need_treated:
        short.append(f"{treated} contacted, {need_treated} needed")
    if control < need_control:
        short.append(f"{control} held out, {need_control} needed")
    return short


def downsample_curve(curve: pd.DataFrame, max_points: int = MAX_CURVE_POINTS) -> dict:
    """The Qini curve as the report draws it, at most ``max_points`` points (evenly spaced
    over the curve's points, first and last kept): ``fraction`` targeted, and ``model`` and
    ``random`` in churns prevented per contacted supplier of the sample (the normalisation
    of the Qini coefficient, so the area between them is the coefficient)."""
    take = np.unique(np.linspace(0, len(curve) - 1, min(max_points, len(curve))).round())
    points = curve.iloc[take.astype(int)]
    contacted = max(float(curve["treated"].iloc[-1]), 1.0)
    return {
        "fraction": [round(float(v), 6) for v in points["fraction"]],
        "model": [round(float(v) / contacted, 6) for v in points["prevented"]],
        "random": [round(float(v) / contacted, 6) for v in points["random"]],
    }


def evaluate_type(
    frame: pd.DataFrame,
    columns: list[str],
    intervention_type: str,
    *,
    minimum: ArmMinimum = ArmMinimum(),
    params: dict[str, Any] | None = None,
    n_pending: int = 0,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> TypeOutcome:
    """Split one type's matured units by time, fit on the earlier, judge on the later.

    Args:
        frame: the type's units (:func:`training_frame`'s rows of one type, or any frame with
            ``supplier_id``, ``day``, ``treatment``, ``y`` and ``columns``).
        columns: the model's input columns (numeric).
        n_pending: the type's units still within their 30 days (for the reason).
    """
    from monitoring.uplift import TLearnerUplift, beats_random, qini_curve

    record: dict[str, Any] = {
        "intervention_type": intervention_type,
        "n_units": len(frame),
        "n_pending": n_pending,
        "n_train": 0,
        "n_test": 0,
        "n_train_contacted": 0,
        "n_train_held_out": 0,
        "n_test_contacted": 0,
        "n_test_held_out": 0,
        "train_days": None,
        "test_days": None,
        "qini_coefficient": None,
        "ci_low": None,
        "ci_high": None,
        "beats_random": False,
        "targeting": False,
        "reason": "",
        "curve": None,
    }
    empty = frame.iloc[:0].assign(uplift=pd.Series(dtype=float))

    def off(reason: str) -> TypeOutcome:
        return TypeOutcome(record | {"reason": reason}, None, empty)

    pending = f"; {n_pending} more within their {HORIZON_DAYS} days" if n_pending else ""
    cut = time_split(frame["day"]) if len(frame) else None
    if cut is None:
        treated, control = _arms(frame)
        short = _shortfall(treated, control, minimum.treated, minimum.control)
        if short:
            return off(f"not enough randomised executions yet: {'; '.join(short)}{pending}")
        return off(f"all {len(frame)} executions were decided on one day: a time split needs two")
    early = frame["day"] <= cut
    train, test = frame[early], frame[~early]
    (t_train, c_train), (t_test, c_test) = _arms(train), _arms(test)
    record.update(
        n_train=len(train),
        n_test=len(test),
        n_train_contacted=t_train,
        n_train_held_out=c_train,
        n_test_contacted=t_test,
        n_test_held_out=c_test,
        train_days=[str(min(train["day"])), str(max(train["day"]))],
        test_days=[str(min(test["day"])), str(max(test["day"]))],
    )
    short = _shortfall(t_train, c_train, minimum.treated, minimum.control)
    if short:
        return off(
            f"not enough randomised executions yet: {'; '.join(short)} in training{pending}"
        )
    short = _shortfall(t_test, c_test, minimum.test_treated, minimum.test_control)
    if short:
        return off(f"too few later executions to judge a model: {'; '.join(short)}{pending}")
    model = TLearnerUplift(
        **(UPLIFT_PARAMS if params is None else params),
        min_rows_per_arm=1,
        intervention_type=intervention_type,
    )
    try:
        model.fit(
            train[columns],
            train["y"].to_numpy(),
            train["treatment"].to_numpy(),
            training_window=tuple(record["train_days"]),
        )
    except ValueError as err:
        return off(f"cannot fit the uplift model: {err}")
    uplift = model.predict_uplift(test[columns])
    y, t = test["y"].to_numpy(), test["treatment"].to_numpy()
    verdict = beats_random(
        uplift, y, t, n_boot=n_boot, seed=seed, groups=test["supplier_id"].to_numpy()
    )
    record.update(
        qini_coefficient=verdict.qini,
        ci_low=verdict.ci_low,
        ci_high=verdict.ci_high,
        beats_random=verdict.beats,
        targeting=verdict.beats,
        reason=verdict.reason,
        curve=downsample_curve(qini_curve(uplift, y, t)),
    )
    return TypeOutcome(record, model, test.assign(uplift=uplift))


def uplift_scores(
    models: dict[str, TLearnerUplift],
    rows: pd.DataFrame,
    columns: list[str],
    monthly_revenue: pd.Series,
    day: date,
) -> pd.DataFrame:
    """Per supplier of ``rows`` (one feature row each, already with :data:`CHURN_PROBABILITY`)
    and per fitted type, the predicted uplift, the LTV and the expected saved LTV, in
    :data:`SCORES_SCHEMA`'s columns. ``monthly_revenue`` is indexed by supplier id."""
    from serving.advice import ltv

    X = encode_features(rows, columns)
    value = ltv(monthly_revenue.reindex(rows["supplier_id"].astype(str)).to_numpy())
    parts = []
    for kind, model in sorted(models.items()):
        uplift = model.predict_uplift(X)
        parts.append(
            pd.DataFrame(
                {
                    "supplier_id": rows["supplier_id"].astype(str).to_numpy(),
                    "day": day,
                    "intervention_type": kind,
                    "uplift": uplift,
                    "ltv": value,
                    "expected_saved_ltv": uplift * value,
                }
            )
        )
    if not parts:
        return SCORES_SCHEMA.empty_table().to_pandas()
    return pd.concat(parts, ignore_index=True)


def decision_document(
    records: list[dict[str, Any]],
    as_of: date,
    trained_at: datetime,
    scores: tuple[date, str] | None,
    scores_note: str | None = None,
) -> dict[str, Any]:
    """``decision.json``: per type whether the worklist may rank by its uplift, why, the model's
    folder (relative to the decision file's, None without a model), when and on which days it
    was trained and judged; and the scores file of the newest scored day."""
    from serving.worklist import UPLIFT_DECISION_FORMAT

    return {
        "format": UPLIFT_DECISION_FORMAT,
        "as_of": str(as_of),
        "trained_at": trained_at.isoformat(),
        "horizon_days": HORIZON_DAYS,
        "types": {
            r["intervention_type"]: {
                "targeting": bool(r["targeting"]),
                "reason": r["reason"],
                "model": r.get("model_path"),
                "trained_at": trained_at.isoformat() if r.get("model_path") else None,
                "span": {"train": r["train_days"], "test": r["test_days"]},
                "qini_coefficient": r["qini_coefficient"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
            }
            for r in records
        },
        "scores": None if scores is None else {"day": str(scores[0]), "file": scores[1]},
        "scores_note": scores_note,
    }


# -- the job (IO) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpliftRun:
    as_of: date
    records: list[dict[str, Any]]  # one per intervention type (the report's list)
    decision: Path
    report: Path
    scores: Path | None
    run_id: str | None

    @property
    def on(self) -> list[str]:
        return [r["intervention_type"] for r in self.records if r["targeting"]]


def _read_feature_rows(
    table: Path, columns: list[str], suppliers: list[str], first: date, last: date
) -> pd.DataFrame:
    """Feature rows of ``suppliers`` stamped from ``first`` + 1 - tolerance to ``last`` + 1."""
    import pyarrow.parquet as pq

    start = pd.Timestamp(first + timedelta(days=1 - FEATURE_TOLERANCE_DAYS), tz="UTC")
    end = pd.Timestamp(last + timedelta(days=1), tz="UTC")
    return pq.read_table(
        table,
        columns=["supplier_id", "event_timestamp", *columns],
        filters=[
            ("event_timestamp", ">=", start),
            ("event_timestamp", "<=", end),
            ("supplier_id", "in", suppliers),
        ],
    ).to_pandas()


def run_uplift(
    settings: Settings, as_of: date | None = None, min_units: ArmMinimum | None = None
) -> UpliftRun:
    """Fit, judge and record the uplift model of every intervention type (module docstring).

    Raises:
        LookupError: no champion, or nothing scored yet.
        DatabaseNotReadyError: the operational database is missing or outdated.
    """
    from mlflow.tracking import MlflowClient
    from sqlalchemy import func, select

    from features.contract import INTERVENTION_TYPES
    from monitoring.uplift import save
    from serving.db.migrate import require_current
    from serving.db.models import ChurnPrediction, InterventionExecution, Supplier
    from serving.worklist import UPLIFT_DECISION_FILE
    from training.registry import load_champions
    from wedsync_cs.database import operational_engine

    min_units = min_units or load_arm_minimum()
    champions = load_champions(settings.tracking_uri, settings.threads)
    columns = list(champions.churn.columns)
    engine = operational_engine(settings)
    require_current(engine)
    E = InterventionExecution
    try:
        with engine.connect() as connection:
            newest = connection.scalar(select(func.max(ChurnPrediction.day)))
            executions = pd.read_sql(
                select(
                    E.supplier_id, E.intervention_type, E.day, E.control_group, E.rule_id
                ).where(E.rule_id.is_not(None), E.day.is_not(None)),
                connection,
            )
            suppliers = pd.read_sql(
                select(
                    Supplier.supplier_id,
                    Supplier.cancelled_at,
                    Supplier.monthly_revenue,
                    Supplier.status,
                ),
                connection,
            )
    finally:
        engine.dispose()
    if newest is None:
        raise LookupError("nothing scored yet: run `wedsync-cs score-daily` first")
    newest = pd.Timestamp(newest).date()
    as_of = as_of or newest
    suppliers["cancelled_at"] = pd.to_datetime(suppliers["cancelled_at"], utc=True)
    units = uplift_units(executions, suppliers, as_of)
    matured = units[units["matured"].astype(bool)]
    table = settings.feature_table_path
    model_columns = [*columns, CHURN_PROBABILITY]
    frame = pd.DataFrame(
        {c: pd.Series(dtype=object) for c in ["supplier_id", "intervention_type", "day"]}
        | {c: pd.Series(dtype=np.int64) for c in ["treatment", "y"]}
        | {c: pd.Series(dtype=float) for c in model_columns}
    )
    if len(matured) and table.exists():
        rows = _read_feature_rows(
            table,
            columns,
            sorted(set(matured["supplier_id"])),
            min(matured["day"]),
            max(matured["day"]),
        )
        rows[CHURN_PROBABILITY] = champions.churn.predict(rows) if len(rows) else []
        frame = training_frame(executions, suppliers, rows, model_columns, as_of)
    home = settings.ensure_home()
    folder = home / "models" / "uplift"
    folder.mkdir(parents=True, exist_ok=True)
    trained_at = datetime.now(UTC).replace(microsecond=0)
    records: list[dict[str, Any]] = []
    models: dict[str, TLearnerUplift] = {}
    for kind in INTERVENTION_TYPES:
        mine = frame[frame["intervention_type"] == kind]
        n_pending = int(((units["intervention_type"] == kind) & ~units["matured"]).sum())
        outcome = evaluate_type(mine, model_columns, kind, minimum=min_units, n_pending=n_pending)
        record = dict(outcome.record)
        without = int((matured["intervention_type"] == kind).sum()) - len(mine)
        record["n_without_features"] = without
        if outcome.model is None and without:
            record["reason"] += f" ({without} more have no feature row of their decision day)"
        record["model_path"] = None
        if outcome.model is not None:
            save(outcome.model, folder / kind)
            record["model_path"] = kind
            models[kind] = outcome.model
        records.append(record)
    scores, note = None, "no uplift model was fitted"
    if models:
        scores, note = _write_scores(table, columns, champions, models, suppliers, newest, folder)
    _prune_scores(folder, keep=scores)
    decision = folder / UPLIFT_DECISION_FILE
    document = decision_document(
        records,
        as_of,
        trained_at,
        None if scores is None else (newest, scores.name),
        note,
    )
    decision.write_text(json.dumps(document, indent=2, default=str))
    reports = home / "reports"
    reports.mkdir(exist_ok=True)
    report = reports / f"uplift-{as_of}.json"
    report.write_text(json.dumps(records, indent=2, default=str))
    run_id = champions.churn_run_id
    if run_id is not None:  # the champion's run: the uplift decisions over time, beside it
        client = MlflowClient(settings.tracking_uri)
        at = int(datetime.now(UTC).timestamp() * 1000)
        step = int(as_of.strftime("%Y%m%d"))
        for r in records:
            values = {
                "n_train": r["n_train"],
                "n_test": r["n_test"],
                "qini": r["qini_coefficient"],
                "qini_ci_low": r["ci_low"],
                "qini_ci_high": r["ci_high"],
                "targeting": float(r["targeting"]),
            }
            for key, value in values.items():
                if value is not None:
                    name = f"uplift.{r['intervention_type']}.{key}"
                    client.log_metric(run_id, name, float(value), at, step)
        client.log_artifact(run_id, str(report), artifact_path="monitoring")
        client.log_artifact(run_id, str(decision), artifact_path="monitoring/uplift")
    return UpliftRun(as_of, records, decision, report, scores, run_id)


def _prune_scores(folder: Path, keep: Path | None) -> None:
    """Remove the scores files other than ``keep`` (this run's) and the newest
    :data:`KEEP_SCORES`; all of them when this run wrote none (no older file of the day may
    outlive the decision it was written with)."""
    from serving.worklist import UPLIFT_SCORES_GLOB

    files = sorted(folder.glob(UPLIFT_SCORES_GLOB))
    for path in files[:-KEEP_SCORES] if keep is not None else files:
        if path != keep:
            path.unlink(missing_ok=True)


def _write_scores(
    table: Path,
    columns: list[str],
    champions: Any,
    models: dict[str, TLearnerUplift],
    suppliers: pd.DataFrame,
    day: date,
    folder: Path,
) -> tuple[Path | None, str | None]:
    """The scores file of ``day`` for its active suppliers, or None and why not."""
    import pyarrow.parquet as pq

    from serving.worklist import uplift_scores_name

    active = suppliers[suppliers["status"] == "active"]
    if not table.exists() or active.empty:
        return None, f"no feature table or no active supplier to score on {day}"
    rows = _read_feature_rows(table, columns, sorted(active["supplier_id"].astype(str)), day, day)
    stamp = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    rows = rows[pd.to_datetime(rows["event_timestamp"], utc=True) == stamp]
    rows = rows.drop_duplicates("supplier_id", keep="last").reset_index(drop=True)
    if rows.empty:
        return None, f"no feature rows of {day} (stamped {stamp}) to score"
    rows[CHURN_PROBABILITY] = champions.churn.predict(rows)
    revenue = active.set_index(active["supplier_id"].astype(str))["monthly_revenue"]
    scores = uplift_scores(models, rows, [*columns, CHURN_PROBABILITY], revenue, day)
    path = folder / uplift_scores_name(day)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pandas(scores, SCORES_SCHEMA, preserve_index=False), temporary)
    temporary.replace(path)  # the worklist never reads a half-written file
    return path, None


def refresh_scores(settings: Settings, champions: Any, day: date) -> Path | None:
    """The day's uplift scores from the saved models of the types whose targeting is on (no
    refit), for score-daily, so that the day's worklist can rank by expected saved LTV; None
    when no decision turns targeting on."""
    from sqlalchemy import select

    from monitoring.uplift import load
    from serving.db.models import Supplier
    from serving.worklist import UPLIFT_DECISION_FILE
    from wedsync_cs.database import operational_engine

    folder = settings.home_dir / "models" / "uplift"
    path = folder / UPLIFT_DECISION_FILE
    if not path.is_file():
        return None
    decision = json.loads(path.read_text())
    models = {
        kind: load(folder / entry["model"])
        for kind, entry in decision.get("types", {}).items()
        if entry.get("targeting") is True and entry.get("model")
    }
    if not models:
        return None
    engine = operational_engine(settings)
    try:
        with engine.connect() as connection:
            suppliers = pd.read_sql(
                select(Supplier.supplier_id, Supplier.monthly_revenue, Supplier.status),
                connection,
            )
    finally:
        engine.dispose()
    columns = list(champions.churn.columns)
    scores, _ = _write_scores(
        settings.feature_table_path, columns, champions, models, suppliers, day, folder
    )
    return scores
