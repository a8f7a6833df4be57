"""churn on Apache Spark: the engine inside Spark's Python workers, on Arrow batches.

``score`` maps a DataFrame of feature rows through the model with ``mapInArrow``: each
Python worker loads the model once (cached for the worker's life) and scores the Arrow
batches Spark hands it, returning exactly ``churn-score``'s columns.

The model directory must be readable by the executors under ``model_uri``: a path on
the cluster's shared file system (DBFS, a mounted volume, NFS), or a directory shipped
with ``spark.sparkContext.addFile(model_dir, recursive=True)`` and named with
``pyspark.SparkFiles.get(name)`` (see docs/spark.md).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator

import pyarrow as _pa

from . import Model

__all__ = ["score"]

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
