"""Speed and memory figures of the platform, printed with their targets and ratios.

Each benchmark runs in a child process, so its wall time and peak memory (``ru_maxrss`` of the
child) are its own. Usage: ``python benchmarks/run.py [--only NAME] [--suppliers N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float
    peak_gb: float
    target_seconds: float
    target_gb: float
    details: dict

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.seconds:8.1f} s  (target {self.target_seconds:5.0f} s, "
            f"ratio {self.seconds / self.target_seconds:4.2f})  {self.peak_gb:5.2f} GB  "
            f"(target {self.target_gb:.0f} GB, ratio {self.peak_gb / self.target_gb:4.2f})"
        )


MARK = "BENCH_RESULT"
_PREAMBLE = f"""
import json as _json
def emit(result):
    print("\\n{MARK}", _json.dumps(result), flush=True)
"""
_PEAK = """
import resource as _resource
emit({"peak_kb": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss})
"""


def _child(code: str) -> tuple[float, float, dict]:
    """Run ``code`` in a fresh interpreter; return wall seconds, its own peak memory (GB) and
    the JSON it printed last."""
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PREAMBLE + code + _PEAK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - began
    if out.returncode:
        raise RuntimeError(f"benchmark failed:\n{out.stderr[-3000:]}")
    found = [
        json.loads(line.split(MARK, 1)[1]) for line in out.stdout.splitlines() if MARK in line
    ]
    if len(found) != 2:
        raise RuntimeError(f"benchmark printed no result:\n{out.stdout[-3000:]}")
    return seconds, found[1]["peak_kb"] / 1024**2, found[0]


def bench_simulator(suppliers: int, days: int, workdir: Path) -> Result:
    code = f"""
import json
from pathlib import Path
from simulator import SimulationConfig, simulate
s = simulate(SimulationConfig(suppliers={suppliers}, days={days}, seed=1),
             Path({str(workdir / "sim")!r}), overwrite=True)
emit(({{"rows": s.rows, "monthly_churn_rate": round(s.monthly_churn_rate, 4),
                  "truth_rows": s.truth_rows, "truth_mean_se": round(s.truth_mean_se, 5),
                  "inner_seconds": round(s.seconds, 1)}}))
"""
    seconds, peak, details = _child(code)
    return Result(f"simulate {suppliers:,} x {days} d", seconds, peak, 180, 6, details)


def bench_validation(workdir: Path) -> Result:
    code = f"""
import json
from features.raw_reader import load_raw
t = load_raw({str(workdir / "sim" / "raw")!r})
emit(({{"rows": int(sum(len(f) for f in t.frames.values())), "ok": t.report.ok}}))
"""
    seconds, peak, details = _child(code)
    return Result("validate that folder", seconds, peak, 180, 8, details)


def bench_features(workdir: Path) -> Result:
    code = f"""
import json
from pathlib import Path
from wedsync_cs.settings import Settings
from wedsync_cs.feature_jobs import build_features
settings = Settings(home=Path({str(workdir / "home")!r}))
b = build_features(settings, Path({str(workdir / "sim" / "raw")!r}))
emit(({{"rows": b.rows_total, "days": b.days_built, "inner_seconds": b.seconds}}))
"""
    seconds, peak, details = _child(code)
    return Result("features build (validate+DuckDB+Feast)", seconds, peak, 300, 8, details)


def bench_historical(workdir: Path, n_rows: int) -> Result:
    code = f"""
import json, time
import numpy as np, pandas as pd, pyarrow.parquet as pq
from pathlib import Path
from wedsync_cs.settings import Settings
from wedsync_cs.feature_jobs import store_config
from feature_repo.store import open_store
from feature_repo.readers import historical_features
settings = Settings(home=Path({str(workdir / "home")!r}))
keys = pq.read_table(settings.feature_table_path, columns=["supplier_id", "event_timestamp"])
keys = keys.to_pandas()
rng = np.random.default_rng(0)
rows = keys.iloc[rng.choice(len(keys), {n_rows}, replace=len(keys) < {n_rows})]
rows = rows.assign(event_timestamp=rows.event_timestamp
                   + pd.to_timedelta(rng.integers(0, 6 * 24, len(rows)), unit="h"))
store = open_store(store_config(settings))
t0 = time.perf_counter()
frame = historical_features(store, "churn_v3", rows)
emit(({{"rows": len(frame), "columns": frame.shape[1],
                  "retrieval_seconds": round(time.perf_counter() - t0, 1),
                  "non_null_share": round(float(frame["logins_30d"].notna().mean()), 4)}}))
