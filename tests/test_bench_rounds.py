"""``python -m s2e_tune.bench rounds``: its analysis on hand-made runs, its flags, and one tiny real run."""

import json
import math

import numpy as np
import pytest

from s2e_tune.bench import rounds
from s2e_tune.bench.__main__ import BENCHMARKS


def hand_made_runs(seeds=(0, 1, 2), n=8, dim=20):
    """random's values 0.5 .. 0.57 in order; s2e-k2's rise faster and end 0.1 higher."""
    rng = np.random.default_rng(0)
    runs = {}
    for seed in seeds:
        for name, step in (("random", 0.01), ("s2e-k2", 0.02)):
            vals = 0.5 + step * np.arange(n) + 0.001 * seed
            if name == "s2e-k2":
                vals[-1] = 0.5 + 0.01 * (n - 1) + 0.001 * seed + 0.1
            runs["sym-20", seed, name] = [
                {"val_acc": float(v), "test_acc": float(v), "u": rng.uniform(size=dim).tolist()} for v in vals
            ]
    return runs


def test_summary_best_so_far_paired_difference_and_quarters():
    rows = {r["searcher"]: r for r in rounds.summarise(hand_made_runs(), "sym-20", ["random", "s2e-k2"])}
    rnd, s2e = rows["random"], rows["s2e-k2"]
    assert rnd["seeds"] == 3
    assert rnd["best_25"][0] == pytest.approx(0.5 + 0.01 + 0.001)  # best of the first 2 of 8, mean over seeds
    assert rnd["best_100"][0] == pytest.approx(0.57 + 0.001)
    assert s2e["best_100"][0] == pytest.approx(0.67 + 0.001)
    assert s2e["diff"][0] == pytest.approx(0.1) and s2e["diff"][1] == pytest.approx(0.0, abs=1e-12)
    assert all(math.isnan(v) for v in rnd["diff"])
    assert rnd["first_q"][0] == pytest.approx(0.505 + 0.001) and rnd["last_q"][0] == pytest.approx(0.565 + 0.001)


def test_landscape_finds_a_one_number_objective():
    runs = hand_made_runs(n=40)
    for (_, _, name), rows in runs.items():
        if name == "random":
            for r in rows:  # val_acc a function of the mean keep ratio only, peaked at 0.8
                r["val_acc"] = 0.7 - (rounds.mean_keep_ratio(r["u"], "s2e", 8) - 0.8) ** 2
    land = rounds.landscape(runs, "sym-20", "s2e", 8)
    assert land["n"] == 120 and land["r2_mean_r"] == pytest.approx(1.0)
    assert land["best_mean_r"] == pytest.approx(0.8, abs=1e-6)
    assert land["r2_linear"] < 0.9


def test_gradient_agreement_is_one_with_all_samples_and_lower_with_few():
    runs = hand_made_runs(n=16)
    everything = rounds.gradient_agreement(runs, "sym-20", k=16, draws=3)
    assert everything["k_vs_all"] == pytest.approx(1.0) and everything["seeds"] == 3
    few = rounds.gradient_agreement(runs, "sym-20", k=2, draws=50)
    assert few["k_vs_all"] < 0.9 and -1.0 <= few["across_seeds"] <= 1.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--settings", "sym-99"],
        ["--samples-per-round", "1"],
        ["--samples-per-round", "a"],
        ["--trials", "6", "--samples-per-round", "4"],
        ["--space", "nope"],
        ["--epochs", "0"],
    ],
)
def test_bad_flags_stop_with_one_line(argv, tmp_path, capsys):
    assert rounds.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_tiny_real_run_caches_every_run_and_reuses_it(tmp_path, data_dir, capsys, monkeypatch):
    assert BENCHMARKS["rounds"] == "s2e_tune.bench.rounds"
    argv = ["--settings", "sym-50", "--seeds", "0", "--trials", "4", "--samples-per-round", "2"]
    argv += ["--epochs", "1", "--mnist1d-samples", "1000", "--data-dir", str(data_dir)]
    argv += ["--out", str(tmp_path), "--quiet"]
    assert rounds.main(argv) == 0
    out = capsys.readouterr().out
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == ["sym-50-seed0-random-4x1.json", "sym-50-seed0-s2e-k2-4x1.json"]
    rows = json.loads((tmp_path / files[1]).read_text())
    assert len(rows) == 4 and all(0 <= r["val_acc"] <= 1 and len(r["u"]) == 20 for r in rows)
    assert "| s2e-k2 " in out and "landscape (4 uniform samples)" in out and "K = 2: cosine" in out

    # a second call trains nothing: every run comes from its file
    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(rounds, "Trainer", no_training)
    assert rounds.main(argv) == 0
    assert capsys.readouterr().out == out
