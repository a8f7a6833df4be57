"""Type stubs of the extension module (the engine's bindings); use the `churn` package."""

from typing import List, Optional, Sequence, Tuple

import pyarrow as pa

__version__: str

class ChurnError(Exception):
    """Every error the churn engine raises."""

class DataError(ChurnError):
    """Input that is not what the data contract expects (names table or file, row, column or field)."""

class ModelError(ChurnError):
    """A model that cannot be loaded, checked or saved."""

class ConfigError(ChurnError):
    """A rules, goals or feature windows file that is not valid."""

class TrainError(ChurnError):
    """Training cannot run on these examples."""

class Dataset:
    @staticmethod
    def open(path: str) -> Dataset: ...
    @staticmethod
    def from_tables(tables: Sequence[Tuple[str, object]], summary: Optional[str] = None) -> Dataset: ...
    @property
    def customers(self) -> int: ...
    @property
    def source(self) -> str: ...
    def date_range(self) -> Tuple[str, str]: ...
    def features(self, as_of: List[str], windows: Optional[str] = None, summary: Optional[str] = None) -> pa.Table: ...
    def summary(self) -> str: ...
    def examples(self, horizon_days: int = 30, windows: Optional[str] = None, summary: Optional[str] = None) -> pa.Table: ...

class Model:
    @staticmethod
    def load(path: str) -> Model: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def horizon_days(self) -> int: ...
    @property
    def features(self) -> List[str]: ...
    def score(
        self, table: object, reasons: int = 3, top: Optional[int] = None, order: str = ..., survival: bool = True
    ) -> pa.Table: ...
    def score_schema(self) -> pa.Schema: ...
    def score_stream(self, stream: object, reasons: int = 3, survival: bool = True) -> pa.RecordBatchReader: ...
    def predict_json(self, body: str) -> str: ...

class TrainRun:
    name: str
    version: str
    path: str
    report: str
    summary_json: str

class KpiReport:
    def to_json(self) -> str: ...
    def html(self, path: str) -> str: ...

def train(
    dataset: Dataset,
    out: str,
    name: str,
    horizon_days: int,
    models: List[str],
    folds: Optional[int],
    search: str,
    seed: int,
    rules: Optional[str],
    windows: Optional[str],
    gross_margin: float = ...,
    annual_discount: float = ...,
) -> TrainRun: ...
def kpis(
    dataset: Dataset,
    as_of: Optional[str] = None,
    rules: Optional[str] = None,
    goals: Optional[str] = None,
    model: Optional[Model] = None,
) -> KpiReport: ...
def merge_summaries(summaries: List[str]) -> str: ...
def rules_score(table: object, rules: Optional[str] = None, windows: Optional[str] = None) -> pa.Table: ...
