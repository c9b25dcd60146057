"""Feature readers: the rows a model scores, for a list of suppliers, from wherever they live.

Every reader answers :meth:`FeatureReader.read` the same way, so that the scorer does not know
where rows come from: :class:`OnlineFeatureReader` serves each supplier's newest row from Feast's
online store (the service's reader), :class:`PointInTimeReader` the row each (supplier, instant)
had at that instant (batch ``predict``'s reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from feature_repo.definitions import FEATURE_TTL, service_columns
from features.catalog import CATEGORIES, FEATURES

if TYPE_CHECKING:
    from feast import FeatureStore


@dataclass(frozen=True)
class FeatureRows:
    """Feature rows for key rows: ``frame`` has the keys' index, ``supplier_id``, the services'
    columns in the catalogue's dtypes and ``event_timestamp``, the stamp of the row read (its
    day's data ends then; NaT without a row); ``found`` says which keys had a row (the others
    are all null)."""

    frame: pd.DataFrame
    found: np.ndarray


class FeatureReader(Protocol):
    def read(self, keys: pd.DataFrame, services: Sequence[str]) -> FeatureRows:
        """The services' features for ``keys`` (``supplier_id``, and ``as_of`` for readers
        that read at an instant), one row per key row, same index."""
        ...


def service_union(services: Sequence[str]) -> list[str]:
    """The columns of several services, each once, in order."""
    return list(dict.fromkeys(c for s in services for c in service_columns(s)))


def catalog_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Feature columns in the catalogue's dtypes (categories with their fixed levels, integers
    as nullable integers, numbers as float); other columns untouched."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        kind = FEATURES[name][1] if name in FEATURES else None
        if kind == "category":
            dtype = column.dtype
            levels = CATEGORIES[name]
            if isinstance(dtype, pd.CategoricalDtype) and tuple(dtype.categories) == levels:
                out[name] = column
            else:
                out[name] = pd.Categorical(column.astype(object), categories=levels)
        elif kind == "int":
            out[name] = (
                column
                if isinstance(column.dtype, pd.Int64Dtype)
                else pd.to_numeric(column).astype("Int64")
            )
        elif kind == "float":
            out[name] = (
                column if column.dtype == np.float64 else pd.to_numeric(column).astype("float64")
            )
        else:
            out[name] = column
    return pd.DataFrame(out, index=frame.index)


def typed_frame(values: dict[str, list], columns: Sequence[str]) -> pd.DataFrame:
    """A frame in the catalogue's dtypes from plain lists (None for missing), built column by
    column without pandas' type inference (the online reader's per-request path)."""
    out: dict[str, object] = {}
    for name in columns:
        raw = values[name]
        kind = FEATURES[name][1] if name in FEATURES else None
        if kind == "category":
            out[name] = pd.Categorical(raw, categories=CATEGORIES[name])
        elif kind == "int":
            out[name] = pd.array(raw, dtype="Int64")
        elif kind == "float":
            out[name] = np.array([np.nan if v is None else v for v in raw], dtype=np.float64)
        else:
            out[name] = pd.array(raw, dtype=object)
    return pd.DataFrame(out)


def feature_refs(store: FeatureStore, services: Sequence[str]) -> list[str]:
    """The ``view:feature`` references of Feast feature services, each once, in order."""
    refs = [
        f"{projection.name_to_use()}:{field.name}"
        for service in services
        for projection in store.get_feature_service(service).feature_view_projections
        for field in projection.features
    ]
    return list(dict.fromkeys(refs))


def _found(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    # a supplier without a row comes back all null
    return frame[list(columns)].notna().any(axis=1).to_numpy()


@dataclass(frozen=True)
class OnlineValues:
    """The online store's answer for some suppliers, as plain values (the service's per-request
    form, no pandas): ``values`` per column one value per id (None where missing), ``stamps``
    each id's newest row stamp in seconds since 1970 (0 without a row)."""

    ids: list[str]
    values: dict[str, list]
    stamps: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return self.stamps > 0  # a stored row has a stamp


def _python(value) -> object:
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


