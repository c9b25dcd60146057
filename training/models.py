"""Model factories and the feature matrix: tuning, training and tests build models the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb

from features.catalog import CATEGORIES, FEATURES
from training.monotone import monotone_constraints


def feature_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The model's input: the service's columns, categories with the catalogue's fixed levels
    (so codes never depend on which values a batch happens to hold), numbers as float.

    Raises:
        KeyError: a column of the service is missing from ``frame``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing from the frame: {missing}")
    out = {}
    for name in columns:
        column = frame[name]
        if FEATURES[name][1] == "category":
            levels = CATEGORIES[name]
            dtype = column.dtype
            if isinstance(dtype, pd.CategoricalDtype) and tuple(dtype.categories) == levels:
                out[name] = column.array  # already in the catalogue's levels: no re-coding
            else:
                out[name] = pd.Categorical(column.astype(object), categories=levels)
        elif column.dtype == np.float64:
            out[name] = column.to_numpy()
        elif isinstance(column.dtype, pd.Int64Dtype):
            out[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()
    return pd.DataFrame(out, index=frame.index, copy=False)


def booster_matrix(X: pd.DataFrame) -> xgb.DMatrix:
    """A :func:`feature_matrix` as XGBoost's input, built from numpy: category codes (of the
    catalogue's fixed levels, as in training) with the columns typed categorical. Gives the
    same predictions and contributions as the pandas frame, several times faster for the
    service's few-row requests."""
    return coded_dmatrix(coded_frame(X), list(X.columns))


def coded_frame(X: pd.DataFrame) -> np.ndarray:
    """The numbers of a :func:`feature_matrix` (category codes, NaN where missing), shape
    (rows, columns): what :func:`coded_matrix` makes of plain values."""
    columns = []
    for name in X.columns:
        column = X[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy(np.float64)
            columns.append(np.where(codes < 0, np.nan, codes))
        else:
            columns.append(column.to_numpy(np.float64))
    return np.column_stack(columns) if columns else np.zeros((len(X), 0))


def coded_dmatrix(
    data: np.ndarray, columns: Sequence[str], *, named: bool = True, threads: int | None = None
) -> xgb.DMatrix:
    """XGBoost's input of a coded matrix (see :func:`coded_matrix`): ``data`` (n, columns),
    the category columns typed categorical.

    Args:
        named: give the matrix the column names. A matrix made without them must be predicted
            with ``validate_features=False``; making it costs half as much (the names are
            copied through ctypes one by one), which a one-row request notices.
        threads: XGBoost's threads for making it (its default: all cores); one for a request's
            few rows, whose threads cost more than the copy.
    """
    kinds = ["c" if FEATURES[c][1] == "category" else "q" for c in columns]
    return xgb.DMatrix(
        data,
        feature_names=list(columns) if named else None,
        feature_types=kinds,
        enable_categorical=True,
        nthread=threads,
    )


def coded_matrix(values: Mapping[str, Sequence[Any]], columns: Sequence[str]) -> np.ndarray:
    """The numbers :func:`booster_matrix` feeds XGBoost, from plain values (an online store's
    answer: None where missing): a category's position among the catalogue's fixed levels
    (NaN for a missing or unknown level, as :func:`feature_matrix` makes it), numbers as
    float. Shape (rows, columns)."""
    n = len(values[columns[0]]) if columns else 0
    out = np.empty((n, len(columns)), dtype=np.float64)
    nan = float("nan")
    for j, name in enumerate(columns):
        raw = values[name]
        if FEATURES[name][1] == "category":
            code = _LEVEL_CODES[name]
            out[:, j] = [code.get(v, nan) for v in raw]
        else:
            out[:, j] = [nan if v is None else v for v in raw]
    return out


_LEVEL_CODES: Final = {
    name: {level: float(i) for i, level in enumerate(levels)}
    for name, levels in CATEGORIES.items()
}


def make_churn_model(
    params: Mapping[str, Any],
    columns: Sequence[str],
    *,
    n_estimators: int = 1000,
    early_stopping_rounds: int | None = None,
    threads: int = 2,
    seed: int = 0,
    constrained: bool = True,
) -> xgb.XGBClassifier:
    """An unfitted XGBoost churn classifier with the given hyperparameters, for a feature matrix
    of ``columns`` (see :func:`feature_matrix`).

    The monotone constraints of :mod:`training.monotone` apply to those of ``columns`` they
    name, so every model built here (tuning trials, the final fit, tests) keeps the directions;
    ``constrained=False`` drops them, only to measure what they cost or gain.
    """
    return xgb.XGBClassifier(
        n_estimators=n_estimators,
        early_stopping_rounds=early_stopping_rounds,
        enable_categorical=True,
        tree_method="hist",
        max_cat_to_onehot=1,
        objective="binary:logistic",
        eval_metric="logloss",
        n_jobs=threads,
        random_state=seed,
        monotone_constraints=monotone_constraints(columns) if constrained else None,
        **dict(params),
    )
