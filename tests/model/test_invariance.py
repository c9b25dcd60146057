"""Invariance: supplier ids carry no signal and row order changes nothing.

Ids are swapped between suppliers (the hardest renaming: every id still exists, on another
supplier) and rows are shuffled; each row's predictions must follow the row. Checked on the
fitted models directly and through the batch prediction steps of ``serving.batch`` (status,
scoring with SHAP factors, assembly in the entities' order), with real components only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_repo.readers import FrameFeatureReader
from features.catalog import KEY_COLUMNS
from serving.batch import entity_status, predict_entities
from serving.scorer import Scorer
from tests.model.conftest import FittedModels, SimulatedSet, experiment
from training.evaluation import health_inputs
from training.explain import explain
from training.model_files import Champions, HealthCalibration
from training.models import feature_matrix

ROWS = 2000


@pytest.fixture(scope="module")
def rows(simulated: SimulatedSet, fitted: FittedModels) -> pd.DataFrame:
    """Holdout rows (both feature services' columns), positional index."""
    holdout = simulated.frame[fitted.split.holdout]
    return holdout.sample(ROWS, random_state=0).reset_index(drop=True)


def swap_ids(ids: pd.Series, seed: int = 1) -> dict[str, str]:
    """Each distinct id -> another supplier's id (a permutation without fixed points)."""
    order = np.random.default_rng(seed).permutation(np.sort(ids.astype(str).unique()))
    return dict(zip(order, np.roll(order, 1), strict=True))


def renamed_and_shuffled(frame: pd.DataFrame, mapping: dict[str, str], seed: int = 2):
    """``frame`` with ids mapped and rows shuffled; also the permutation (new row i is old
    row ``perm[i]``)."""
    perm = np.random.default_rng(seed).permutation(len(frame))
    out = frame.iloc[perm].reset_index(drop=True)
    return out.assign(supplier_id=out["supplier_id"].astype(str).map(mapping)), perm


def champions(fitted: FittedModels) -> Champions:
    cfg = experiment()
    return Champions(
        churn=fitted.churn,
        health=HealthCalibration(fitted.health.model, cfg),
        churn_version="test",
        health_version="test",
    )


def test_ids_and_timestamps_never_enter_the_matrix(fitted: FittedModels, rows) -> None:
    assert not set(KEY_COLUMNS) & set(fitted.churn.columns)
    assert fitted.churn.booster.get_booster().feature_names == fitted.churn.columns
    assert list(feature_matrix(rows, fitted.churn.columns).columns) == fitted.churn.columns


def test_swapped_ids_and_shuffled_rows_leave_every_row_unchanged(
    fitted: FittedModels, rows: pd.DataFrame
) -> None:
    mapping = swap_ids(rows["supplier_id"])
    assert all(k != v for k, v in mapping.items())
    other, perm = renamed_and_shuffled(rows, mapping)
    assert not (other["supplier_id"] == rows["supplier_id"].iloc[perm].to_numpy()).any()

    churn = fitted.churn.predict(rows)
    np.testing.assert_allclose(fitted.churn.predict(other), churn[perm], rtol=0, atol=1e-12)
    X, X_other = (
        feature_matrix(rows, fitted.churn.columns),
        feature_matrix(other, fitted.churn.columns),
    )
    margin = fitted.churn.booster.predict(X, output_margin=True)
    np.testing.assert_allclose(
        fitted.churn.booster.predict(X_other, output_margin=True), margin[perm], rtol=0, atol=1e-12
    )
    shap_rows, shap_other = (
        explain(fitted.churn.booster, X),
        explain(fitted.churn.booster, X_other),
    )
    np.testing.assert_allclose(
        shap_other.values.to_numpy(), shap_rows.values.to_numpy()[perm], rtol=0, atol=1e-9
    )
    health = fitted.health.model
    np.testing.assert_allclose(
        health.churn_probability(*health_inputs(other)),
        health.churn_probability(*health_inputs(rows))[perm],
        rtol=0,
        atol=1e-12,
    )


def _predict(
    entities: pd.DataFrame, features: pd.DataFrame, tables: dict, models: Champions
) -> pd.DataFrame:
    """The steps of ``wedsync-cs predict``, reading the features from ``features``."""
    status = entity_status(entities, tables["suppliers"], tables["cancellations"])
    return predict_entities(entities, status, Scorer(models, FrameFeatureReader(features)))


def test_batch_prediction_follows_its_rows_whatever_the_ids_and_order(
    simulated: SimulatedSet, fitted: FittedModels, rows: pd.DataFrame
) -> None:
    models = champions(fitted)
    tables = {name: simulated.tables[name] for name in ("suppliers", "cancellations")}
    entities = rows[list(KEY_COLUMNS)].set_axis(["supplier_id", "as_of"], axis=1)
    # a row for an id no supplier has, to check statuses move with their rows too
    entities.loc[len(entities)] = ["no-such-supplier", entities["as_of"].iloc[0]]
    features = rows
    out = _predict(entities, features, tables, models)
    assert (out["status"].iloc[:-1] == "ok").all() and out["status"].iloc[-1] == "unknown_supplier"

    mapping = swap_ids(tables["suppliers"]["supplier_id"])
    mapping["no-such-supplier"] = "no-such-supplier"
    renamed = {
        name: t.assign(supplier_id=t["supplier_id"].astype(str).map(mapping))
        for name, t in tables.items()
    }
    other_entities, perm = renamed_and_shuffled(entities, mapping)
    # the features renamed too, in another order (the reader finds rows by key)
    other_features = features.sample(frac=1, random_state=3).assign(
        supplier_id=lambda f: f["supplier_id"].astype(str).map(mapping)
    )
    other = _predict(other_entities, other_features, renamed, models)

    back = {v: k for k, v in mapping.items()}
    other = other.assign(supplier_id=other["supplier_id"].map(back))
    expected = out.iloc[perm].reset_index(drop=True)
    pd.testing.assert_frame_equal(other, expected, check_exact=False, rtol=0, atol=1e-12)