"""
    seconds, peak, details = _child(code)
    return Result(f"historical retrieval {n_rows:,} rows", seconds, peak, 300, 8, details)


def bench_online(workdir: Path, store_kind: str, reads: int = 2000) -> Result:
    code = f"""
import json, time, uuid
import numpy as np, pyarrow.parquet as pq
from pathlib import Path
from wedsync_cs.settings import Settings
from wedsync_cs.feature_jobs import materialize_features, store_config
from feature_repo.store import open_store, apply_definitions
settings = Settings(home=Path({str(workdir / "home")!r}), online_store={store_kind!r},
                    feast_project="bench_" + uuid.uuid4().hex[:8])
store = open_store(store_config(settings))
apply_definitions(store, store_config(settings))
t0 = time.perf_counter()
materialize_features(settings)
materialize_s = time.perf_counter() - t0
keys = pq.read_table(settings.feature_table_path, columns=["supplier_id", "event_timestamp"])
keys = keys.to_pandas()
ids = keys.loc[keys.event_timestamp == keys.event_timestamp.max(), "supplier_id"].tolist()
rng = np.random.default_rng(1)
service = store.get_feature_service("churn_v3")
lat = []
for i in rng.choice(len(ids), {reads}):
    t = time.perf_counter()
    store.get_online_features(features=service, entity_rows=[{{"supplier_id": ids[i]}}]).to_dict()
    lat.append(time.perf_counter() - t)
lat = np.array(lat) * 1000
if {store_kind!r} == "redis":
    store.teardown()
emit(({{"materialize_seconds": round(materialize_s, 1), "reads": {reads},
                  "p50_ms": round(float(np.percentile(lat, 50)), 2),
                  "p99_ms": round(float(np.percentile(lat, 99)), 2)}}))
"""
    seconds, peak, details = _child(code)
    return Result(f"online reads ({store_kind})", seconds, peak, 600, 8, details)


def bench_incremental(workdir: Path) -> Result:
    """One more day of data: a build on all but the last day, then an incremental build. The
    export of all but the last day is written by a process of its own, so that the peak memory
    is the builds'."""
    prepare = f"""
from pathlib import Path
import pandas as pd, pyarrow as pa, pyarrow.parquet as pq
from features.as_of import export_at
from features.raw_reader import load_raw
from features.feature_table import connect, data_span
raw = Path({str(workdir / "sim" / "raw")!r})
tables = load_raw(raw)
con = connect(tables.frames); first, last = data_span(con); con.close()
yesterday = Path({str(workdir / "yesterday")!r}); yesterday.mkdir(exist_ok=True)
for name, frame in export_at(tables.frames, pd.Timestamp(last, tz="UTC")).items():
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, yesterday / f"{{name}}.parquet")
emit({{}})
"""
    _child(prepare)
    code = f"""
import json, time
from pathlib import Path
from wedsync_cs.settings import Settings
from wedsync_cs.feature_jobs import build_features
raw = Path({str(workdir / "sim" / "raw")!r})
yesterday = Path({str(workdir / "yesterday")!r})
settings = Settings(home=Path({str(workdir / "home_inc")!r}))
full = build_features(settings, yesterday)
t0 = time.perf_counter()
inc = build_features(settings, raw, incremental=True)
emit(({{"yesterday_full_seconds": full.seconds, "incremental_seconds": inc.seconds,
                  "incremental_wall_seconds": round(time.perf_counter() - t0, 1),
                  "days_built": inc.days_built, "rows_written": inc.rows_written,
                  "rows_total": inc.rows_total}}))
"""
    seconds, peak, details = _child(code)
    return Result("one more day: full + incremental", seconds, peak, 600, 8, details)


# Simulator options that shape exports unlike the default (simulator.SimulationConfig):
# accounts older than the event history (13 months of them, the history two years long),
# plans that cancel only at renewal (30 % yearly), usage of some features that raises churn.
SCENARIOS: dict[str, dict] = {
    "default": {},
    "history": {"history_start_days": 395, "extra_days": 395},
    "renewal": {"yearly_share": 0.3, "cancel_at_renewal": True},
    "feature_effects": {"feature_effects": True},
}


