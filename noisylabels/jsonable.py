"""Plain, strict-JSON data from numpy-laden values: the one rule every JSON file of the project uses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def json_safe(v: Any) -> Any:
    """Containers copied (mapping keys as strings), numpy scalars and arrays made plain Python,
    non-finite floats ``None`` (strict JSON has no NaN)."""
    if isinstance(v, Mapping):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple | np.ndarray):
        return [json_safe(x) for x in v]
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(v) else None
    return v
