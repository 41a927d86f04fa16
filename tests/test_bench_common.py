"""``s2e_tune.bench.common``: what the benchmarks share, and that they share it through it alone."""

import ast
import json
import re
from pathlib import Path

import pytest
import torch

from s2e_tune.bench import common

BENCH = Path(common.__file__).parent
SHARED = {
    "s2e_tune.bench.common",
    "s2e_tune.bench.epoch_timing",
    "s2e_tune.bench.procfs",
    "s2e_tune.bench.reference_loop",
}


def test_a_benchmark_imports_common_never_another_benchmark():
    for path in sorted(BENCH.rglob("*.py")):
        mine = "s2e_tune.bench.search" if "search" in path.parts else None
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parent = node.module == "s2e_tune.bench"  # from s2e_tune.bench import x
                names = [f"{node.module}.{a.name}" for a in node.names] if parent else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if not name.startswith("s2e_tune.bench.") or name in SHARED:
                    continue
                assert mine and name.startswith(mine), f"{path.relative_to(BENCH)} imports {name}"


def test_every_bench_module_stays_short():
    for path in BENCH.rglob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path


def test_short_commit_is_seven_characters_and_marks_a_dirty_tree(monkeypatch):
    monkeypatch.setattr(common, "git_commit", lambda: "0123456789abcdef")
    assert common.short_commit() == "0123456"
    monkeypatch.setattr(common, "git_commit", lambda: "0123456789abcdef-dirty")
    assert common.short_commit() == "0123456-dirty"
    monkeypatch.setattr(common, "git_commit", lambda: None)
    assert common.short_commit() == "unknown"


def test_loadavg_and_machine_line_in_both_forms(monkeypatch):
    monkeypatch.setattr(common.os, "getloadavg", lambda: (1.234, 0.5, 0.0))
    assert common.loadavg() == "1.2 / 0.5 / 0.0"
    assert re.fullmatch(r"1\.23 0\.50 0\.00 \(1/5/15 min, \d+ CPUs\)", common.loadavg(2, " ", cpus=True))

    def no_load():
        raise OSError

    monkeypatch.setattr(common.os, "getloadavg", no_load)
    assert common.loadavg() == "n/a"
    assert re.fullmatch(r".+: \d+ CPUs \(.+\).*, \w+ .+", common.machine_line())
    line = common.machine_line(torch.device("cpu"))
    assert line.startswith("machine: ") and line.endswith("device cpu") and "torch threads" in line


def test_markdown_cells():
    assert common.md_table(["a", "bb"], [["x", "1"], ["yyy", "22"]]) == (
        "| a   | bb |\n|-----|---:|\n| x   |  1 |\n| yyy | 22 |"
    )
    assert common.fmt_fraction(0.5) == "50 %" and common.fmt_fraction(1.2) == "–"
    assert common.fmt_fraction(float("nan")) == "–" and common.fmt_fraction(None) == "–"


def test_setting_config_command_line_and_write_json(tmp_path):
    cfg = common.setting_config("pair-45", seeds=(3,), epochs=2)
    assert (cfg.noise, cfg.noise_rate, cfg.name, cfg.dataset, cfg.seeds) == ("pair", 0.45, "pair-45", "mnist1d", (3,))
    assert common.command_line("rounds", []) == "python -m s2e_tune.bench rounds"
    assert common.command_line("search", ["--storage", "a b"]) == "python -m s2e_tune.bench search --storage 'a b'"
    common.write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temporary file left


@pytest.mark.parametrize("setting", sorted(common.SETTINGS))
def test_every_setting_has_a_title(setting):
    assert setting in common.SETTING_TITLES


def _pools_after_one_thread() -> list[tuple[str, int]]:
    import threadpoolctl

    common.one_thread()
    return [(p["internal_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()] + [
        ("torch", torch.get_num_threads())
    ]


def test_one_thread_pins_every_pool_of_a_worker_process():
    """What a benchmark worker runs first: torch and every BLAS/OpenMP pool at one thread (in a
    spawned process, as the workers are; this process's pools stay as they are)."""
    import concurrent.futures as cf
    import multiprocessing

    import numpy  # noqa: F401 - numpy's and scipy's OpenBLAS are loaded in the child too
    import scipy.linalg  # noqa: F401

    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pools = pool.submit(_pools_after_one_thread).result()
    assert ("torch", 1) in pools and any(api == "openblas" for api, _ in pools), pools
    assert all(n == 1 for _, n in pools), pools