def bench_train(
    workdir: Path,
    suppliers: int,
    days: int,
    seed: int,
    trials: int,
    scenario: str = "default",
    experiment: str = "experiments/churn_v3.yaml",
) -> Result:
    """Simulate a fresh seed (with truth) under a scenario, then ``wedsync-cs train`` end to
    end: features, tuning, fits (evaluation, unconstrained, refit check, deployed refit),
    holdout evaluation against the truth, MLflow. Quality figures are the tables the command
    printed."""
    options = dict(SCENARIOS[scenario])
    days += options.pop("extra_days", 0)
    code = f"""
import json, time
from pathlib import Path
from simulator import SimulationConfig, simulate
from wedsync_cs.settings import Settings
from wedsync_cs.model_jobs import train
data = Path({str(workdir / "train_sim")!r})
sim = simulate(SimulationConfig(suppliers={suppliers}, days={days}, seed={seed}, **{options!r}),
               data, overwrite=True)
settings = Settings(home=Path({str(workdir / "train_home")!r}))
t0 = time.perf_counter()
r = train(settings, data / "raw", Path({experiment!r}), trials={trials}, time_budget=1e9)
table = r.evaluation
keep = ["auc", "pr_auc", "brier", "log_loss", "ece", "auc_gap_closed", "pr_auc_gap_closed",
        "auc_rule_gap_closed", "pr_auc_rule_gap_closed"]
t = r.tuning
emit(({{"train_seconds": round(time.perf_counter() - t0, 1),
       "simulate_seconds": round(sim.seconds, 1), "cancellations": sim.cancellations,
       "monthly_churn_rate": round(sim.monthly_churn_rate, 4), "rows": r.rows,
       "rows_left_out_by_window": r.window.rows_left_out if r.window else None,
       "holdout_rows": r.evaluated_rows, "holdout_positives": r.evaluated_positives,
       "trials": t.trials_run, "pruned": t.trials_pruned, "kept": t.chosen,
       "rounds": t.rounds, "fold_losses": [round(v, 5) for v in t.kept.fold_losses],
       "fixed_fold_log_loss": round(t.fixed.log_loss, 5),
       "tuned_fold_log_loss": round(t.tuned.log_loss, 5) if t.tuned else None,
       "params": t.params,
       "table": {{k: {{m: round(float(v), 5) for m, v in row.items() if m in keep}}
                 for k, row in table.to_dict("index").items()}},
       "refit_check": (r.refit_check.table.round(5).to_dict("index")
                       if r.refit_check else None),
       "health_log_loss": r.health_holdout_log_loss, "bands_ordered": r.bands_ordered}}))
"""
    _, peak, details = _child(code)
    return Result(
        f"train {suppliers:,} x {days} d, {trials} trials ({scenario})",
        details["train_seconds"],
        peak,
        900,
        8,
        details,
    )


