"""Arguments as the engine takes them."""

from __future__ import annotations

import os as _os
from typing import Any, Optional, Union

import pyarrow as _pa

PathLike = Union[str, "_os.PathLike[str]"]


def path(value: Optional[PathLike]) -> Optional[str]:
    return None if value is None else _os.fspath(value)


def arrow(table: Any, what: str) -> Any:
    """An object the engine can read through the Arrow C stream interface."""
    kind = type(table)
    if kind.__module__.split(".")[0] == "pandas" and kind.__name__ == "DataFrame":
        # The index is not a column of the data contract: leave it out.
        return _pa.Table.from_pandas(table, preserve_index=False)
    if hasattr(table, "__arrow_c_stream__"):
        return table
    if hasattr(table, "__arrow_c_array__"):
        return _pa.table(table)
    raise TypeError(
        f"{what}: expected a table (pyarrow.Table, polars.DataFrame, pandas.DataFrame or an "
        f"object with __arrow_c_stream__), got {kind.__module__}.{kind.__name__}"
    )
