"""`wedsync-cs train` and `predict` for real on a small simulated set: MLflow on SQLite (through
the CLI) and on PostgreSQL, registered champions, no pickles, point-in-time predictions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.catalog import FAMILIES
from simulator import SimulationConfig, simulate
from wedsync_cs.cli import app
from wedsync_cs.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
MODELS = [
    "churn_model",
    "health_calibrated",
    "fixed_weight_rule",
    "logistic_baseline",
    "churn_model_unconstrained",
    "ceiling",
]
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "set"
    simulate(SimulationConfig(suppliers=400, days=400, seed=3, truth_paths=4), out)
    return out


def _tiny(version: str, folder: Path) -> Path:
    """The shipped experiment ``version`` with a tiny tuning budget."""
    spec = yaml.safe_load((ROOT / "experiments" / f"{version}.yaml").read_text())
    spec["tuning"].update(trials=5, max_rounds=60, early_stopping_rounds=10)
    spec["thresholds"]["top_k"] = 50
    path = folder / f"{version}_test.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """churn_v2 with a tiny tuning budget."""
    return _tiny("churn_v2", tmp_path_factory.mktemp("exp"))


def invoke(home: Path, *args: str, tracking: str | None = None):
    """Run the CLI in this process with CS_HOME (and a tracking URI) for this call only."""
    env = {"CS_HOME": str(home), "CS_MLFLOW_TRACKING_URI": tracking}
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


@pytest.fixture(scope="module")
def trained(sim: Path, experiment: Path, tmp_path_factory) -> tuple[Path, str]:
    """A CS_HOME with one training run through the CLI (SQLite MLflow), and its output."""
    home = tmp_path_factory.mktemp("home")
    result = invoke(
        home, "train", "--raw", sim / "raw", "--experiment", experiment, "--trials", "2"
    )
    assert result.exit_code == 0, result.output
    return home, result.output


def _no_pickles(home: Path) -> None:
    files = [p for p in home.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in PICKLE_SUFFIXES]
    for path in files:  # a pickle (protocol 2+) starts with 0x80 and the protocol number
        head = path.read_bytes()[:2]
        assert not (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5), path


def test_train_through_the_cli_on_sqlite(trained, sim: Path, experiment: Path) -> None:
    home, output = trained
    assert "Holdout evaluation" in output and "risk bands on the holdout" in output
    for model in MODELS:
        assert model in output
    assert "churn v1: promoted to champion: no champion yet" in output
    assert f"mlflow ui --backend-store-uri sqlite:///{home}/mlflow/mlflow.db" in output

    settings = Settings(home=home)
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    artifacts = settings.mlflow_artifact_root
    for name in ("churn", "health_calibration"):
        exp = client.get_experiment_by_name(name)
        assert exp.artifact_location == (artifacts / name).resolve().as_uri()
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == "1"
        run = client.get_run(champion.run_id)
        assert run.data.tags["promotion"] == "no champion yet"
        assert run.data.tags["feature_service"] == "churn_v2"
        assert run.data.tags["health_service"] == "health_v1"
        assert run.data.params["split.holdout.from"] > run.data.params["split.calibration.to"]
        # the registered files are the refit on every labelled row, calibrated on the newest
        # slice (inside the evaluation's holdout); the metrics are the evaluation fit's
        params = run.data.params
        assert params["refit.calibration.from"] >= params["split.holdout.from"]
        assert int(params["refit.trees.rows"]) > int(params["split.trees.rows"])
        assert run.data.tags["metrics_of"] == "evaluation_fit"
        assert params["window.accounts_older_than_history"] == "0"
        assert params["window.rows_left_out"] == "0"
        [dataset] = run.inputs.dataset_inputs
        assert dataset.dataset.name == "churn_v2_training_set"
        assert str((sim / "raw").resolve()) in dataset.dataset.source

    churn_run = client.get_run(client.get_model_version_by_alias("churn", "champion").run_id)
    table = pd.read_csv(
        Path(client.download_artifacts(churn_run.info.run_id, "evaluation.csv", str(home))),
        index_col="model",
    )
    assert list(table.index) == MODELS
    assert table.loc["ceiling", "auc_gap_closed"] == pytest.approx(1.0)
    metrics = churn_run.data.metrics
    for model, row in table.iterrows():
        for metric, value in row.items():
            logged = metrics[f"holdout/{model}/{metric}"]
            assert logged == pytest.approx(value, rel=1e-6, nan_ok=True)
    assert {"best.max_depth", "tuning.rounds", "experiment.horizon_days"} <= set(
        churn_run.data.params
    )
    assert churn_run.data.params["tuning.trials_run"] == "2"
    assert churn_run.data.params["tuning.chosen"] in ("tuned", "fixed")
    assert metrics["tuning/fixed_fold_log_loss"] >= metrics["tuning/fold_log_loss"]
    assert {"refit_check/evaluation_fit/log_loss", "refit_check/refit/log_loss"} <= set(metrics)
    for text in ("observation window: event history from", "kept the", "Refit check"):
        assert text in output
    pngs = sorted(p.name for p in artifacts.rglob("*.png"))
    for name in (
        "precision_recall",
        "reliability",
        "shap_families",
        "shap_features",
        "shap_summary",
    ):
        assert f"{name}.png" in pngs
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in artifacts.rglob("*.png"))
    assert any(p.name == "model.ubj" for p in artifacts.rglob("*"))
    assert any(p.name == "health_model.json" for p in artifacts.rglob("*"))
    assert not (ROOT / "mlruns").exists() and not (Path.cwd() / "mlruns").exists()
    _no_pickles(home)


def test_a_second_run_on_the_same_holdout_is_gated(trained, sim: Path, experiment: Path) -> None:
    home, _ = trained
    result = invoke(
        home, "train", "--raw", sim / "raw", "--experiment", experiment, "--trials", "2"
    )
    assert result.exit_code == 0, result.output
    settings = Settings(home=home)
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    for name in ("churn", "health_calibration"):
        second = client.get_model_version(name, "2")
        reason = second.tags["promotion"]
        # the same data, seed and budget give the same model: it does not beat itself
        assert reason.startswith("v2 log_loss") and "does not beat champion v1" in reason
        assert f"{name} v2: not promoted: {reason}" in result.output
        assert client.get_run(second.run_id).data.tags["promotion"] == reason
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    _no_pickles(home)


@pytest.mark.integration
def test_train_on_postgresql(postgres_uri: str, sim: Path, experiment: Path, tmp_path) -> None:
    from wedsync_cs.model_jobs import train

    settings = Settings(home=tmp_path / "home", mlflow_tracking_uri=postgres_uri)
    until = pd.Timestamp("2024-12-01", tz="UTC")
    result = train(
        settings, sim / "raw", experiment, train_until=until, trials=2, truth=sim / "truth.parquet"
    )
    assert list(result.evaluation.index) == MODELS
    # only labels observed by train_until: the last holdout row's window ends by then
    assert result.splits["holdout"].last + pd.Timedelta(days=30) <= until
    assert result.splits["holdout"].last + pd.Timedelta(days=37) > until
    assert result.rows_without_truth == 0 and result.truth_note is None
    assert result.churn.promotion.promoted and result.health.promotion.promoted
    assert result.splits["trees"].last < result.splits["calibration"].first
    assert result.splits["calibration"].last < result.splits["holdout"].first
    assert set(result.families.index) <= set(FAMILIES)
    assert result.bands["rows"].sum() == result.evaluated_rows
    client = MlflowClient(postgres_uri, postgres_uri)
    for name in ("churn", "health_calibration"):
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    run = client.get_run(result.churn.run_id)
    assert run.data.metrics["holdout/churn_model/log_loss"] == pytest.approx(
        result.evaluation.loc["churn_model", "log_loss"]
    )
    assert run.data.tags["holdout_id"] == result.holdout_id
    assert run.data.params["data.train_until"] == str(until)
    assert (settings.mlflow_artifact_root / "churn").is_dir()
    assert not (settings.mlflow_dir / "mlflow.db").exists()  # nothing on SQLite
    _no_pickles(settings.home_dir)


def _entity_rows(raw: Path) -> pd.DataFrame:
    """Scoreable rows at odd instants, and one of each status, shuffled."""
    suppliers = pd.read_parquet(raw / "suppliers.parquet")
    cancellations = pd.read_parquet(raw / "cancellations.parquet")
    cancelled = cancellations.iloc[0]
    late = suppliers.sort_values("signup_at").iloc[-1]
    early = suppliers[
        (suppliers["signup_at"] < pd.Timestamp("2024-05-01", tz="UTC"))
        & ~suppliers["supplier_id"].isin(cancellations["supplier_id"])
    ]["supplier_id"].head(4)
    stamps = pd.to_datetime(
        ["2024-09-18 15:30", "2024-10-02 00:00", "2024-11-13 09:00", "2025-01-20 23:59"], utc=True
    )
    rows = [*zip(early, stamps, strict=True)]
    rows += [
        ("sup_nobody", pd.Timestamp("2024-09-18", tz="UTC")),
        (late.supplier_id, late.signup_at - pd.Timedelta(days=3)),
        (cancelled.supplier_id, cancelled.cancelled_at + pd.Timedelta(minutes=1)),
        (early.iloc[0], pd.Timestamp("2026-06-01", tz="UTC")),  # long after the data
    ]
    order = np.random.default_rng(0).permutation(len(rows))
    frame = pd.DataFrame([rows[i] for i in order], columns=["supplier_id", "as_of"])
    return frame.assign(as_of=frame["as_of"].astype("datetime64[us, UTC]"))


def test_predict_keeps_every_row_in_order_point_in_time(trained, sim: Path, tmp_path) -> None:
    from feature_repo.build import stored_days
    from features.feature_table import build_feature_table
    from training.evaluation import health_inputs
    from training.model_files import calibrated_churn
    from training.models import feature_matrix
    from training.registry import load_champions

    home, _ = trained
    entities = _entity_rows(sim / "raw")
    path, out = tmp_path / "entities.parquet", tmp_path / "out" / "predictions.parquet"
    pq.write_table(pa.Table.from_pandas(entities, preserve_index=False), path)
    result = invoke(home, "predict", "--raw", sim / "raw", "--entities", path, "--out", out)
    assert result.exit_code == 0, result.output

    got = pd.read_parquet(out)
    assert got["supplier_id"].tolist() == entities["supplier_id"].tolist()
    assert (got["as_of"] == entities["as_of"]).all()
    raw = sim / "raw"
    late = pd.read_parquet(raw / "suppliers.parquet").sort_values("signup_at").iloc[-1]
    cancelled = pd.read_parquet(raw / "cancellations.parquet").iloc[0]
    expected = {
        "sup_nobody": "unknown_supplier",
        late.supplier_id: "not_active",
        cancelled.supplier_id: "not_active",
    }
    for row in got.itertuples():
        if row.supplier_id in expected:
            assert row.status == expected[row.supplier_id], row
        else:
            assert row.status == ("no_features" if row.as_of.year == 2026 else "ok"), row
    ok = got[got["status"] == "ok"]
    assert len(ok) == 4 and got.loc[got["status"] != "ok", "churn_probability"].isna().all()
    for column in ("churn_probability", "health_churn_probability"):
        assert ok[column].between(0, 1).all()
    assert set(ok["churn_risk"]) <= {"low", "medium", "high", "critical"}
    assert set(ok["health_risk"]) <= {"healthy", "at_risk", "critical"}
    assert set(ok["top_factor_1"].dropna()) <= set(FAMILIES)

    # each row was scored from the feature row of the day before its instant, not a later one:
    # the row a full build of that day holds, whether the store had the day (a Sunday of the
    # weekly grid) or predict computed it for that supplier alone (the other days)
    settings = Settings(home=home)
    models = load_champions(settings.tracking_uri)
    stored = stored_days(settings.feature_table_path)
    days = {row.as_of.floor("D").date() - timedelta(days=1) for row in ok.itertuples()}
    # both paths are exercised, and the days computed for single suppliers (read after predict)
    # never entered the table of whole days
    assert days & stored and days - stored
    for row in ok.itertuples():
        day = row.as_of.floor("D").date() - timedelta(days=1)
        table = build_feature_table(raw, [day])
        feature_row = table[table["supplier_id"] == row.supplier_id]
        factors, segment = health_inputs(feature_row)
        assert row.health_score == pytest.approx(models.health.model.score(factors, segment)[0])
        churn = calibrated_churn(
            models.churn.booster,
            models.churn.calibrator,
            feature_matrix(feature_row, models.churn.columns),
        )[0]
        assert row.churn_probability == pytest.approx(churn)
    assert not list(out.parent.glob(".*"))  # no temporary file left


def test_scorer_on_the_online_store_gives_what_predict_gives(trained, sim: Path, tmp_path) -> None:
    """The service's path (the registered champions, Feast's online store) and batch predict's
    (point-in-time rows) score three suppliers alike at the newest materialised instant."""
    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from serving.scorer import SCORE_COLUMNS, Scorer
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import last_build, store_config

    home, _ = trained
    result = invoke(home, "features", "materialize")
    assert result.exit_code == 0, result.output
    settings = Settings(home=home)
    instant = last_build(settings).data_end
    suppliers = pd.read_parquet(sim / "raw" / "suppliers.parquet")
    cancelled = set(pd.read_parquet(sim / "raw" / "cancellations.parquet")["supplier_id"])
    ids = [s for s in suppliers["supplier_id"] if s not in cancelled][:3]

    scorer = Scorer(
        load_champions(settings.tracking_uri),
        OnlineFeatureReader(open_store(store_config(settings))),
    )
    online = scorer.score([*ids, "sup_nobody"])
    assert online["scored"].tolist() == [True, True, True, False]
    explained = scorer.explain(ids)
    assert (
        len(explained) == 3
        and explained.drop(columns="base_log_odds").abs().sum(axis=1).gt(0).all()
    )

    entities = pd.DataFrame({"supplier_id": ids, "as_of": [instant] * 3})
    path, out = tmp_path / "entities.parquet", tmp_path / "predictions.parquet"
    pq.write_table(pa.Table.from_pandas(entities, preserve_index=False), path)
    result = invoke(home, "predict", "--raw", sim / "raw", "--entities", path, "--out", out)
    assert result.exit_code == 0, result.output
    batch = pd.read_parquet(out)
    assert (batch["status"] == "ok").all()
    pd.testing.assert_frame_equal(
        online.iloc[:3][list(SCORE_COLUMNS)].reset_index(drop=True),
        batch[list(SCORE_COLUMNS)].astype(online[list(SCORE_COLUMNS)].dtypes.to_dict()),
        check_exact=False,
        rtol=1e-12,
    )


def test_predict_refuses_a_bad_entities_file_and_writes_nothing(tmp_path, make_raw) -> None:
    raw = make_raw()
    naive = tmp_path / "naive.parquet"
    pq.write_table(
        pa.table({"supplier_id": ["s1"], "as_of": pa.array([pd.Timestamp("2024-02-01")])}), naive
    )
    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"supplier": ["s1"]}), missing)
    out = tmp_path / "out.parquet"
    for path, message in ((naive, "naive timestamp"), (missing, "lacks column(s) supplier_id")):
        result = invoke(
            tmp_path / "home", "predict", "--raw", raw, "--entities", path, "--out", out
        )
        assert result.exit_code == 2
        assert message in result.output and str(path) in result.output
        assert not out.exists()
    nothing_trained = tmp_path / "ok.parquet"
    pq.write_table(
        pa.table(
            {
                "supplier_id": ["s1"],
                "as_of": pa.array([pd.Timestamp("2024-02-01", tz="UTC")]),
            }
        ),
        nothing_trained,
    )
    result = invoke(
        tmp_path / "home", "predict", "--raw", raw, "--entities", nothing_trained, "--out", out
    )
    assert result.exit_code == 2 and "run `wedsync-cs train` first" in result.output
    assert not out.exists()


def test_new_data_rescores_the_champion_on_the_new_holdout(
    sim: Path, experiment: Path, tmp_path: Path
) -> None:
    """A run with more labelled data has another holdout: the champion of the earlier run is
    scored again on the new holdout (its evaluation fit, logged beside the registered refit,
    with the features of its own service version) before the alias moves."""
    from training.registry import configure, load_churn_model
    from wedsync_cs.feature_jobs import training_set
    from wedsync_cs.model_jobs import train

    settings = Settings(home=tmp_path / "home")
    early = train(
        settings,
        sim / "raw",
        _tiny("churn_v1", tmp_path),
        train_until=pd.Timestamp("2024-12-01", tz="UTC"),
        trials=2,
        truth=sim / "truth.parquet",
    )
    full = train(settings, sim / "raw", experiment, trials=2, truth=sim / "truth.parquet")
    assert early.holdout_id != full.holdout_id
    assert (early.config.feature_service, full.config.feature_service) == ("churn_v1", "churn_v2")
    # the early champion's training labels end before the new holdout starts: a clean comparison
    fitted_until = early.splits["calibration"].last + pd.Timedelta(days=30)
    assert fitted_until < full.splits["holdout"].first
    client = configure(settings.tracking_uri)
    for name, registered in (("churn", full.churn), ("health_calibration", full.health)):
        promotion = registered.promotion
        assert promotion.previous_champion == "1"
        assert promotion.reason.endswith("(re-scored on this holdout)"), promotion.reason
        tags = client.get_model_version(name, "2").tags
        rescored = float(tags["champion_v1_holdout_log_loss"])
        new = float(tags["holdout_log_loss"])
        assert new == pytest.approx(
            full.evaluation.loc[
                "churn_model" if name == "churn" else "health_calibrated", "log_loss"
            ]
        )
        assert promotion.promoted == (new < rescored)
        champion = client.get_model_version_by_alias(name, "champion").version
        assert str(champion) == ("2" if promotion.promoted else "1")

    # the re-scored figure is v1's log loss on the full run's holdout rows, computed here anew
    cfg = full.config
    frame = training_set(settings, sim / "raw", ("churn_v1",), cfg.cadence, cfg.horizon_days).frame
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    span = full.splits["holdout"]
    hold = frame[(stamps >= span.first) & (stamps <= span.last)]
    assert len(hold) == full.evaluated_rows
    # v1's evaluation fit (logged beside its registered refit), like the new version's figure
    evaluation_fit = client.get_model_version("churn", "1").tags["evaluation_fit_uri"]
    champion = load_churn_model(evaluation_fit)
    assert "logins_30d_change" in champion.columns  # a churn_v1 model
    p = np.clip(champion.predict(hold), 1e-6, 1 - 1e-6)
    y = hold["label"].to_numpy(float)
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    tags = client.get_model_version("churn", "2").tags
    assert float(tags["champion_v1_holdout_log_loss"]) == pytest.approx(expected, rel=1e-9)


def test_a_champion_that_saw_the_new_holdout_is_rescored_as_optimistic(
    sim: Path, experiment: Path, tmp_path: Path
) -> None:
    """A run with an earlier --train-until has its holdout inside the champion's training
    window: the champion is still scored there, and the reason says its figure is optimistic."""
    from wedsync_cs.model_jobs import train

    settings = Settings(home=tmp_path / "home")
    full = train(settings, sim / "raw", experiment, trials=2, truth=sim / "truth.parquet")
    early = train(
        settings,
        sim / "raw",
        experiment,
        train_until=pd.Timestamp("2024-12-01", tz="UTC"),
        trials=2,
        truth=sim / "truth.parquet",
    )
    assert full.splits["calibration"].last + pd.Timedelta(days=30) >= early.splits["holdout"].first
    for registered in (early.churn, early.health):
        reason = registered.promotion.reason
        assert "(re-scored on this holdout; its training labels reach" in reason, reason
        assert reason.endswith("into this holdout, so its figure is optimistic)")
