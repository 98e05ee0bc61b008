"""Narrow patches of moto's DynamoDB so that one write on the local stack costs the same at 10,000
stored checkpoints as at 100. Each keeps moto's own semantics; only the bookkeeping changes.

1. Transactions. `transact_write_items` deep-copies every touched *table* before writing, to roll
   back on cancellation (moto/dynamodb/models/__init__.py, `original_table_state`): its cost grows
   with everything stored. Here only the touched *items* (and the stream's length) are kept, and a
   cancelled transaction puts exactly those back. moto still runs its own transaction code: its
   table copy is elided (it would restore the very same table object) and the rollback is ours.
2. Queries on the table's key. `Table.query` sorts every item of the table (`all_items()`) and
   then keeps the one partition asked for; here it is handed that partition only.
3. Queries on a global secondary index. The same full sort, then a filter on the index's hash
   key; here a per-index map (hash value -> primary keys) hands it the candidates. The map is
   built on first use and kept up to date by the write paths (put, delete, update, rollback);
   a candidate is checked against the live item, so a stale entry is dropped, never returned.

Everything else of moto's behaviour (conditions, cancellation reasons, stream records, paging,
projection) is untouched: the original methods run on a smaller input. tests/integration/
test_local_moto_scaling.py shows rollbacks stay exact and that the work no longer grows."""

from __future__ import annotations

import copy as _copy
import inspect
import threading
from collections.abc import Iterable
from typing import Any

from moto.dynamodb import models as _ddb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend

_state = threading.local()  # set while a transaction of ours runs: moto's table copy is elided
_INSTALLED = "_signoff_scaling"


# -- 1. transactions: keep the touched items, not the tables ------------------------------------------


class _CopyWithoutTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: during a transaction a Table
    is "copied" as itself (our snapshot restores the touched items instead); anything else, and
    any table copy outside a transaction (backups, restores), is a real deep copy."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table) and getattr(_state, "in_transaction", False):
            return value
        return _copy.deepcopy(value, memo)


def _key_of(table: Table, op_type: str, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    """The (hash, range) key an operation touches, or None when moto will refuse it anyway."""
    source = op.get("Item", {}) if op_type == "Put" else op.get("Key", {})
    try:
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError, AttributeError):
        return None
    return hash_key, range_key


