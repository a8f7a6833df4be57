"""The retention playbook alone: rule-based scores without a model."""

from __future__ import annotations

from typing import Any, Optional

import pyarrow as _pa

from . import _native
from ._convert import PathLike, arrow as _arrow, path as _path

__all__ = ["score"]


def score(table: Any, *, rules: Optional[PathLike] = None, windows: Optional[PathLike] = None) -> _pa.Table:
    """The playbook on feature rows (``customer_id``, optionally ``as_of``, features as
    :meth:`churn.Dataset.features` returns them): per customer the health score, its
    band and five components (``health_usage`` ... ``health_engagement``), the signals
    that fired and their count, the intervention and why, the segment and the loyalty
    tier. Rule inputs the table lacks read as no data.

    ``rules``: a rules TOML file (``churn-train rules --print-default`` prints the
    built-in one); ``windows``: the feature windows the table was built with."""
    return _native.rules_score(_arrow(table, "table"), _path(rules), _path(windows))
