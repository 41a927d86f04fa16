"""The packages' dependencies point one way (README, "Architecture"), including imports hidden
inside functions, and no module outside tests/ grows past ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"noisylabels": 0, "searchers": 1, "trainables": 1, "results": 2, "s2e_tune": 3}
MAX_LINES = 410


def modules():
    for pkg in LAYER:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(LAYER)


@pytest.mark.parametrize("path", list(modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    own = path.relative_to(ROOT).parts[0]
    bad = {p for p in imported_packages(path) if p != own and LAYER[p] >= LAYER[own]}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: same or higher layer than {own}"


def test_no_module_is_too_long():
    long = {str(p.relative_to(ROOT)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_layers_rule_can_fail(tmp_path):
    """The check sees an upward import hidden inside a function."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from s2e_tune.experiment import run_experiment\n")
    assert imported_packages(f) == {"s2e_tune"}