class _Snapshot:
    """What a transaction may change: each touched item as it was (None: absent) and each
    stream's length. Costs O(touched items), whatever the table holds."""

    def __init__(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        self.items: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []
        self.streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items[:100]:  # moto refuses more before writing anything
            if not isinstance(entry, dict) or len(entry) != 1:
                continue
            ((op_type, op),) = entry.items()
            table = backend.tables.get(str(op.get("TableName"))) if isinstance(op, dict) else None
            if table is None:
                continue
            key = _key_of(table, op_type, op)
            if key is None:
                continue
            current = _current(table, *key)
            self.items.append((table, key[0], key[1], _copy.deepcopy(current)))
            if table.stream_shard is not None:
                self.streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))

    def restore(self) -> None:
        for table, hash_key, range_key, old in reversed(self.items):
            if old is None:
                _remove(table, hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = old
            else:
                table.items[hash_key] = old  # type: ignore[assignment]
            if old is not None:
                _index_item(table, old)
        # A cancelled transaction writes nothing to the stream (moto's table copy dropped them too).
        for shard, length in self.streams.values():
            del shard.items[length:]


def _current(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    # Read without the side effect of moto's get_item (its defaultdict adds an empty partition).
    bucket = table.items.get(hash_key)
    if bucket is None:
        return None
    if range_key is None:
        return bucket if isinstance(bucket, Item) else None
    found: Item | None = bucket.get(range_key)
    return found


def _remove(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    if range_key is None:
        table.items.pop(hash_key, None)
        return
    bucket = table.items.get(hash_key)
    if bucket is not None:
        bucket.pop(range_key, None)
        if not bucket:
            del table.items[hash_key]


def _transact_write_items(original: Any) -> Any:
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snapshot = _Snapshot(self, transact_items)
        _state.in_transaction = True
        try:
            original(self, transact_items)
        except BaseException:
            # DynamoDB transactions are all or nothing, whatever moto raised.
            snapshot.restore()
            raise
        finally:
            _state.in_transaction = False

    return transact_write_items


# -- 2 and 3. queries: hand moto's query the candidates, not the whole table ------------------------


def _partition(table: Table, hash_key: DynamoType) -> list[Item]:
    bucket = table.items.get(hash_key)
    if bucket is None:
        return []
    if isinstance(bucket, Item):
        return [bucket]
    return sorted(bucket.values(), key=lambda item: item.range_key)


def _index_hash_attrs(index: Any) -> tuple[str, ...]:
    return tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")


def _index_map(table: Table) -> dict[str, dict[tuple[Any, ...], dict[tuple[Any, ...], None]]]:
    """index name -> hash value(s) -> primary keys (an insertion-ordered set), built on first use."""
    maps: dict[str, dict[tuple[Any, ...], dict[tuple[Any, ...], None]]] | None = getattr(table, _INSTALLED, None)
    if maps is None:
        maps = {index.name: {} for index in table.global_indexes or []}
        setattr(table, _INSTALLED, maps)
        for item in _all_items_unsorted(table):
            _index_item(table, item)
    return maps


def _all_items_unsorted(table: Table) -> Iterable[Item]:
    for bucket in table.items.values():
        if isinstance(bucket, Item):
            yield bucket
        else:
            yield from bucket.values()


def _primary(item: Item) -> tuple[Any, ...]:
    return (item.hash_key, item.range_key)


def _index_item(table: Table, item: Item | None) -> None:
    maps = getattr(table, _INSTALLED, None)
    if maps is None or item is None:
        return
    for index in table.global_indexes or []:
        values = tuple(item.attrs.get(attr) for attr in _index_hash_attrs(index))
        if all(v is not None for v in values):
            maps[index.name].setdefault(values, {})[_primary(item)] = None


def _index_candidates(table: Table, index_name: str, conditions: dict[str, DynamoType]) -> list[Item] | None:
    index = next((i for i in table.global_indexes or [] if i.name == index_name), None)
    if index is None:
        return None
    attrs = _index_hash_attrs(index)
    if not attrs or set(attrs) != set(conditions):
        return None  # a shape this map does not serve: moto's own full scan
    wanted = tuple(conditions[a] for a in attrs)
    keys = _index_map(table).get(index.name, {}).get(wanted, {})
    found: list[Item] = []
    for primary in list(keys):
        item = _current(table, *primary)
        now = tuple(item.attrs.get(a) for a in attrs) if item is not None else ()
        # Deleted, moved to another value, or out of a sparse index (the attribute removed) since:
        # drop the stale entry. (A missing attribute is None, which DynamoType cannot compare with.)
        if item is None or any(v is None for v in now) or now != wanted:
            del keys[primary]
            continue
        found.append(item)
    return sorted(found, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _query(original: Any) -> Any:
    signature = inspect.signature(original)

    def query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, hash_key, *args, **kwargs).arguments
        index_name = bound.get("index_name")
        if index_name:
            conditions = dict(bound.get("hash_key_conditions") or [])
            candidates = _index_candidates(self, index_name, conditions)
        else:
            candidates = _partition(self, hash_key) if hash_key is not None else None
        if candidates is None:
            return original(self, hash_key, *args, **kwargs)
        # moto's query reads `self.all_items()`; for this call it sees the candidates only.
        self.all_items = lambda: candidates  # type: ignore[method-assign]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return query


def _after_put(original: Any) -> Any:
    def put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
        item: Item = original(self, *args, **kwargs)
        _index_item(self, item)
        return item

    return put_item


def _after_update(original: Any) -> Any:
    # moto updates the stored Item in place: index it under its new values.
    def update_item(self: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Item:
        item: Item = original(self, table_name, *args, **kwargs)
        _index_item(self.get_table(table_name), item)
        return item

    return update_item


# -- 4. one operation at a time ----------------------------------------------------------------------

_LOCK = threading.RLock()
_LOCKED_OPS = {
    DynamoDBBackend: ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items"),
    DynamoDBStreamsBackend: ("describe_stream", "get_shard_iterator", "get_records"),
}


def _locked(method: Any) -> Any:
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def install() -> None:
    """Apply the patches once per process (moto's classes are shared by every mock).

    The lock goes on last, outside everything above: moto's DynamoDB is not thread-safe, and the
    local stack serves requests, workflows and stream pollers on many threads. One lock makes each
    operation atomic, as DynamoDB's are, and a stream reader never sees a transaction half-way
    (records it wrote are dropped again if it is cancelled)."""
    if getattr(DynamoDBBackend, _INSTALLED, False):
        return
    _ddb_models.copy = _CopyWithoutTables()  # type: ignore[attr-defined,assignment]
    DynamoDBBackend.transact_write_items = _transact_write_items(  # type: ignore[method-assign]
        DynamoDBBackend.transact_write_items
    )
    DynamoDBBackend.update_item = _after_update(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    Table.query = _query(Table.query)  # type: ignore[method-assign]
    Table.put_item = _after_put(Table.put_item)  # type: ignore[method-assign]
    for backend, names in _LOCKED_OPS.items():
        for name in names:
            setattr(backend, name, _locked(getattr(backend, name)))
    setattr(DynamoDBBackend, _INSTALLED, True)
