"""Tests of noisylabels.spaces: the bounded-float parameter type and the R(t) spaces."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from noisylabels.spaces import SPACES, Param


def test_param_validation_and_unit_maps() -> None:
    p = Param("lr", 1e-4, 1e-1, log=True)
    assert p.from_unit(0.0) == pytest.approx(1e-4)
    assert p.from_unit(1.0) == pytest.approx(1e-1)
    assert p.from_unit(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))
    assert p.to_unit(p.from_unit(0.3)) == pytest.approx(0.3)
    q = Param("w", -1, 3)
    assert (q.low, q.high) == (-1.0, 3.0) and isinstance(q.low, float)
    assert q.from_unit(0.25) == pytest.approx(0.0)
    assert q.from_unit(-0.5) == -1.0 and q.from_unit(2.0) == 3.0  # clipped to the range
    assert Param.from_dict(q.to_dict()) == q
    assert Param.from_dict({"name": "w", "low": -1, "high": 3}) == q
    assert Param("b", 0.0, 1.0, log=np.bool_(False)).log is False
    with pytest.raises(ValueError, match="low < high"):
        Param("x", 1.0, 1.0)
    with pytest.raises(ValueError, match="low > 0"):
        Param("x", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="finite"):
        Param("x", 0.0, math.inf)
    with pytest.raises(ValueError, match="finite number"):
        Param("x", "0", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log must be a bool"):
        Param("x", 0.1, 1.0, log="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        Param("", 0.0, 1.0)


def test_param_is_the_searchers_float_param() -> None:
    from searchers import FloatParam

    assert FloatParam is Param


def test_from_unit_of_a_beta_sample_matches_the_closed_form() -> None:
    """``Param.from_unit`` is the unit -> value map of every space's parameters."""
    rng = np.random.default_rng(0)
    for space in SPACES.values():
        for p in space.params:
            for u in rng.beta(2.0, 3.0, size=20):
                expected = p.low * math.exp(u * math.log(p.high / p.low)) if p.log else p.low + u * (p.high - p.low)
                assert p.from_unit(u) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_spaces_module_imports_neither_searchers_nor_ray() -> None:
    code = "import sys, noisylabels.spaces; print(any(m.split('.')[0] in ('searchers', 'ray') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
