"""The one way to score suppliers: champion models and a feature reader, the same for batch
``predict``, the daily job and the service.

Importing this module imports neither Optuna nor any training step: it needs the model files
(:mod:`training.model_files`), the risk levels and the TreeSHAP explainer, nothing that fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd
import xgboost as xgb

from feature_repo.readers import FeatureReader, FeatureRows
from features.catalog import FAMILIES, HEALTH_FACTORS, SEGMENTS
from training.explain import ChurnExplainer, family_onehot, top_positive
from training.health_model import health_inputs
from training.model_files import Champions
from training.models import coded_dmatrix, coded_frame, coded_matrix, feature_matrix
from training.risk import churn_risk, health_risk

TOP_FACTORS: Final = 3
FEW_ROWS: Final = 1000  # up to this many rows, XGBoost's input is made in one thread
SCORE_COLUMNS: Final = (
    "churn_probability",
    "churn_risk",
    "health_score",
    "health_churn_probability",
    "health_risk",
    *(f"top_factor_{k}" for k in range(1, TOP_FACTORS + 1)),
    "predicted_churn_date",
)


_SEGMENT_CODES: Final = {s: i for i, s in enumerate(SEGMENTS)}


def _keys(keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(keys, pd.DataFrame):
        return keys
    return pd.DataFrame({"supplier_id": [str(k) for k in keys]})


@dataclass(frozen=True)
class Assessment:
    """Everything the scorer says about a batch of keys, one row per key (the keys' index).

    Attributes:
        scores: :data:`SCORE_COLUMNS` and ``scored`` (null where the key has no scorable row).
        factors: the six health factors (0..1) and ``health_segment``.
        families: the churn model's TreeSHAP attributions in log-odds per factor family
            (login, adoption, ...), NaN where not scored.
        rows: the feature rows read.
    """

    scores: pd.DataFrame
    factors: pd.DataFrame
    families: pd.DataFrame
    rows: FeatureRows


@dataclass(frozen=True)
class ScoreArrays:
    """Scores of scored rows as arrays (one entry per row): what :class:`Scorer` computes,
    before any frame is made of it. The churn fields are None when only health was scored."""

    health_score: np.ndarray
    health_churn_probability: np.ndarray
    health_risk: np.ndarray
    churn_probability: np.ndarray | None = None
    churn_risk: np.ndarray | None = None
    families: np.ndarray | None = None
    top_factors: np.ndarray | None = None
    churn_dates: list[date | None] | None = None


@dataclass(frozen=True)
class LiveScores:
    """:meth:`Scorer.live`'s answer: per id whether it was ``scored``, its feature ``days``
    (the day its newest row describes) and health ``factors`` (n, six); ``arrays`` holds the
    scores of the scored ids only, in the order of their positions :attr:`rows`."""

    scored: np.ndarray
    days: list[date]
    factors: np.ndarray
    arrays: ScoreArrays | None = None

    @property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.scored)

    def factor_map(self, i: int) -> dict[str, float]:
        """The health factors of the ``i``-th id by name (NaN where unknown)."""
        return dict(zip(HEALTH_FACTORS, self.factors[i].tolist(), strict=True))


class Scorer:
    """Scores and explains suppliers with the champions, reading features through ``reader``.

    The TreeSHAP explainer is built once, here, not per call.
    """

    def __init__(self, models: Champions, reader: FeatureReader) -> None:
        self.models = models
        self.reader = reader
        self.explainer = ChurnExplainer(models.churn.booster)
        self._families, self._onehot = family_onehot(models.churn.columns)

    def top_factors(self, families: Mapping[str, float]) -> list[str]:
        """The largest positive families of one row of attributions by family (as stored with
        a day's prediction), as :meth:`live` and :meth:`assess` pick them."""
        values = np.array([[families.get(f, np.nan) for f in self._families]], dtype=np.float64)
        return [f for f in top_positive(values, self._families, TOP_FACTORS)[0] if f is not None]

    def features(self, keys: Sequence[str] | pd.DataFrame) -> FeatureRows:
        """The champions' feature rows for ``keys`` (supplier ids, or key rows the reader
        needs, such as ``supplier_id`` and ``as_of``)."""
        return self.reader.read(_keys(keys), self.models.services)

    @staticmethod
    def scorable(rows: FeatureRows) -> np.ndarray:
        """Rows with features and a health score (a score needs the factors it is made of)."""
        return rows.found & rows.frame["health_score"].notna().to_numpy()

    def score(self, keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
        """One row per key (same index): :data:`SCORE_COLUMNS`, null where the key has no
        scorable feature row, and ``scored`` saying which have."""
        return self.assess_rows(self.features(keys)).scores

    def score_rows(self, rows: FeatureRows) -> pd.DataFrame:
        """:meth:`score` of feature rows already read."""
        return self.assess_rows(rows).scores

    def assess(self, keys: Sequence[str] | pd.DataFrame) -> Assessment:
        """Scores, health factors and churn attributions per family of ``keys``."""
        return self.assess_rows(self.features(keys))

    def assess_rows(self, rows: FeatureRows) -> Assessment:
        """:meth:`assess` of feature rows already read."""
        ok = self.scorable(rows)
        frame = rows.frame
        out = pd.DataFrame(index=frame.index, columns=list(SCORE_COLUMNS), dtype=object)
        families = pd.DataFrame(index=frame.index, columns=list(FAMILIES), dtype="float64")
        if ok.any():
            scored, by_family = self._score(frame[ok])
            out.loc[ok, list(SCORE_COLUMNS)] = scored
            families.loc[ok, list(FAMILIES)] = by_family.reindex(columns=list(FAMILIES))
        for column in ("churn_probability", "health_score", "health_churn_probability"):
            out[column] = pd.to_numeric(out[column]).astype("float64")
        out["scored"] = ok
        factors, segment = health_inputs(frame)
        return Assessment(
            scores=out,
            factors=factors.assign(health_segment=segment),
            families=families,
            rows=rows,
        )

    def _score(self, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        factors, segment = health_inputs(features)
        stamps = pd.to_datetime(features["event_timestamp"], utc=True)
        s = self._arrays(
            lambda columns: coded_frame(feature_matrix(features, columns)),
            factors.to_numpy(np.float64),
            pd.Categorical(segment, categories=SEGMENTS).codes,
            [t.date() for t in stamps],
        )
        index = features.index
        out = pd.DataFrame(
            {
                "churn_probability": s.churn_probability,
                "churn_risk": s.churn_risk,
                "health_score": s.health_score,
                "health_churn_probability": s.health_churn_probability,
                "health_risk": s.health_risk,
                **{f"top_factor_{k + 1}": s.top_factors[:, k] for k in range(TOP_FACTORS)},
                "predicted_churn_date": s.churn_dates,
            },
            index=index,
        )
        return out, pd.DataFrame(s.families, index=index, columns=self._families)

    def _health(self, factors: np.ndarray, segment: np.ndarray) -> ScoreArrays:
        """The health model's scores of ``factors`` (n, six) and ``segment`` (positions)."""
        health = self.models.health
        score = health.model.score_values(factors, segment)
        return ScoreArrays(
            health_score=score,
            health_churn_probability=health.model.calibrator.predict(score),
            health_risk=health_risk(score, health.config.thresholds),
        )

    def _arrays(
        self,
        coded: Callable[[Sequence[str]], np.ndarray],
        factors: np.ndarray,
        segment: np.ndarray,
        origins: Sequence[date],
    ) -> ScoreArrays:
        """The one computation of every score, for the batch frames and the service's plain
        values alike: ``coded(columns)`` the rows' coded matrix of those columns
        (:func:`training.models.coded_matrix`), ``factors`` the six health factors,
        ``segment`` their segments' positions, ``origins`` the day of each row's instant (its
        stamp), from which the churn date is counted."""
        churn = self.models.churn
        data = coded(churn.columns)
        # once, for scores, attributions and dates, each predicted without the check of names
        # (the matrix is made from the model's own columns)
        few = len(data) <= FEW_ROWS
        matrix = coded_dmatrix(data, churn.columns, named=False, threads=1 if few else None)
        probability = churn.calibrator.predict(  # = predict_proba(X)[:, 1], calibrated
            churn.booster.get_booster().predict(matrix, validate_features=False)
        )
        families = self.explainer.contributions(matrix)[:, :-1] @ self._onehot
        return dataclasses.replace(
            self._health(factors, segment),
            churn_probability=probability,
            churn_risk=churn_risk(probability, churn.config.thresholds),
            families=families,
            top_factors=top_positive(families, self._families, TOP_FACTORS),
            churn_dates=self._churn_dates(matrix, coded, origins),
        )

    def _churn_dates(
        self,
        matrix: xgb.DMatrix,
        coded: Callable[[Sequence[str]], np.ndarray],
        origins: Sequence[date],
    ) -> list[date | None]:
        """The timing model's predicted churn date counted from each row's instant (None
        without a timing model, or when the median is more than a year away); ``matrix``, the
        churn model's input, is reused when both read the same columns."""
        timing = self.models.timing
        if timing is None:
            return [None] * len(origins)
        if timing.columns != tuple(self.models.churn.columns):
            matrix = coded_dmatrix(coded(timing.columns), timing.columns, named=False)
        return timing.churn_dates(None, origins, matrix)

    def live(self, ids: Sequence[str], *, churn: bool = True) -> LiveScores:
        """Scores of suppliers' newest online rows as plain arrays, without pandas: the
        service's per-request path, equal value for value to :meth:`assess` (tested). With
        ``churn`` false only the health service is read and the health model run (the
        churn fields stay None).

        Raises:
            TypeError: the reader is not an online one (it has no plain-value read).
        """
        values = getattr(self.reader, "values", None)
        if values is None:
            raise TypeError("live scoring needs an online reader (OnlineFeatureReader)")
        services = self.models.services if churn else self.models.services[1:]
        got = values(ids, services)
        factors = np.array(
            [[np.nan if v is None else v for v in got.values[f]] for f in HEALTH_FACTORS],
            dtype=np.float64,
        ).T.reshape(len(got.ids), len(HEALTH_FACTORS))
        segment = np.array(
            [_SEGMENT_CODES.get(v, -1) for v in got.values["health_segment"]], dtype=np.int64
        )
        stored = np.array([np.nan if v is None else v for v in got.values["health_score"]])
        ok = got.found & ~np.isnan(stored)
        origins = [datetime.fromtimestamp(int(t), UTC).date() for t in got.stamps]
        days = [d - timedelta(days=1) for d in origins]  # the day a row describes
        if not ok.any():
            return LiveScores(scored=ok, days=days, factors=factors)
        pick = np.flatnonzero(ok)
        if churn:
            s = self._arrays(
                lambda columns: coded_matrix(got.values, columns)[pick],
                factors[pick],
                segment[pick],
                [origins[i] for i in pick],
            )
        else:
            s = self._health(factors[pick], segment[pick])
        return LiveScores(scored=ok, days=days, factors=factors, arrays=s)

    def explain(self, keys: Sequence[str] | pd.DataFrame) -> pd.DataFrame:
        """Per key with a scorable row: each feature's TreeSHAP contribution to the churn
        model's log-odds (the base value in ``base_log_odds``); same index as the keys, those
        without a row left out."""
        rows = self.features(keys)
        ok = self.scorable(rows)
        X = self.models.churn.matrix(rows.frame[ok])
        explanation = self.explainer.explain(X)
        return explanation.values.assign(base_log_odds=explanation.base)
