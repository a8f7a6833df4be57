"""churn: churn prediction for subscription businesses, in Python.

The engine behind the ``churn-train``, ``churn-serve`` and ``churn-score`` commands,
running in this process. Tables go in as any Arrow-compatible table (``pyarrow.Table``,
``polars.DataFrame``, ``pandas.DataFrame`` or an object with ``__arrow_c_stream__``) and
come back as ``pyarrow.Table``. Heavy calls release the GIL.

>>> import churn
>>> ds = churn.Dataset.open("data/sample")
>>> feats = ds.features(as_of="2025-06-01")
>>> run = churn.train(ds, out="models", name="churn")
>>> model = churn.Model.load("models/churn")
>>> scores = model.score(feats, reasons=3)
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import math as _math
import os as _os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union, overload

import pyarrow as _pa

from . import _native
from . import rules
from ._convert import arrow as _arrow, path as _path
from ._native import (
    ChurnError,
    ConfigError,
    DataError,
    ModelError,
    TrainError,
    __version__,
)

__all__ = [
    "ChurnError",
    "ConfigError",
    "DataError",
    "Dataset",
    "Kpis",
    "Model",
    "ModelError",
    "TrainError",
    "TrainRun",
    "kpis",
    "rules",
    "train",
    "__version__",
]

from ._convert import PathLike
DateLike = Union[str, _dt.date]
#: Anything Arrow can read as a table: ``pyarrow.Table`` or ``RecordBatch``,
#: ``polars.DataFrame``, ``pandas.DataFrame``, or an object with ``__arrow_c_stream__``.
TableLike = Any

_TABLES = ("subscriptions", "customers", "events", "tickets", "payments", "surveys", "catalog")


def _date(value: DateLike, name: str) -> str:
    if isinstance(value, _dt.datetime):
        raise TypeError(f"{name}: give a date (datetime.date or 'YYYY-MM-DD'), not a datetime")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"{name}: expected a date (datetime.date or 'YYYY-MM-DD'), got {type(value).__name__}")


class Dataset:
    """Customer data, loaded and checked against the data contract.

    Build one with :meth:`open` (a data directory of CSV or Parquet files) or
    :meth:`from_tables` (tables you hold in memory).
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: "_native.Dataset") -> None:
        self._inner = inner

    @classmethod
    def open(cls, path: PathLike) -> "Dataset":
        """Loads a data directory: ``subscriptions`` (required) and optionally
        ``customers``, ``events``, ``tickets``, ``payments``, ``surveys`` and ``catalog``,
        each as ``.csv``, ``.csv.gz`` or ``.parquet``. Raises :class:`DataError` naming
        the file, row and column of the first bad value."""
        return cls(_native.Dataset.open(_os.fspath(path)))

    @classmethod
    def from_tables(
        cls,
        subscriptions: TableLike,
        *,
        customers: Optional[TableLike] = None,
        events: Optional[TableLike] = None,
        tickets: Optional[TableLike] = None,
        payments: Optional[TableLike] = None,
        surveys: Optional[TableLike] = None,
        catalog: Optional[TableLike] = None,
    ) -> "Dataset":
        """Loads tables you hold in memory, with the same columns and checks as the
        files of a data directory. Errors name the table (``subscriptions table``), the
        row (from 1) and the column. The tables are read in place, not copied."""
        given = {
            "subscriptions": subscriptions,
            "customers": customers,
            "events": events,
            "tickets": tickets,
            "payments": payments,
            "surveys": surveys,
            "catalog": catalog,
        }
        tables = [(name, _arrow(t, f"{name} table")) for name, t in given.items() if t is not None]
        return cls(_native.Dataset.from_tables(tables))

    @property
    def customers(self) -> int:
        """Customers with at least one subscription."""
        return self._inner.customers

    @property
    def source(self) -> str:
        """The data directory, or ``tables in memory``."""
        return self._inner.source

    def date_range(self) -> "tuple[str, str]":
        """The first and the last day with data, as ``YYYY-MM-DD``."""
        return self._inner.date_range()

    def features(
        self, as_of: Union[DateLike, Sequence[DateLike]], *, windows: Optional[PathLike] = None
    ) -> _pa.Table:
        """Point-in-time features of every customer active at ``as_of`` (a date, or
        several: one row per customer and date), from what happened strictly before it:
        the rows of ``churn-train features``.

        ``windows``: a TOML file of feature windows (``usage_window_days``, ...)."""
        return self._inner.features(_dates(as_of), _path(windows))

    def examples(self, horizon_days: int = 30, *, windows: Optional[PathLike] = None) -> _pa.Table:
        """Labelled examples of every monthly observation date with a full horizon
        (``label`` is 1 when the customer churned within ``horizon_days``): the rows of
        ``churn-train examples``."""
        return self._inner.examples(horizon_days, _path(windows))

    def __repr__(self) -> str:
        return repr(self._inner)


