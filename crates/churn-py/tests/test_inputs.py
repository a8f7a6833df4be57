"""Every Arrow-compatible input gives the same answer: pyarrow, polars, pandas, tables."""

from __future__ import annotations

import pathlib

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

import churn
from conftest import AS_OF, SAMPLE
from test_same_as_cli import same_table


def test_polars_and_pandas_score_like_pyarrow(model, features):
    expected = model.score(features)
    same_table(model.score(pl.from_arrow(features)), expected)
    frame = features.to_pandas()
    frame.index = frame.index + 1000  # an index is not a column
    same_table(model.score(frame), expected)
    # Several chunks and a RecordBatchReader stream are read alike.
    chunked = pa.Table.from_batches(features.to_batches(max_chunksize=100))
    same_table(model.score(chunked), expected)
    same_table(model.score(pa.RecordBatchReader.from_batches(features.schema, features.to_batches(100))), expected)


def test_rules_alone_agree_with_the_scores(model, features):
    rules = churn.rules.score(pl.from_arrow(features))
    scores = model.score(features)
    assert rules.num_rows == features.num_rows
    for column in ["customer_id", "as_of", "health_score", "health_band", "signals", "intervention", "segment"]:
        assert rules[column].equals(scores[column]), column
    assert set(rules["health_band"].to_pylist()) >= {"healthy", "at_risk"}


def read_sample(name: str, reader) -> object | None:
    for ext in ("parquet", "csv"):
        path = pathlib.Path(SAMPLE) / f"{name}.{ext}"
        if path.exists():
            table = pq.read_table(path) if ext == "parquet" else pv.read_csv(path)
            return reader(table)
    return None


def test_tables_in_memory_load_like_the_directory(features):
    """The sample's files read by pyarrow (types as pyarrow infers them), handed over as
    pyarrow, polars and pandas tables, give the directory's features, bit for bit."""
    names = ["subscriptions", "customers", "events", "tickets", "payments", "surveys", "catalog"]
    for convert in (lambda t: t, pl.from_arrow, lambda t: t.to_pandas()):
        tables = {n: read_sample(n, convert) for n in names}
        ds = churn.Dataset.from_tables(**{k: v for k, v in tables.items() if v is not None})
        assert ds.source == "tables in memory"
        same_table(ds.features(as_of=AS_OF), features)


def test_dates_may_be_dates():
    import datetime

    ds = churn.Dataset.open(SAMPLE)
    same_table(ds.features(as_of=datetime.date(2025, 6, 1)), ds.features(as_of="2025-06-01"))


def test_a_stream_scores_batch_by_batch_like_the_table(model, features):
    batches = features.to_batches(max_chunksize=300)
    reader = model.score_batches(pa.RecordBatchReader.from_batches(features.schema, iter(batches)))
    assert isinstance(reader, pa.RecordBatchReader)
    same_table(reader.read_all(), model.score(features))
    # A bad value in a later batch: its row is counted across the stream.
    mrr = features.schema.get_field_index("mrr")
    values = ["1"] * features.num_rows
    values[1000] = "many"
    bad = features.set_column(mrr, "mrr", pa.array(values))
    reader = model.score_batches(pa.RecordBatchReader.from_batches(bad.schema, bad.to_batches(300)))
    with pytest.raises(Exception, match=r"input stream: row 1001, customer `[^`]+`: feature `mrr`: expected a number, found text `many`"):
        reader.read_all()
