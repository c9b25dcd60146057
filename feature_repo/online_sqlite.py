"""Feast's SQLite online store with batched writes and leaner reads.

Feast 0.67's :class:`~feast.infra.online_stores.sqlite.SqliteOnlineStore` writes one
``INSERT ... ON CONFLICT`` statement per feature value from a Python loop (74,000 suppliers x
118 values a day), and its reads turn every row's timestamp into a datetime through SQLite's
column converter (a third of reading 100 suppliers). This subclass writes the same rows (same
tables, columns, keys and encodings) with one ``executemany`` per view, and reads them with one
timestamp per supplier; it answers what Feast's own store answers (tested against it). Tables,
schema changes and everything else are Feast's own. Set as the store's ``online_store.type``
(``feature_repo.online_sqlite.BatchedSqliteOnlineStore``) by :mod:`feature_repo.store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from feast.feature_view import FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import to_naive_utc

STORE_TYPE = "feature_repo.online_sqlite.BatchedSqliteOnlineStore"

# The ``value_text`` Feast stores beside each value (see feast's ``extract_text_and_num``).
_NUMERIC = frozenset({"int64_val", "int32_val", "double_val", "float_val"})

Row = tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]


class BatchedSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    """Feast's SQLite online store settings, selecting :class:`BatchedSqliteOnlineStore`."""

    type: Literal["feature_repo.online_sqlite.BatchedSqliteOnlineStore"] = STORE_TYPE  # type: ignore[assignment]


def value_text(value: ValueProto) -> str | None:
    """The text Feast's SQLite store keeps beside a value (for its text search)."""
    kind = value.WhichOneof("val")
    if kind == "string_val":
        return value.string_val
    if kind in _NUMERIC:
        return str(getattr(value, kind))
    if kind == "bool_val":
        return str(value.bool_val)
    return None


def _epoch(ts: datetime | None) -> int | None:
    """Feast's SQLite timestamp encoding, as its own writes make it (its datetime adapter after
    ``to_naive_utc``)."""
    return None if ts is None else int(to_naive_utc(ts).timestamp())


def sqlite_rows(data: list[Row], key_version: int) -> Iterator[tuple[Any, ...]]:
    """The ``(entity_key, feature_name, value, value_text, event_ts, created_ts)`` rows Feast
    writes for ``data``, in its order."""
    for entity_key, values, timestamp, created in data:
        key = serialize_entity_key(entity_key, entity_key_serialization_version=key_version)
        event_ts, created_ts = _epoch(timestamp), _epoch(created)
        for name, value in values.items():
            yield key, name, value.SerializeToString(), value_text(value), event_ts, created_ts


class BatchedSqliteOnlineStore(SqliteOnlineStore):
    """:class:`SqliteOnlineStore` whose writes are one ``executemany`` per view and batch."""

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[Row],
        progress: Callable[[int], Any] | None,
    ) -> None:
        store = config.online_store
        if store.vector_enabled or getattr(store, "enable_openai_compatible_store", False):
            # vectors and numeric filters: Feast's own row-by-row writes
            super().online_write_batch(config, table, data, progress)
            return
        conn = self._get_conn(config)
        name = compute_table_id(
            config.project, table, config.registry.enable_online_feature_view_versioning
        )
        upsert = (
            f"INSERT INTO {_quote_id(name)} "
            "(entity_key, feature_name, value, value_text, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts;"
        )
        with conn:
            conn.executemany(upsert, sqlite_rows(data, config.entity_key_serialization_version))
        if progress:
            progress(len(data))

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        conn = self._get_conn(config)
        keys = [
            serialize_entity_key(
                k, entity_key_serialization_version=config.entity_key_serialization_version
            )
            for k in entity_keys
        ]
        name = compute_table_id(
            config.project, table, config.registry.enable_online_feature_view_versioning
        )
        # the cast keeps SQLite's converter off each row's timestamp (the same integer)
        rows = conn.execute(
            f"SELECT entity_key, feature_name, value, CAST(event_ts AS INTEGER) "
            f"FROM {_quote_id(name)} WHERE entity_key IN ({','.join('?' * len(keys))})",
            keys,
        ).fetchall()
        found: dict[bytes, tuple[int, dict[str, ValueProto]]] = {}
        for key, feature, blob, stamp in rows:
            values = found[key][1] if key in found else {}
            value = ValueProto()
            value.ParseFromString(blob)
            values[feature] = value
            found[key] = (stamp, values)  # Feast keeps the last row's stamp
        answer: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            if key in found:
                stamp, values = found[key]
                # Feast's own decoding (its converter, then UTC)
                answer.append((datetime.fromtimestamp(stamp).replace(tzinfo=UTC), values))
            else:
                answer.append((None, None))
        return answer