def _dates(as_of: Union[DateLike, Sequence[DateLike]]) -> List[str]:
    if isinstance(as_of, (str, _dt.date)):
        return [_date(as_of, "as_of")]
    return [_date(d, "as_of") for d in as_of]


def _as_dataset(dataset: Union[Dataset, PathLike]) -> Dataset:
    return dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)


def _json_value(name: str, value: Any) -> Any:
    """A feature value as the JSON the server reads; NaN (pandas' missing) is null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, _dt.date):
        return value.isoformat()  # `as_of` of a feature row; the server ignores it
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        value = value.item()  # a NumPy scalar
    if isinstance(value, float):
        if _math.isnan(value):
            return None
        if _math.isinf(value):
            raise DataError(f"`{name}`: {value} is not a finite number")
    return value


class Model:
    """A trained model version, loaded and checked against itself."""

    __slots__ = ("_inner",)

    def __init__(self, inner: "_native.Model") -> None:
        self._inner = inner

    @classmethod
    def load(cls, path: PathLike) -> "Model":
        """Loads a model version directory, a model directory (the version its
        ``LATEST`` names) or a ``model.bin``. Raises :class:`ModelError`."""
        return cls(_native.Model.load(_os.fspath(path)))

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def version(self) -> str:
        return self._inner.version

    @property
    def path(self) -> str:
        """The version directory."""
        return _os.fspath(self._inner.path)

    @property
    def horizon_days(self) -> int:
        """Days ahead the churn probability is about."""
        return self._inner.horizon_days

    @property
    def features(self) -> List[str]:
        """The feature columns the model reads."""
        return self._inner.features

    def score(
        self,
        table: TableLike,
        *,
        reasons: int = 3,
        top: Optional[int] = None,
        order: str = "revenue_at_risk",
        survival: bool = True,
    ) -> _pa.Table:
        """Scores feature rows (``customer_id``, optionally ``as_of``, and feature
        columns, as :meth:`Dataset.features` returns them): the columns and values of
        ``churn-score``. With ``top``, only the ``top`` customers ranked by ``order``
        (``revenue_at_risk``: probability x MRR; ``clv_at_risk``: probability x lifetime
        value; ``probability``), as ``churn-score --top N --order``. Raises
        :class:`DataError` at the first row that cannot be scored, naming the row and
        column, and ``ValueError`` for an unknown order. ``survival=False`` leaves the
        lifetime and CLV columns empty (``--no-survival``: skips the survival curve)."""
        return self._inner.score(_arrow(table, "table"), reasons, top, order, survival)

    @property
    def score_schema(self) -> _pa.Schema:
        """The columns :meth:`score` returns (``churn-score``'s)."""
        return self._inner.score_schema()

    def score_batches(self, stream: TableLike, *, reasons: int = 3, survival: bool = True) -> _pa.RecordBatchReader:
        """Scores a stream of feature rows (a ``pyarrow.RecordBatchReader``, a dataset
        scanner's reader, or any table) batch by batch as the returned
        ``pyarrow.RecordBatchReader`` is read: for inputs larger than memory. The
        batches are those of :meth:`score`; a row that cannot be scored ends the stream
        with a pyarrow error carrying the same message (rows numbered across the
        stream)."""
        return self._inner.score_stream(_arrow(stream, "stream"), reasons, survival)

    @overload
    def predict(
        self, row: Mapping[str, Any], *, customer_id: Optional[str] = ..., explain: bool = ..., top: int = ...
    ) -> Dict[str, Any]: ...

    @overload
    def predict(
        self, row: Sequence[Mapping[str, Any]], *, customer_id: None = ..., explain: bool = ..., top: int = ...
    ) -> List[Dict[str, Any]]: ...

    def predict(self, row, *, customer_id=None, explain=True, top=5):
        """Predicts one customer from a feature dict (or a list of them), as
        ``POST /v1/predict`` does: probability, risk band, revenue at risk, reasons,
        health score, signals, intervention, segment, warnings. Features left out are
        missing (imputed); NaN counts as missing. ``customer_id`` may also be a key of
        the dict, as in a row of a feature table."""
        rows = [row] if isinstance(row, Mapping) else list(row)
        if customer_id is not None and len(rows) != 1:
            raise ValueError("customer_id names one customer: give one row")
        customers = []
        for r in rows:
            if not isinstance(r, Mapping):
                raise TypeError(f"a row is a dict of feature name to value, got {type(r).__name__}")
            entry: Dict[str, Any] = {"features": {k: _json_value(k, v) for k, v in r.items()}}
            if customer_id is not None:
                entry["customer_id"] = customer_id
            customers.append(entry)
        body = _json.dumps({"explain": explain, "top": top, "customers": customers}, allow_nan=False)
        predictions = _json.loads(self._inner.predict_json(body))["predictions"]
        return predictions[0] if isinstance(row, Mapping) else predictions

    def __repr__(self) -> str:
        return repr(self._inner)


class TrainRun:
    """What :func:`train` saved and how the model did in the backtest."""

    __slots__ = ("name", "version", "path", "report", "summary")

    def __init__(self, inner: "_native.TrainRun") -> None:
        self.name: str = inner.name
        self.version: str = inner.version
        #: The version directory.
        self.path: str = _os.fspath(inner.path)
        #: The HTML report.
        self.report: str = _os.fspath(inner.report)
        #: What ``churn-train train --json`` prints.
        self.summary: Dict[str, Any] = _json.loads(inner.summary_json)

    @property
    def chosen(self) -> str:
        """The candidate that was chosen (``logistic``, ``forest``, ``gbm`` or ``blend``)."""
        return self.summary["chosen"]

    @property
    def metrics(self) -> Dict[str, Any]:
        """The chosen model's backtest figures over every fold's test rows pooled
        (``roc_auc``, ``pr_auc``, ``log_loss``, ``brier``, ``ece``, ``lift_top_decile``, ...)."""
        return self.summary["backtest"]

    def model(self) -> Model:
        """The saved model, loaded."""
        return Model.load(self.path)

    def __repr__(self) -> str:
        return f"TrainRun({self.name} version {self.version}, {self.chosen}, report {self.report})"


def train(
    dataset: Union[Dataset, PathLike],
    out: PathLike = "models",
    name: str = "churn",
    *,
    horizon_days: int = 30,
    models: Sequence[str] = ("logistic", "forest", "gbm", "blend"),
    folds: Optional[int] = None,
    search: str = "quick",
    seed: int = 42,
    rules: Optional[PathLike] = None,
    windows: Optional[PathLike] = None,
    gross_margin: float = 1.0,
    annual_discount: float = 0.0,
) -> TrainRun:
    """Trains, backtests out of time and saves a churn model, as ``churn-train train
    --data`` does: writes ``OUT/NAME/VERSION/`` (``model.bin``, ``model.json``,
    ``report.json``, ``report.html``) and moves ``OUT/NAME/LATEST`` to it.
    ``gross_margin`` and ``annual_discount`` value the survival model's CLV (as
    ``--gross-margin`` and ``--annual-discount``)."""
    ds = _as_dataset(dataset)
    return TrainRun(
        _native.train(
            ds._inner,
            _os.fspath(out),
            name,
            horizon_days,
            list(models),
            folds,
            search,
            seed,
            _path(rules),
            _path(windows),
            gross_margin,
            annual_discount,
        )
    )


class Kpis(Dict[str, Any]):
    """The retention KPIs (what ``churn-train kpis --json`` writes), as a dict; the
    page with :meth:`html`."""

    def __init__(self, inner: "_native.KpiReport") -> None:
        super().__init__(_json.loads(inner.to_json()))
        self._inner = inner

    @property
    def summary(self) -> Dict[str, Any]:
        """The latest month's figures: churn, retention, MRR, NRR, CLV, ..."""
        return self["summary"]

    def html(self, path: PathLike) -> str:
        """Writes the KPI page (HTML, atomically); returns its path."""
        return _os.fspath(self._inner.html(_os.fspath(path)))


def kpis(
    dataset: Union[Dataset, PathLike],
    as_of: Optional[DateLike] = None,
    *,
    rules: Optional[PathLike] = None,
    goals: Optional[PathLike] = None,
    model: Optional[Model] = None,
) -> Kpis:
    """Retention KPIs as of a date (default: the end of the data): what ``churn-train
    kpis`` computes. With a ``model`` that has a survival curve, also each active
    customer's lifetime value per signup year, segment and plan (``model_clv``, as
    ``--model``)."""
    ds = _as_dataset(dataset)
    return Kpis(
        _native.kpis(
            ds._inner,
            None if as_of is None else _date(as_of, "as_of"),
            _path(rules),
            _path(goals),
            None if model is None else model._inner,
        )
    )
