"""churn on Apache Spark: the engine inside Spark's Python workers, on Arrow batches.

``score`` maps a DataFrame of feature rows through the model with ``mapInArrow``: each
Python worker loads the model once (cached for the worker's life) and scores the Arrow
batches Spark hands it, returning exactly ``churn-score``'s columns.

``features`` builds point-in-time features bucket by bucket of customers: every table
is hashed into buckets by ``pmod(xxhash64(customer_id), buckets)`` (Spark's
``xxhash64``, seed 42, on every table alike), one shuffle brings each bucket's rows of
every table to one task, and the engine runs there. Two passes over the buckets: the
first summarises what features depend on beyond a customer's own rows (event types
and product features first seen, the earliest event, the kind of text attributes),
the second builds each bucket's rows with the merged summary, so that the result is
the rows and values of ``churn-train features`` on the whole data set.

The model directory must be readable by the executors under ``model_uri``: a path on
the cluster's shared file system (DBFS, a mounted volume, NFS), or a directory shipped
with ``spark.sparkContext.addFile(model_dir, recursive=True)`` and named with
``pyspark.SparkFiles.get(name)`` (see docs/spark.md).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import pyarrow as _pa
import pyarrow.compute as _pc

from . import _TABLES, DateLike, Model, _dates, _native
from ._convert import PathLike, path as _path

__all__ = ["examples", "features", "score"]

#: The key every table is bucketed by, and the name of the bucket column.
BUCKET = "_churn_bucket"
#: Rows of the events table per bucket the default number of buckets aims at.
EVENTS_PER_BUCKET = 5_000_000

_MODELS: Dict[str, Model] = {}
_LOCK = threading.Lock()


def _model(uri: str) -> Model:
    """The model at ``uri``, loaded once per Python worker process."""
    with _LOCK:
        model = _MODELS.get(uri)
        if model is None:
            model = _MODELS[uri] = Model.load(uri)
        return model


def _spark_schema(schema: _pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def score(df: Any, model_uri: str, *, reasons: int = 3) -> Any:
    """Scores a Spark DataFrame of feature rows (``customer_id``, optionally
    ``as_of``, and the model's feature columns, as ``churn-train features`` writes
    them): a DataFrame with ``churn-score``'s columns, one row per input row. Lazy, like
    every Spark transformation; a row that cannot be scored fails the task with the
    engine's message."""
    schema = _model(model_uri).score_schema
    spark_schema = _spark_schema(schema)

    def run(batches: Iterator[_pa.RecordBatch]) -> Iterator[_pa.RecordBatch]:
        model = _model(model_uri)
        for batch in batches:
            scored = model.score(_pa.Table.from_batches([batch]), reasons=reasons)
            # Spark may ask for other Arrow string types (large_string): a cast of the
            # offsets, not of the text.
            yield from scored.to_batches()

    return df.mapInArrow(run, spark_schema)


def _tagged(tables: Mapping[str, Any], buckets: int) -> Any:
    """One DataFrame holding every table but the catalog: a bucket column and one struct
    column per table, set on that table's rows and null elsewhere."""
    from pyspark.sql import functions as F

    parts = []
    names = [n for n in tables if n != "catalog"]
    structs = {n: F.struct(*[F.col(f"`{c}`") for c in tables[n].columns]) for n in names}
    types = {n: tables[n].select(structs[n].alias(n)).schema[n].dataType for n in names}
    for name in names:
        df = tables[name]
        columns = [F.expr(f"pmod(xxhash64(customer_id), {buckets})").cast("int").alias(BUCKET)]
        for other in names:
            value = structs[name] if other == name else F.lit(None).cast(types[other])
            columns.append(value.alias(other))
        parts.append(df.select(*columns))
    tagged = parts[0]
    for p in parts[1:]:
        tagged = tagged.unionByName(p)
    return tagged


def _split(group: _pa.Table, names: Sequence[str], catalog: Optional[_pa.Table]) -> List[tuple]:
    """The tables of one bucket from its tagged rows (empty tables keep their columns:
    a table present in the whole is present in every bucket)."""
    out = []
    for name in names:
        column = group.column(name)
        rows = column.filter(_pc.is_valid(column)).combine_chunks()
        fields = list(rows.type)
        arrays = rows.flatten() if len(rows) else [_pa.array([], type=f.type) for f in fields]
        out.append((name, _pa.Table.from_arrays(arrays, schema=_pa.schema(fields))))
    if catalog is not None:
        out.append(("catalog", catalog))
    return out


