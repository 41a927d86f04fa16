"""Search efficiency, summary tables, figures and ``python -m s2e_tune.report`` on a hand-made
results dir.

The results directory is written in the layout of ``results.layout`` (what
``results.parquet_log`` writes: ``epochs/searcher=<s>/seed=<k>/part-<trial>.parquet`` and
``trials/...``) with synthetic numbers chosen so every curve can be computed by hand.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from noisylabels.spaces import get_space
from results import layout
from results.efficiency import best_so_far, budget_to_match, budget_values, search_efficiency, step_on_grid
from results.history import history_path, history_seeds, read_history, write_history
from results.parquet_log import epoch_table
from results.plots import distinct_colors
from results.schedule_curves import mean_schedule_by_round
from results.store import Store
from results.summary import format_searcher_table, format_seed_table, markdown_table, per_seed_table, summary_table
from results.tables import build_trials, read_epochs
from s2e_tune.report import main, make_report
from searchers.s2e_search import S2ESearcher

T0 = 1_800_000_000  # seconds
S2E_CFG = {
    "schedule": "s2e",
    "epochs": 2,
    **{f"f{i}_a{j}": v for i in range(1, 5) for j, v in zip(range(1, 5), (0.5, 0.05, 0.2, 1.0), strict=True)},
    **{f"w{i}": 0.25 for i in range(1, 5)},
}
COT_CFG = {"schedule": "coteaching", "epochs": 2, "tau": 0.3, "c": 2.0, "t_k": 20.0}
DEFAULT_CFG = {"schedule": "coteaching", "epochs": 2, "tau": 0.5, "c": 1.0, "t_k": 10.0}

# (searcher, seed) -> trials as (trial_id, [(val_acc, test_acc, label_precision, timestamp offset), ...], config)
# Sequential trials, 2 epochs each unless stated; every epoch takes 1 s (s2e) or 0.5 s (random).
TRIALS = {
    ("s2e", 0): [
        ("a0", [(0.30, 0.50, 0.6, 1), (0.50, 0.60, 0.7, 2)], S2E_CFG),
        ("b0", [(0.95, 0.90, 0.7, 3), (0.40, 0.70, 0.8, 4)], S2E_CFG),  # epoch-1 peak must not count
        ("c0", [(0.20, 0.40, 0.7, 5), (0.70, 0.80, 0.9, 6)], S2E_CFG),
    ],
    ("s2e", 1): [
        ("a1", [(0.30, 0.50, 0.6, 1), (0.60, 0.61, 0.7, 2)], S2E_CFG),
        ("b1", [(0.30, 0.50, 0.6, 3), (0.65, 0.66, 0.7, 4)], S2E_CFG),
        ("c1", [(0.30, 0.50, 0.6, 5), (0.50, 0.90, 0.7, 6)], S2E_CFG),
    ],
    ("random", 0): [  # x and y run in parallel, interleaved; z was stopped after one epoch
        ("x0", [(0.10, 0.20, 0.5, 1), (0.40, 0.45, 0.6, 3)], COT_CFG),
        ("y0", [(0.20, 0.30, 0.5, 2), (0.45, 0.50, 0.6, 4)], DEFAULT_CFG),
        ("z0", [(0.99, 0.10, 0.5, 5)], COT_CFG),
    ],
    ("random", 1): [
        ("x1", [(0.10, 0.20, 0.5, 1), (0.55, 0.56, 0.6, 2)], COT_CFG),
        ("y1", [(0.20, 0.30, 0.5, 3), (0.35, 0.40, 0.6, 4)], COT_CFG),
    ],
}
MANIFEST = {
    "name": "synthetic",
    "config": {
        "dataset": "mnist1d",
        "noise": "sym",
        "noise_rate": 0.5,
        "method": "coteaching",
        "space": "s2e",
        "epochs": 2,
        "trials": 3,
        "seeds": [0, 1],
    },
    "seeds": [0, 1],
}


def write_results(root: Path | str, manifest: bool = True) -> Store:
    store = Store.from_uri(str(root))
    for (searcher, seed), trials in TRIALS.items():
        step = 1.0 if searcher == "s2e" else 0.5
        for trial_id, epochs, cfg in trials:
            rows = [
                {
                    "trial_id": trial_id,
                    "epoch": e,
                    "val_acc": v,
                    "test_acc": t,
                    "label_precision": lp,
                    "kept_ratio": 1.0,
                    "train_loss": 1.0,
                    "diverged": False,
                    "time_this_iter_s": step,
                    "timestamp": T0 + off,
                    **{f"config.{k}": x for k, x in {**cfg, "seed": seed}.items()},
                }
                for e, (v, t, lp, off) in enumerate(epochs, start=1)
            ]
            store.write_table(store.path(layout.part_file(layout.EPOCHS, searcher, seed, trial_id)), epoch_table(rows))
            status = pa.table(
                {
                    "trial_id": [trial_id],
                    "status": ["TERMINATED" if len(epochs) == 2 else "STOPPED_EARLY"],
                    "cumulative_epochs_at_end": pa.array([0], pa.int64()),
                    "finished_at": pa.array([T0 + 10], pa.timestamp("s", tz="UTC")),
                }
            )
            store.write_table(store.path(layout.part_file(layout.TRIALS, searcher, seed, trial_id)), status)
    if manifest:
        store.write_bytes(store.path(layout.MANIFEST), json.dumps(MANIFEST).encode())
    return store


@pytest.fixture
def results_dir(tmp_path) -> Path:
    root = tmp_path / "exp"
    write_results(root)
    return root


def _curve(eff, searcher, axis, col):
    c = eff.curve(searcher, axis)
    return dict(zip(c["x"].tolist(), c[col].tolist(), strict=True))


# ------------------------------------------------------------------------------ search efficiency
def test_best_so_far_per_seed_counts_only_each_trials_last_epoch(results_dir):
    per = best_so_far(read_epochs(Store.from_uri(str(results_dir))))
    s0 = per[(per.searcher == "s2e") & (per.seed == 0)]
    assert s0["cum_epochs"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(s0["best_val_acc"], [np.nan, 0.5, 0.5, 0.5, 0.5, 0.7])  # b0's 0.95 at epoch 1: no
    np.testing.assert_allclose(s0["best_test_acc"], [np.nan, 0.6, 0.6, 0.6, 0.6, 0.8])
    assert s0["best_trial"].tolist()[-1] == "c0"
    # interleaved parallel trials are ordered by timestamp; cost in time sums time_this_iter_s
    r0 = per[(per.searcher == "random") & (per.seed == 0)]
    assert r0["trial_id"].tolist() == ["x0", "y0", "x0", "y0", "z0"]
    np.testing.assert_allclose(r0["cum_time_s"], [0.5, 1.0, 1.5, 2.0, 2.5])
    # without full_epochs the early-stopped z0 (0.99 after 1 epoch) is a candidate ...
    np.testing.assert_allclose(r0["best_val_acc"], [np.nan, np.nan, 0.40, 0.45, 0.99])
    # ... with full_epochs=2 only the full-length trials are
    per2 = best_so_far(read_epochs(Store.from_uri(str(results_dir))), full_epochs=2)
    r0 = per2[(per2.searcher == "random") & (per2.seed == 0)]
    np.testing.assert_allclose(r0["best_val_acc"], [np.nan, np.nan, 0.40, 0.45, 0.45])
    for _, g in per2.groupby(["searcher", "seed"]):
        v = g["best_val_acc"].dropna().to_numpy()
        assert np.all(np.diff(v) >= 0), "best-so-far must be monotone"


def test_mean_and_standard_error_over_seeds_on_a_common_grid(results_dir):
    eff = search_efficiency(read_epochs(Store.from_uri(str(results_dir))), full_epochs=2)
    assert eff.grids["epochs"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    m = _curve(eff, "s2e", "epochs", "val_mean")
    se = _curve(eff, "s2e", "epochs", "val_se")
    assert math.isnan(m[0]) and math.isnan(m[1])
    # seed 0: .5 .5 .5 .5 .7 from x=2; seed 1: .6 .6 .65 .65 .65
    assert m[2] == pytest.approx(0.55) and se[2] == pytest.approx(0.05)
    assert m[4] == pytest.approx(0.575) and se[4] == pytest.approx(0.075)
    assert m[6] == pytest.approx(0.675) and se[6] == pytest.approx(0.025)
    t = _curve(eff, "s2e", "epochs", "test_mean")
    assert t[6] == pytest.approx((0.8 + 0.66) / 2)
    # random: seed 1 ended at 4 epochs and is forward-filled to the searcher's end (5 epochs)
    rm = _curve(eff, "random", "epochs", "val_mean")
    assert math.isnan(rm[2])  # seed 0 has no finished trial before epoch 3
    assert rm[3] == pytest.approx((0.40 + 0.55) / 2)
    assert rm[5] == pytest.approx((0.45 + 0.55) / 2)
    assert math.isnan(rm[6])  # past the longest random search
    n = _curve(eff, "random", "epochs", "n_seeds")
    assert n[2] == 1 and n[3] == 2
    # the time axis: s2e 1 s per epoch, random 0.5 s
    tm = eff.curve("random", "time")
    last = tm.dropna(subset=["val_mean"])
    assert last["x"].max() <= 2.5 + 1e-9


def test_step_on_grid_forward_fills_and_stops_at_end():
    out = step_on_grid([1, 3], [0.2, 0.5], np.array([0, 1, 2, 3, 4, 5]), end=4)
    np.testing.assert_allclose(out, [np.nan, 0.2, 0.2, 0.5, 0.5, np.nan])


def test_budget_helpers(results_dir):
    eff = search_efficiency(read_epochs(Store.from_uri(str(results_dir))), full_epochs=2, x_max={"epochs": 6})
    bv = budget_values(eff, budget=6).set_index(["searcher", "fraction"])
    assert math.isnan(bv.loc[("s2e", 0.25), "val_mean"])  # 1.5 epochs: nothing finished yet
    assert bv.loc[("s2e", 0.5), "val_mean"] == pytest.approx(0.55)
    assert bv.loc[("s2e", 1.0), "val_mean"] == pytest.approx(0.675)
    assert bv.loc[("s2e", 1.0), "val_se"] == pytest.approx(0.025)
    match = budget_to_match(eff, "random", budget=6).set_index("searcher")
    # random's final mean is 0.5; s2e's mean reaches it at 2 epochs = 1/3 of the budget
    assert match.loc["s2e", "target"] == pytest.approx(0.5)
    assert match.loc["s2e", "fraction"] == pytest.approx(2 / 6)
    assert match.loc["random", "fraction"] == pytest.approx(4 / 6)


def test_summary_table_mean_and_se_over_seeds(results_dir):
    store = Store.from_uri(str(results_dir))
    trials = build_trials(store)
    s = summary_table(trials, full_epochs=2).set_index("searcher")
    assert list(s.index) == ["s2e", "random"]
    assert s.loc["s2e", "best_val_acc"] == pytest.approx(0.675)
    assert s.loc["s2e", "best_val_acc_se"] == pytest.approx(0.025)
    assert s.loc["s2e", "test_acc"] == pytest.approx(0.73)
    assert s.loc["random", "best_val_acc"] == pytest.approx(0.5)  # z0 (1 epoch) does not count
    assert s.loc["random", "trials"] == pytest.approx(2.5)
    assert s.loc["random", "epochs_used"] == pytest.approx(4.5)


SEED_TABLE = """\
searcher   seed best val_acc  test_acc label prec trials  epochs  train s
-------------------------------------------------------------------------
s2e           0       0.7000    0.8000      0.800      3       6      6.0
s2e           1       0.6500    0.6600      0.650      3       6      6.0
random        0       0.4500    0.5000      0.550      3       5      2.5
random        1       0.5500    0.5600      0.550      2       4      2.0"""
SEARCHER_TABLE = """\
searcher   seeds     best val_acc         test_acc label prec trials  epochs  train s
-------------------------------------------------------------------------------------
s2e            2  0.6750 ± 0.0250  0.7300 ± 0.0700      0.725      3       6      6.0
random         2  0.5000 ± 0.0500  0.5300 ± 0.0300      0.550    2.5     4.5      2.2"""


def test_console_tables(results_dir):
    trials = build_trials(Store.from_uri(str(results_dir)))
    assert format_seed_table(per_seed_table(trials, 2)) == SEED_TABLE
    assert format_searcher_table(summary_table(trials, 2)) == SEARCHER_TABLE


def test_markdown_table_merges_se_and_dashes_missing_values():
    df = pd.DataFrame(
        {
            "searcher": ["a", "b"],
            "trials": [2.0, 2.5],
            "trials_se": [0.5, math.nan],
            "val_mean": [0.5, math.nan],
            "val_se": [0.01, 0.02],
            "fraction": [0.25, math.nan],
        }
    )
    assert markdown_table(df).splitlines() == [
        "| searcher | trials | val_mean | fraction |",
        "|---|---|---|---|",
        "| a | 2 ± 0.5 | 0.5000 ± 0.0100 | 25 % |",
        "| b | 2.5 | – | – |",
    ]


# ------------------------------------------------------------------------------ S2E history
def _s2e_record(rounds: int = 3, k: int = 3, fixed=None):
    """S2E's own record (``S2ESearcher.history_from_state``, what the run command writes) after
    ``rounds`` rounds of ``k`` trials; the first trial of every round diverges (NaN)."""
    searcher = S2ESearcher(list(get_space("s2e").params), metric="val_acc", mode="max", samples_per_round=k, seed=0)
    for r in range(rounds):
        ids = [f"t{r}{j}" for j in range(k)]
        configs = [searcher.suggest(i) for i in ids]
        for j, (i, c) in enumerate(zip(ids, configs, strict=True)):
            searcher.on_trial_complete(i, {"val_acc": math.nan if j == 0 else -abs(c["w1"] - 0.8)})
    return S2ESearcher.history_from_state(searcher.get_state(), fixed=fixed)


def test_history_files_are_strict_json_per_searcher_and_seed(tmp_path):
    store = Store.from_uri(str(tmp_path / "exp"))
    path = write_history(store, "tpe", 1, {"x": np.float32(1.5), "y": [np.nan, np.int64(2), math.inf]})
    assert path == history_path(store, "tpe", 1) and path.endswith("/tpe/seed=1/history.json")
    json.loads(Path(path).read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert read_history(store, "tpe", 1) == {"version": 1, "seed": 1, "x": 1.5, "y": [None, 2, None]}
    assert read_history(store, "tpe", 2) is None and read_history(store, "s2e", 1) is None
    write_history(store, "tpe", 0, {})
    assert history_seeds(store, "tpe") == [0, 1] and history_seeds(store, "s2e") == []


def test_s2e_history_round_trip_and_mean_schedule(tmp_path):
    store = Store.from_uri(str(tmp_path / "exp"))
    write_history(store, "s2e", 3, _s2e_record(fixed={"schedule": "s2e"}))
    h = read_history(store, "s2e", 3)
    assert h["version"] == 1 and h["seed"] == 3 and len(h["rounds"]) == 3
    assert h["rounds"][0]["values"][0] is None  # the NaN
    assert h["params"][0] == {"name": "f1_a1", "low": 0.1, "high": 1.5, "log": False}
    assert set(h["rounds"][1]["mean"]) == set(get_space("s2e").names())
    curves, kind = mean_schedule_by_round(h, 20, samples=64)
    assert kind == "expected" and curves.shape == (3, 20)
    assert np.all((curves >= 0.05) & (curves <= 1.0)) and np.allclose(curves[:, 0], 1.0)
    # without parameter ranges: R(t) at the mean configuration
    curves2, kind2 = mean_schedule_by_round({**h, "params": None, "fixed": None}, 20)
    assert kind2 == "at-mean" and curves2.shape == (3, 20)
    assert S2ESearcher.history_from_state(S2ESearcher(list(get_space("s2e").params)).get_state()) is None


# ------------------------------------------------------------------------------ report / CLI
def _check_png(path: Path, min_kb: int = 20, min_colors: int = 40) -> None:
    assert path.stat().st_size > min_kb * 1024, f"{path.name} is suspiciously small"
    assert distinct_colors(str(path)) > min_colors, f"{path.name} looks blank"


def test_cli_writes_figures_and_summary(results_dir, capsys):
    write_history(Store.from_uri(str(results_dir)), "s2e", 0, _s2e_record())
    assert main([str(results_dir)]) == 0
    out = capsys.readouterr().out
    assert "s2e" in out and "random" in out and "0.6750 ± 0.0250" in out
    plots = results_dir / "plots"
    for name in ("search_efficiency.png", "label_precision.png", "schedules.png"):
        _check_png(plots / name)
    md = (plots / "summary.md").read_text()
    assert "| s2e | 2 | 0.6750 ± 0.0250 |" in md
    csv = pd.read_csv(plots / "summary.csv")
    assert csv["searcher"].tolist() == ["s2e", "random"]
    assert {"best_val_acc", "best_val_acc_se", "val_at_50", "budget_to_match_random"} <= set(csv.columns)


def test_make_report_to_out_dir_and_without_manifest(tmp_path):
    store = write_results(tmp_path / "exp", manifest=False)
    paths = make_report(store, out=tmp_path / "rep")
    assert set(paths) == {"search_efficiency", "label_precision", "schedules", "summary_md", "summary_csv"}
    for p in paths.values():
        assert Path(p).parent == tmp_path / "rep" and Path(p).exists()
    assert not (tmp_path / "exp" / "plots").exists()


def test_cli_several_dirs_with_out(tmp_path, capsys):
    write_results(tmp_path / "a")
    write_results(tmp_path / "b")
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "a" / "schedules.png").exists() and (tmp_path / "o" / "b" / "summary.md").exists()


def test_wandb_report_flag_says_why_it_is_skipped(results_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wbcfg"))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert main([str(results_dir), "--wandb-report"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("W&B report skipped:")


@pytest.mark.parametrize("kind", ["missing", "empty", "no-parquet"])
def test_bad_results_dir_exits_2_with_one_line(tmp_path, capsys, kind):
    d = tmp_path / "r"
    if kind != "missing":
        d.mkdir()
    if kind == "no-parquet":
        (d / "epochs").mkdir()
        (d / "manifest.json").write_text("{}")
    assert main([str(d)]) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(d) in lines[0]
    assert cap.out == ""


def test_bad_dir_as_a_process_prints_no_traceback(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "s2e_tune.report", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith("error: ")
    assert "Traceback" not in p.stderr


@pytest.mark.slow
def test_report_reads_and_writes_s3(s3_server, capsys):
    uri = f"s3://{s3_server['bucket']}/reports/exp"
    store = write_results(uri)
    assert not store.is_local
    assert main([uri]) == 0
    assert "0.6750 ± 0.0250" in capsys.readouterr().out
    for name in ("search_efficiency.png", "label_precision.png", "schedules.png", "summary.md", "summary.csv"):
        assert store.exists(store.path("plots", name)), name
    assert len(store.read_bytes(store.path("plots", "search_efficiency.png"))) > 20 * 1024


def test_report_does_not_import_torch(results_dir):
    code = (
        "import sys; from s2e_tune.report import make_report; "
        f"make_report({str(results_dir)!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