def bench_information_limit(workdir: Path, train_table: dict) -> Result:
    """How much of the gap any model of these features could close, on the training benchmark's
    data and holdout: a gradient-boosted regression fitted to the simulator's true probabilities
    themselves on the tree window, twice (squared error on the logit; cross-entropy with the
    true probability as a soft label), the better of the two on each metric. No shipped model
    can learn from the truth; this one only measures what the features carry. Its gap shares use
    the logistic baseline and the ceiling of ``train_table`` (the training benchmark's table,
    same holdout rows).

    A third fit asks whether the raw login history carries more than the features distil from
    it: the same regression (logit squared error) with each row's daily login counts of the 28
    days before its instant and weekly counts of the 22 weeks before those added. If it does not
    beat the features, the rest of the gap to the ceiling is state the tables do not reveal."""
    code = f"""
from pathlib import Path
import numpy as np, pandas as pd, xgboost as xgb
from scipy.special import expit, logit
from feature_repo.definitions import service_columns
from training.config import load_experiment
from training.metrics import evaluate
from training.models import feature_matrix
from training.pipeline import window_split
from training.truth import join_truth
from wedsync_cs.feature_jobs import training_set
from wedsync_cs.settings import Settings
data = Path({str(workdir / "train_sim")!r})
settings = Settings(home=Path({str(workdir / "train_home")!r}))
cfg = load_experiment(Path("experiments/churn_v3.yaml"))
frame = training_set(settings, data / "raw", (cfg.feature_service, cfg.health_service),
                     cfg.cadence, cfg.horizon_days).frame
p_true = join_truth(frame, pd.read_parquet(data / "truth.parquet")).p_true
X = feature_matrix(frame, service_columns(cfg.feature_service))
y = frame["label"].to_numpy(int)
split = window_split(frame["event_timestamp"], cfg)
fit, stop, hold = split.trees & ~np.isnan(p_true), split.calibration, split.holdout
z = logit(np.clip(p_true, 1e-5, 1 - 1e-5))
base = dict(max_depth=6, eta=0.05, subsample=0.8, colsample_bytree=0.8, min_child_weight=20,
            tree_method="hist", nthread=2)
# two fits of E[p_true | features]: squared error on the logit, and cross-entropy with p_true as
# a soft label (its minimiser is E[p_true | features] itself, weighted as log loss weighs rows)
targets = {{"logit_squared_error": ("reg:squarederror", z, X),
           "soft_label_log_loss": ("binary:logistic", p_true, X)}}
# the raw login history of each row: daily counts of the 28 days up to its feature day, weekly
# counts of the 22 weeks before those (zeros before signup)
act = pd.read_parquet(data / "raw" / "activity_daily.parquet",
                      columns=["supplier_id", "date", "logins"])
index = {{s: i for i, s in enumerate(pd.unique(frame["supplier_id"]))}}
first = pd.Timestamp(act["date"].min())
pad = 28 + 22 * 7
grid = np.zeros((len(index), (pd.Timestamp(act["date"].max()) - first).days + 1 + pad),
                np.float32)
who = act["supplier_id"].map(index)
known = who.notna().to_numpy()
grid[who[known].to_numpy(int), (pd.to_datetime(act["date"]) - first).dt.days.to_numpy()[known]
     + pad] = act["logins"].to_numpy()[known]
rs = frame["supplier_id"].map(index).to_numpy(int)
rd = ((frame["event_timestamp"].dt.tz_convert(None).dt.floor("D") - pd.Timedelta(days=1))
      - first).dt.days.to_numpy() + pad
history = {{f"logins_day_minus_{{k}}": grid[rs, rd - k] for k in range(28)}}
for w in range(4, 26):
    history[f"logins_week_minus_{{w}}"] = grid[rs[:, None], rd[:, None] - 7 * w
                                               - np.arange(7)].sum(axis=1)
XH = pd.concat([X, pd.DataFrame(history, index=X.index)], axis=1)
targets["logit_squared_error_with_login_history"] = ("reg:squarederror", z, XH)
fits = {{}}
for name, (objective, target, M) in targets.items():
    booster = xgb.train({{**base, "objective": objective}},
                        xgb.DMatrix(M[fit], target[fit], enable_categorical=True), 3000,
                        evals=[(xgb.DMatrix(M[stop], target[stop], enable_categorical=True),
                                "stop")],
                        early_stopping_rounds=50, verbose_eval=False)
    out = booster.predict(xgb.DMatrix(M[hold], enable_categorical=True),
                          iteration_range=(0, booster.best_iteration + 1))
    prob = expit(out) if objective == "reg:squarederror" else out
    m = evaluate(y[hold], prob)
    fits[name] = {{"rounds": booster.best_iteration + 1,
                  **{{k: round(m[k], 4) for k in ("auc", "pr_auc")}}}}
# the limit is the better fit on each metric: an optimistic reading of what the features carry
best = {{k: max(f[k] for n, f in fits.items() if "history" not in n) for k in ("auc", "pr_auc")}}
emit({{"holdout_rows": int(hold.sum()), "holdout_positives": int(y[hold].sum()),
      "fits": fits, "regression_on_truth": best}})
"""
    from training.metrics import gap_closed

    seconds, peak, details = _child(code)
    reached = details["regression_on_truth"]
    for m in ("auc", "pr_auc"):
        base, top = train_table["logistic_baseline"][m], train_table["ceiling"][m]
        reached[f"{m}_gap_closed"] = round(gap_closed(reached[m], base, top), 3)
        history = details["fits"]["logit_squared_error_with_login_history"]
        history[f"{m}_gap_closed"] = round(gap_closed(history[m], base, top), 3)
    return Result("information limit (regression on truth)", seconds, peak, 900, 8, details)