class OnlineFeatureReader:
    """Each supplier's newest materialised row, from Feast's online store (SQLite or Redis).

    A supplier without a row (unknown, not materialised, or last seen longer than the views' TTL
    before the materialisation) comes back all null with ``found`` false. Reading writes
    nothing: the store is opened as it was published.

    From SQLite, rows are read through the store's own ``online_read`` (the interface every
    Feast online store implements, the one ``get_online_features`` calls), once per feature
    view of the services: the same values as ``get_online_features`` (tested), without
    building its response, which costs three times the read for one supplier. From Redis,
    through ``get_online_features``, which reads all views in one round trip where
    ``online_read`` makes one per view.
    """

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._views: dict[tuple[str, ...], list[tuple[object, list[str]]]] = {}

    def _views_of(self, services: Sequence[str]) -> list[tuple[object, list[str]]]:
        # each feature view the services read, with the features read from it, resolved in
        # the registry once per reader
        key = tuple(services)
        if key not in self._views:
            wanted: dict[str, list[str]] = {}
            for name in services:
                for projection in self.store.get_feature_service(name).feature_view_projections:
                    features = wanted.setdefault(projection.name, [])
                    features.extend(f.name for f in projection.features if f.name not in features)
            self._views[key] = [
                (self.store.get_feature_view(view), features) for view, features in wanted.items()
            ]
        return self._views[key]

    def values(self, ids: Sequence[str], services: Sequence[str]) -> OnlineValues:
        """The services' features of ``ids`` as plain values (see :class:`OnlineValues`)."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        ids = [str(s) for s in ids]
        if not self.store.config.online_store.type.endswith(("sqlite", "SqliteOnlineStore")):
            return self._answered(ids, services)
        values: dict[str, list] = {c: [None] * len(ids) for c in service_union(services)}
        stamps = np.zeros(len(ids), dtype=np.int64)
        if ids:
            keys = [
                EntityKey(join_keys=["supplier_id"], entity_values=[Value(string_val=s)])
                for s in ids
            ]
            provider = self.store._get_provider()
            for view, features in self._views_of(services):
                rows = provider.online_read(self.store.config, view, keys, features)
                for i, (stamp, got) in enumerate(rows):
                    if not got:
                        continue
                    for feature in features:
                        if feature in got:
                            values[feature][i] = _python(got[feature])
                    stamps[i] = max(stamps[i], int(stamp.timestamp()))
        return OnlineValues(ids=ids, values=values, stamps=stamps)

    def _answered(self, ids: list[str], services: Sequence[str]) -> OnlineValues:
        """:meth:`values` through ``get_online_features``."""
        values: dict[str, list] = {}
        stamps = np.zeros(len(ids), dtype=np.int64)
        if ids:
            rows = [{"supplier_id": s} for s in ids]
            for name in services:
                part = self.store.get_online_features(
                    features=self.store.get_feature_service(name), entity_rows=rows
                ).to_dict(include_event_timestamps=True)
                for column in service_columns(name):
                    values.setdefault(column, part[column])
                    stamps = np.maximum(stamps, np.asarray(part[f"{column}__ts"], np.int64))
        else:
            values = {c: [] for c in service_union(services)}
        return OnlineValues(ids=ids, values=values, stamps=stamps)

    def read(self, keys: pd.DataFrame, services: Sequence[str]) -> FeatureRows:
        """Also answers ``event_timestamp``: the newest stamp of the supplier's row (its day
        ends then), NaT without a row."""
        got = self.values(keys["supplier_id"], services)
        columns = service_union(services)
        if got.ids:
            frame = typed_frame(
                {"supplier_id": got.ids, **got.values}, ["supplier_id", *columns]
            ).set_axis(keys.index)
        else:
            empty = pd.DataFrame({c: pd.Series(dtype=object) for c in ["supplier_id", *columns]})
            frame = catalog_dtypes(empty).set_axis(keys.index)
        stamps = got.stamps
        when = pd.to_datetime(np.where(stamps > 0, stamps, np.iinfo(np.int64).min), unit="s")
        frame["event_timestamp"] = pd.Series(when, index=keys.index).dt.tz_localize("UTC")
        return FeatureRows(frame=frame, found=got.found)


def historical_features(
    store: FeatureStore, services: str | Sequence[str], entities: pd.DataFrame
) -> pd.DataFrame:
    """Point-in-time features of one or more Feast feature services for ``entities``
    (``supplier_id``, ``event_timestamp``), in one Feast join over the offline store (the union
    of the services' features: one pass however many services are asked for).

    The result keeps the entity rows' order and extra columns (such as ``label``).
    """
    names = [services] if isinstance(services, str) else list(services)
    ordered = entities.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    frame = store.get_historical_features(
        entity_df=ordered, features=feature_refs(store, names)
    ).to_df()
    frame = frame.sort_values("_row").drop(columns="_row").reset_index(drop=True)
    missing = [c for name in names for c in service_columns(name) if c not in frame.columns]
    if missing:
        raise RuntimeError(f"feature service(s) {', '.join(names)} did not return {missing}")
    return frame


def utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def feature_day(instants: pd.Series) -> pd.Series:
    """The grid day whose feature row is the latest known at each instant (same index): the
    row of day ``d`` is stamped ``d + 1`` 00:00 UTC, so an instant on day ``D`` reads ``D - 1``."""
    return (utc(instants).dt.floor("D") - pd.Timedelta(days=1)).dt.date


class PointInTimeReader:
    """The row each (``supplier_id``, ``as_of``) had at its instant, from the raw export.

    An instant on day ``D`` reads the row of day ``D - 1`` (stamped at ``D`` 00:00 UTC); an
    instant after the data reads the last day's row while it is at most the views' TTL old, as
    Feast would. Rows of days the feature table holds come from Feast's offline store when
    ``store`` is given and holds every requested day; the rest are computed for these suppliers
    on these days only (:func:`features.feature_table.feature_rows_for`: the values the full
    table holds, value for value). Reading builds and registers nothing.

    Args:
        tables: the validated contract tables of the export.
        span: the first and last day the export has data for.
        store, stored_days: the Feast store and the grid days its feature table holds (its
            table must have been built from this export).
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        span: tuple[date, date],
        *,
        store: FeatureStore | None = None,
        stored_days: frozenset[date] = frozenset(),
        threads: int = 2,
    ) -> None:
        self.tables = tables
        self.first, self.last = span
        self.store = store
        self.stored_days = stored_days
        self.threads = threads

    @classmethod
    def of(
        cls,
        tables: dict[str, pd.DataFrame],
        *,
        store: FeatureStore | None = None,
        stored_days: set[date] | frozenset[date] = frozenset(),
        threads: int = 2,
    ) -> PointInTimeReader:
        """A reader over the export's own span (its first signup to its last day of data)."""
        from features.feature_table import connect, data_span

        con = connect(tables, threads)
        span = data_span(con)
        con.close()
        return cls(tables, span, store=store, stored_days=frozenset(stored_days), threads=threads)

    def read(self, keys: pd.DataFrame, services: Sequence[str]) -> FeatureRows:
        from features.feature_table import feature_rows_for

        columns = service_union(services)
        instants = utc(keys["as_of"])
        days = feature_day(instants)
        newest = pd.Timestamp(self.last, tz="UTC") + pd.Timedelta(days=1)
        late = (days > self.last).to_numpy()
        days = days.where(~late, self.last)
        readable = (days >= self.first).to_numpy() & ~(late & (instants - newest > FEATURE_TTL))
        ids = keys["supplier_id"].astype(str)
        frame = pd.DataFrame({"supplier_id": ids}, index=keys.index)
        wanted = pd.DataFrame({"supplier_id": ids, "day": days, "as_of": instants})[readable]
        stored = self.store is not None and wanted["day"].isin(self.stored_days).all()
        if len(wanted) and stored:
            entity = pd.DataFrame(
                {
                    "supplier_id": wanted["supplier_id"],
                    "event_timestamp": pd.to_datetime(wanted["day"]).dt.tz_localize("UTC")
                    + pd.Timedelta(days=1),
                }
            )
            got = historical_features(self.store, services, entity).set_axis(wanted.index)
        elif len(wanted):
            table = feature_rows_for(self.tables, wanted[["supplier_id", "day"]], self.threads)
            table["day"] = (table["event_timestamp"] - pd.Timedelta(days=1)).dt.date
            got = (
                wanted[["supplier_id", "day"]]
                .merge(
                    table[["supplier_id", "day", *columns]],
                    how="left",
                    on=["supplier_id", "day"],
                    validate="many_to_one",
                )
                .set_axis(wanted.index)
            )
        else:
            got = pd.DataFrame(columns=columns)
        frame = frame.join(got[columns])
        frame = catalog_dtypes(frame)
        stamp = pd.to_datetime(pd.Series(days, index=keys.index)).dt.tz_localize("UTC")
        found = _found(frame, columns)
        frame["event_timestamp"] = (stamp + pd.Timedelta(days=1)).where(found)
        return FeatureRows(frame=frame, found=found)


class FrameFeatureReader:
    """Feature rows already in memory (a training, evaluation or monitoring frame holding
    ``supplier_id``, ``event_timestamp`` and the services' columns): each key
    (``supplier_id``, ``as_of``) reads the row stamped exactly at its instant."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def read(self, keys: pd.DataFrame, services: Sequence[str]) -> FeatureRows:
        columns = service_union(services)
        rows = pd.DataFrame(
            {
                "supplier_id": self.frame["supplier_id"].astype(str).to_numpy(),
                "as_of": utc(self.frame["event_timestamp"]).to_numpy(),
            }
        ).join(self.frame[columns].reset_index(drop=True))
        wanted = pd.DataFrame(
            {"supplier_id": keys["supplier_id"].astype(str), "as_of": utc(keys["as_of"])}
        )
        got = wanted.merge(rows, how="left", on=["supplier_id", "as_of"], validate="many_to_one")
        frame = catalog_dtypes(got.drop(columns="as_of")).set_axis(keys.index)
        found = _found(frame, columns)
        frame["event_timestamp"] = wanted["as_of"].where(found)
        return FeatureRows(frame=frame, found=found)