def features(
    tables: Mapping[str, Any],
    as_of: Union[DateLike, Sequence[DateLike]],
    *,
    buckets: Optional[int] = None,
    windows: Optional[PathLike] = None,
) -> Any:
    """Point-in-time features of every customer active at each date of ``as_of``, built
    on the cluster bucket by bucket: the rows and values of ``churn-train features`` on
    the whole data set (in no particular order).

    ``tables``: Spark DataFrames with the data contract's columns, by table name
    (``subscriptions`` required; ``customers``, ``events``, ``tickets``, ``payments``,
    ``surveys``, ``catalog`` optional). ``buckets``: how many buckets of customers (a
    task holds one bucket's rows); by default one per 5 million events."""
    dates = _dates(as_of)
    windows_path = _path(windows)
    return _by_bucket(tables, buckets, None, lambda ds, whole: ds.features(dates, windows_path, whole))


def examples(
    tables: Mapping[str, Any],
    horizon_days: int = 30,
    *,
    buckets: Optional[int] = None,
    sample: Optional[float] = None,
    windows: Optional[PathLike] = None,
) -> Any:
    """Labelled examples of every monthly observation date with a full horizon (the
    whole data set's dates), built bucket by bucket: the rows of ``churn-train
    examples`` (``label`` as a ByteType: Spark has no unsigned types). ``sample`` (0 to 1) keeps the customers of the first ``sample`` share of
    the buckets: the same customers every time, with all their dates."""
    windows_path = _path(windows)
    return _by_bucket(
        tables, buckets, sample, lambda ds, whole: ds.examples(horizon_days, windows_path, whole)
    )


def _by_bucket(tables: Mapping[str, Any], buckets: Optional[int], sample: Optional[float], work: Any) -> Any:
    """Runs `work(dataset, whole_summary)` on every bucket of customers (see the module's
    documentation); the output schema comes from `work` on a bucket without rows."""
    if "subscriptions" not in tables:
        raise ValueError("tables: `subscriptions` is required")
    unknown = sorted(set(tables) - set(_TABLES))
    if unknown:
        raise ValueError(f"tables: {', '.join(unknown)} not tables of the data contract (expected {', '.join(_TABLES)})")
    if buckets is None:
        events = tables.get("events")
        rows = events.count() if events is not None else 0
        buckets = max(1, -(-rows // EVENTS_PER_BUCKET))
    if buckets < 1:
        raise ValueError(f"buckets: at least 1, got {buckets}")
    if sample is not None and not 0 < sample <= 1:
        raise ValueError(f"sample: a share of the customers, above 0 and at most 1, got {sample}")
    catalog = tables["catalog"].toArrow() if "catalog" in tables else None
    names = [n for n in tables if n != "catalog"]
    tagged = _tagged(tables, buckets)

    def summarise(group: _pa.Table) -> _pa.Table:
        ds = _native.Dataset.from_tables(_split(group, names, catalog))
        return _pa.table({"summary": [ds.summary()]})

    # Pass 1, over every bucket: what the parts depend on in the whole.
    summaries = [r["summary"] for r in tagged.groupBy(BUCKET).applyInArrow(summarise, "summary string").collect()]
    whole = _native.merge_summaries(summaries)
    # The columns, from the engine itself: a bucket without rows, with the summary.
    empty = _pa.Table.from_batches([], schema=_arrow_schema(tagged.schema, tables["subscriptions"]))
    schema = work(_native.Dataset.from_tables(_split(empty, names, catalog), whole), whole).schema
    # Spark has no unsigned types: the 0/1 label is a ByteType.
    schema = _pa.schema([f.with_type(_pa.int8()) if f.type == _pa.uint8() else f for f in schema])

    def build(group: _pa.Table) -> _pa.Table:
        ds = _native.Dataset.from_tables(_split(group, names, catalog), whole)
        return work(ds, whole).cast(schema)

    if sample is not None:
        from pyspark.sql import functions as F

        tagged = tagged.where(F.col(BUCKET) < max(1, round(sample * buckets)))
    # Pass 2: each bucket's rows of the whole's table.
    return tagged.groupBy(BUCKET).applyInArrow(build, _spark_schema(schema))


def _arrow_schema(spark_schema: Any, df: Any) -> _pa.Schema:
    """The Arrow schema Spark hands a UDF for rows of `spark_schema` (timestamps in the
    session's time zone, as instants)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    timezone = df.sparkSession.conf.get("spark.sql.session.timeZone")
    return to_arrow_schema(spark_schema, timezone=timezone)