def bench_predict(workdir: Path, rows: int, span: str, days: int) -> Result:
    """``wedsync-cs predict`` for ``rows`` random (supplier, instant) rows with the champion of
    the training benchmark, every one of a supplier active at its instant (all are scored).

    ``span="recent"``: instants in the last four weeks of the data, the daily scoring case.
    ``span="history"``: instants anywhere in the data after its first 60 days, a backfill. Both
    include building, on demand, the feature rows of every day they touch that the weekly
    training grid lacks (a few days for "recent", hundreds for "history")."""
    back = 28 if span == "recent" else 670
    code = f"""
import json, time
import numpy as np, pandas as pd
from pathlib import Path
from wedsync_cs.settings import Settings
from serving.batch import entity_status
from wedsync_cs.model_jobs import predict
raw = Path({str(workdir / "train_sim" / "raw")!r})
sup = pd.read_parquet(raw / "suppliers.parquet", columns=["supplier_id", "signup_at"])
rng = np.random.default_rng(3)
import pyarrow.compute as pc, pyarrow.parquet as pq
last = pc.max(pq.read_table(raw / "activity_daily.parquet", columns=["date"])["date"]).as_py()
end = pd.Timestamp(last, tz="UTC")
start = end - pd.Timedelta(days=min({back}, {days} - 60))
# suppliers active at their instants only (the contract's rule, as predict applies it), so that
# every row is scored: draw candidates and keep the first {rows:,} active ones
cand = 4 * {rows}
stamps = start + pd.to_timedelta(rng.integers(0, (end - start).days * 24, cand), unit="h")
pick = rng.integers(0, len(sup), cand)
drawn = pd.DataFrame({{"supplier_id": sup["supplier_id"].to_numpy()[pick], "as_of": stamps}})
cancellations = pd.read_parquet(raw / "cancellations.parquet")
keep = np.flatnonzero(entity_status(drawn, sup, cancellations) == "active")[:{rows}]
assert len(keep) == {rows}, "too few active candidates"
entities = drawn.iloc[keep].reset_index(drop=True)
path = Path({str(workdir / "entities.parquet")!r}); entities.to_parquet(path)
out = Path({str(workdir / "predictions.parquet")!r})
settings = Settings(home=Path({str(workdir / "train_home")!r}))
t0 = time.perf_counter()
s = predict(settings, raw, path, out)
seconds = time.perf_counter() - t0
got = pd.read_parquet(out)
emit(({{"predict_seconds": round(seconds, 1), "rows": len(got),
       "status": got["status"].value_counts().to_dict()}}))
"""
    _, peak, details = _child(code)
    return Result(
        f"predict {rows:,} rows ({span})", details["predict_seconds"], peak, 60, 8, details
    )


def report(result: Result) -> Result:
    """Print a benchmark's line and its details as they come."""
    print(result.line(), flush=True)
    print("   ", json.dumps(result.details), flush=True)
    return result


BENCHES = ("simulator", "validation", "features", "incremental", "historical", "online")
MODEL_BENCHES = ("train", "predict")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suppliers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--data", type=Path, help="reuse this simulated folder (with raw/) instead of simulating"
    )
    parser.add_argument("--train-suppliers", type=int, default=20_000)
    parser.add_argument("--train-seed", type=int, default=2026, help="a seed no test uses")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        default="default",
        help="simulator options of the training benchmark's data (see SCENARIOS)",
    )
    parser.add_argument(
        "--experiment", default="experiments/churn_v3.yaml", help="the training experiment"
    )
    parser.add_argument(
        "--no-limit", action="store_true", help="skip the information-limit benchmark"
    )
    parser.add_argument("--predict-rows", type=int, default=100_000)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the benchmark's data, CS_HOME and models in this folder (default: a "
        "temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="with --workdir: predict with the champion a previous run trained there "
        "(skips the training and information-limit benchmarks)",
    )
    parser.add_argument(
        "--only",
        choices=BENCHES + MODEL_BENCHES,
        action="append",
        help="run only these (the simulation always runs: the others use it)",
    )
    args = parser.parse_args()
    chosen = args.only or list(BENCHES + MODEL_BENCHES)
    if args.reuse_model and not (args.workdir and (args.workdir / "train_home").is_dir()):
        parser.error("--reuse-model needs a --workdir where a previous run trained the models")
    with tempfile.TemporaryDirectory(prefix="wedsync-bench-") as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if set(chosen) & set(MODEL_BENCHES) and not args.reuse_model:
            # the model benchmarks simulate their own, fresh, seed: run them first
            train = report(
                bench_train(
                    workdir,
                    args.train_suppliers,
                    args.days,
                    args.train_seed,
                    args.trials,
                    args.scenario,
                    args.experiment,
                )
            )
            if not args.no_limit:
                report(bench_information_limit(workdir, train.details["table"]))
        if "predict" in chosen:
            for span in ("recent", "history"):
                report(bench_predict(workdir, args.predict_rows, span, args.days))
        if not set(chosen) & set(BENCHES):
            return
        if args.data:
            if not (workdir / "sim").exists():
                (workdir / "sim").symlink_to(args.data.resolve())
        else:
            report(bench_simulator(args.suppliers, args.days, workdir))
        steps = {
            "validation": lambda: [bench_validation(workdir)],
            "features": lambda: [bench_features(workdir)],
            "incremental": lambda: [bench_incremental(workdir)],
            "historical": lambda: [bench_historical(workdir, args.entity_rows)],
            "online": lambda: [bench_online(workdir, "sqlite"), bench_online(workdir, "redis")],
        }
        for name in BENCHES[1:]:
            if name in chosen:
                for result in steps[name]():
                    report(result)


if __name__ == "__main__":
    main()
