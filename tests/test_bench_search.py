"""``python -m s2e_tune.bench search``: the tables, the rank and budget-to-match math, the markers.

Behaviour only, never timings.
"""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from noisylabels.errors import UserError
from results import efficiency
from s2e_tune.bench import common, search
from s2e_tune.bench.__main__ import BENCHMARKS
from s2e_tune.bench.search import aggregate, definition, launch, render

# ------------------------------------------------------------------------------ hand-made data
EPOCHS, TRIALS = 2, 4
BUDGET = EPOCHS * TRIALS
# final val_acc of the trials of each (searcher, seed), in the order they ran one after another
FINALS = {
    ("random", 0): [0.5, 0.6, 0.55, 0.7],  # best so far after 2/4/6/8 epochs: .5 .6 .6 .7
    ("random", 1): [0.4, 0.5, 0.6, 0.6],  # .4 .5 .6 .6
    ("s2e", 0): [0.6, 0.7, 0.7, 0.8],  # .6 .7 .7 .8
    ("s2e", 1): [0.5, 0.6, 0.7, 0.7],  # .5 .6 .7 .7
}


def hand_made_epochs() -> pd.DataFrame:
    """Epoch rows as ``results.tables.read_epochs`` gives them: trials run one after another,
    two epochs each; test accuracy = final val_acc + 0.1 (so the chosen trial is visible)."""
    rows = []
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    for (searcher, seed), finals in FINALS.items():
        clock = 0
        for i, v in enumerate(finals):
            for epoch in (1, 2):
                clock += 1
                val = v if epoch == 2 else v - 0.3  # the first epoch is never the best
                rows.append(
                    {
                        "searcher": searcher,
                        "seed": seed,
                        "trial_id": f"{searcher}{seed}_{i}",
                        "epoch": epoch,
                        "val_acc": val,
                        "test_acc": val + 0.1,
                        "time_this_iter_s": 1.0,
                        "timestamp": t0 + pd.Timedelta(seconds=clock),
                    }
                )
    return pd.DataFrame(rows)


def hand_made_trials(epochs_df: pd.DataFrame) -> pd.DataFrame:
    g = epochs_df.groupby(["searcher", "seed", "trial_id"], sort=True)
    last = g.tail(1).set_index(["searcher", "seed", "trial_id"])
    return pd.DataFrame(
        {
            "epochs_run": g.size(),
            "final_val_acc": last["val_acc"],
            "test_acc_at_final": last["test_acc"],
            "mean_label_precision": 0.9,
            "wall_time_s": g["time_this_iter_s"].sum(),
        }
    ).reset_index()


def test_budget_values_match_and_rank_on_a_hand_made_search():
    epochs = hand_made_epochs()
    table, finals = aggregate.analyse(epochs, hand_made_trials(epochs), budget=BUDGET, full_epochs=EPOCHS)
    t = table.set_index("searcher")
    assert list(table["searcher"]) == ["s2e", "random"]
    # mean over seeds of the best so far after 2, 4 and 8 epochs
    assert t.loc["random", ["val_25", "val_50", "val_100"]].tolist() == pytest.approx([0.45, 0.55, 0.65])
    assert t.loc["s2e", ["val_25", "val_50", "val_100"]].tolist() == pytest.approx([0.55, 0.65, 0.75])
    assert t.loc["s2e", "test_100"] == pytest.approx(0.85)  # test accuracy of the chosen trials
    assert t.loc["random", "val_100_se"] == pytest.approx(np.std([0.7, 0.6], ddof=1) / math.sqrt(2))
    # random's final mean is 0.65: S2E's mean reaches it after 4 of 8 epochs, random only at the end
    assert t.loc["s2e", "match"] == pytest.approx(0.5)
    assert t.loc["random", "match"] == pytest.approx(1.0)
    # S2E is ahead on both seeds, by 0.1 on each: paired difference 0.1 with no spread
    assert t.loc["s2e", "rank"] == 1.0 and t.loc["random", "rank"] == 2.0
    assert t.loc["s2e", "diff"] == pytest.approx(0.1) and t.loc["s2e", "diff_se"] == pytest.approx(0.0)
    assert math.isnan(t.loc["random", "diff"])  # the reference against itself
    assert t.loc["s2e", "trials"] == TRIALS and t.loc["s2e", "epochs"] == BUDGET and t.loc["s2e", "seeds"] == 2
    f = finals.set_index(["searcher", "seed"])["best_val_acc"]
    assert f.to_dict() == pytest.approx({("random", 0): 0.7, ("random", 1): 0.6, ("s2e", 0): 0.8, ("s2e", 1): 0.7})


def test_title_names_the_searchers_of_the_benchmark():
    assert render.title(definition.FULL.searchers) == "S2E vs random, BO, TPE, CMA-ES, GP-BO, Hyperband, ASHA and BOHB"
    assert render.title(["s2e", "random"]) == "S2E vs random"
    assert render.title(["random", "asha"]) == "random, ASHA"


def test_paired_difference_removes_the_seed_to_seed_spread():
    finals = pd.DataFrame(
        [
            ("random", 0, 0.30),
            ("random", 1, 0.60),
            ("random", 2, 0.90),
            ("s2e", 0, 0.32),
            ("s2e", 1, 0.61),
            ("s2e", 2, 0.93),
            ("tpe", 0, 0.5),
        ],
        columns=["searcher", "seed", "best_val_acc"],
    )
    mean, se = aggregate.paired_difference(finals, "s2e")
    d = np.array([0.02, 0.01, 0.03])
    assert mean == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    assert se < finals[finals.searcher == "s2e"].best_val_acc.std() / 10  # far below the unpaired spread
    assert all(math.isnan(v) for v in aggregate.paired_difference(finals, "tpe"))  # one shared seed only
    assert all(math.isnan(v) for v in aggregate.paired_difference(finals, "random"))
    assert all(math.isnan(v) for v in aggregate.paired_difference(finals, "bo"))


def test_the_budget_cuts_what_an_overspending_search_found_late():
    epochs = hand_made_epochs()
    table, finals = aggregate.analyse(epochs, hand_made_trials(epochs), budget=6, full_epochs=EPOCHS)
    t = table.set_index("searcher")
    assert t.loc["random", "val_100"] == pytest.approx(0.6)  # the 4th trials end after 8 > 6 epochs
    assert finals.set_index(["searcher", "seed"]).loc[("s2e", 0), "best_val_acc"] == pytest.approx(0.7)


def test_budget_to_match_is_missing_without_random_and_rows_follow_the_requested_searchers():
    epochs = hand_made_epochs()
    epochs = epochs[epochs["searcher"] == "s2e"]
    table, _ = aggregate.analyse(epochs, hand_made_trials(epochs), BUDGET, EPOCHS, searchers=["s2e", "tpe"])
    t = table.set_index("searcher")
    assert list(t.index) == ["s2e", "tpe"]
    assert math.isnan(t.loc["s2e", "match"])
    assert math.isnan(t.loc["tpe", "val_100"]) and math.isnan(t.loc["tpe", "rank"])


def test_normalized_score_is_0_for_the_best_and_1_for_random_per_seed():
    finals = pd.DataFrame(
        {
            "searcher": ["s2e", "random", "tpe"] * 2,
            "seed": [0, 0, 0, 1, 1, 1],
            "best_val_acc": [0.8, 0.6, 0.7, 0.5, 0.6, 0.4],
        }
    )
    sc = aggregate.normalized_scores(finals).set_index(["searcher", "seed"])["score"]
    assert sc["s2e", 0] == 0.0 and sc["random", 0] == 1.0 and sc["tpe", 0] == pytest.approx(0.5)
    assert math.isnan(sc["random", 1]) and math.isnan(sc["s2e", 1])  # random was best: no scale
    table, _ = aggregate.analyse(hand_made_epochs(), hand_made_trials(hand_made_epochs()), BUDGET, EPOCHS)
    row = table.set_index("searcher")
    assert row.loc["s2e", "score"] == 0.0 and row.loc["random", "score"] == 1.0  # s2e beats random on both seeds
    assert row.loc["s2e", "pooled_score"] == 0.0 and row.loc["random", "pooled_score"] == 1.0


def test_pooled_score_uses_constants_over_seeds_so_one_seed_cannot_dominate():
    # seed 1: the best is 0.0001 above random, tpe 0.01 below: its per-seed ratio is 100
    finals = pd.DataFrame(
        {
            "searcher": ["s2e", "random", "tpe"] * 2,
            "seed": [0, 0, 0, 1, 1, 1],
            "best_val_acc": [0.80, 0.70, 0.79, 0.6001, 0.6000, 0.5901],
        }
    )
    per_seed = aggregate.normalized_scores(finals).set_index(["searcher", "seed"])["score"]
    assert per_seed["tpe", 1] == pytest.approx(100.0)
    # pooled: B = (0.80 + 0.6001) / 2, M = 0.65, V_tpe = (0.79 + 0.5901) / 2
    b, m, v = 0.70005, 0.65, 0.69005
    assert aggregate.pooled_normalized_score(finals, "tpe") == pytest.approx((b - v) / (b - m))
    assert aggregate.pooled_normalized_score(finals, "s2e") == pytest.approx(0.0)
    assert aggregate.pooled_normalized_score(finals, "random") == pytest.approx(1.0)
    assert math.isnan(aggregate.pooled_normalized_score(finals, "bo"))  # no results


def test_ranks_average_ties_and_put_missing_results_last():
    finals = pd.DataFrame(
        {
            "searcher": ["a", "b", "c", "a", "b", "c"],
            "seed": [0, 0, 0, 1, 1, 1],
            "best_val_acc": [0.9, 0.9, 0.5, 0.4, math.nan, 0.6],
        }
    )
    r = efficiency.ranks(finals).set_index(["searcher", "seed"])["rank"]
    assert r[("a", 0)] == r[("b", 0)] == 1.5 and r[("c", 0)] == 3
    assert r[("c", 1)] == 1 and r[("a", 1)] == 2 and r[("b", 1)] == 3
    assert efficiency.mean_ranks(finals).to_dict() == {"a": 1.75, "b": 2.25, "c": 2.0}
    both = pd.concat([finals.assign(setting="x"), finals.assign(setting="y", best_val_acc=[1, 2, 3, 3, 2, 1])])
    m = efficiency.mean_ranks(both, by=("setting", "seed"))
    assert m["a"] == pytest.approx((1.5 + 2 + 3 + 1) / 4) and m.sum() == pytest.approx(6.0)


# ------------------------------------------------------------------------------ markers
def test_update_benchmarks_appends_markers_then_replaces_only_between_them(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nintro text\n")
    render.update_benchmarks(path, "## Searchers\n\nfirst table\n")
    text = path.read_text()
    assert text.startswith("# Benchmarks\n\nintro text\n\n" + render.START_MARK)
    assert text.endswith(render.END_MARK + "\n") and "first table" in text
    path.write_text(text + "\n## Later section\n\nkept\n")  # text after the markers
    render.update_benchmarks(path, "## Searchers\n\nsecond table")
    once = path.read_text()
    render.update_benchmarks(path, "## Searchers\n\nsecond table")
    assert path.read_text() == once  # idempotent
    assert "first table" not in once and "second table" in once
    assert once.startswith("# Benchmarks\n\nintro text\n\n") and once.endswith("## Later section\n\nkept\n")
    assert once.count(render.START_MARK) == once.count(render.END_MARK) == 1


def test_update_benchmarks_creates_a_missing_file_and_refuses_broken_markers(tmp_path):
    new = tmp_path / "new.md"
    render.update_benchmarks(new, "body")
    assert new.read_text() == f"{render.START_MARK}\nbody\n{render.END_MARK}\n"
    bad = tmp_path / "bad.md"
    bad.write_text(f"x\n{render.END_MARK}\n{render.START_MARK}\n")
    with pytest.raises(UserError):
        render.update_benchmarks(bad, "body")
    assert bad.read_text() == f"x\n{render.END_MARK}\n{render.START_MARK}\n"


def test_wall_clock_keeps_the_elapsed_time_on_disk_while_running(tmp_path):
    meta = {"wall_s": 100.0}

    def on_disk() -> float:
        return json.loads((tmp_path / definition.META_FILE).read_text())["wall_s"]

    with common.WallClock(tmp_path / definition.META_FILE, meta, every=0.01):
        first = on_disk()  # saved on entry: the earlier invocations' time plus a little
        assert first >= 100.0
        deadline = time.monotonic() + 10
        while on_disk() == first:  # the ticking thread saves again without being asked
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert on_disk() > first


def test_forget_searches_removes_only_the_named_searches(tmp_path):
    out = tmp_path / "sym-50"
    files = []
    for searcher in ("s2e", "random"):
        for seed in (0, 1):
            label = f"{searcher}-seed{seed}"
            files += [
                out / "searches" / f"{label}.done",
                out / label / f"trial_{seed}" / "checkpoint",
                out / "epochs" / f"searcher={searcher}" / f"seed={seed}" / "part-a.parquet",
                out / "trials" / f"searcher={searcher}" / f"seed={seed}" / "part-a.parquet",
            ]
        files.append(out / searcher / "seed=0" / "history.json")
    files += [out / "manifest.json", out / "trials.parquet"]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    removed = launch.forget_searches(out, ["s2e"], [0])
    assert sorted(removed) == sorted(
        [
            out / "searches" / "s2e-seed0.done",
            out / "s2e-seed0",
            out / "s2e" / "seed=0",
            out / "epochs" / "searcher=s2e" / "seed=0",
            out / "trials" / "searcher=s2e" / "seed=0",
        ]
    )
    left = {f for f in files if f.exists()}
    assert left == {f for f in files if not any(f == r or r in f.parents for r in removed)}
    assert (out / "random-seed0").exists() and (out / "s2e-seed1").exists() and (out / "manifest.json").exists()
    assert launch.forget_searches(out, ["s2e"], [0]) == []  # nothing left to remove


def test_a_rerun_may_change_only_the_keys_its_searchers_read(tmp_path):
    args = search.parse_args(["--quick", "--storage", str(tmp_path), "--samples-per-round", "3"])
    cfg = launch.setting_config(args, "sym-50")
    old = {"config": {**cfg.to_dict(), "samples_per_round": 2}}
    with pytest.raises(UserError, match="samples_per_round=2"):
        launch.check_same_budget(cfg, old, tmp_path)
    with pytest.raises(UserError, match="samples_per_round=2"):
        launch.check_same_budget(cfg, old, tmp_path, rerun=("random",))
    launch.check_same_budget(cfg, old, tmp_path, rerun=("s2e",))  # S2E's K: S2E's results are redone
    # S2E's options (extra.s2e) likewise: another S2E variant redoes S2E's searches only
    variant = search.parse_args(["--quick", "--storage", str(tmp_path), "--s2e-options", '{"surrogate": "linear"}'])
    vcfg = launch.setting_config(variant, "sym-50")
    assert vcfg.extra == {"s2e": {"surrogate": "linear"}}
    plain = {"config": {**cfg.to_dict(), "samples_per_round": 2}}
    with pytest.raises(UserError, match="extra"):
        launch.check_same_budget(vcfg, plain, tmp_path)
    launch.check_same_budget(vcfg, {"config": {**cfg.to_dict(), "samples_per_round": 3}}, tmp_path, rerun=("s2e",))
    old["config"]["epochs"] = 99
    with pytest.raises(UserError, match="epochs=99"):
        launch.check_same_budget(cfg, old, tmp_path, rerun=("s2e",))


# ------------------------------------------------------------------------------ command line
def test_registered_and_defaults():
    assert BENCHMARKS.get("search", "s2e_tune.bench.search") == "s2e_tune.bench.search"
    a = search.parse_args([])
    assert a.bench.searchers == ("s2e", "random", "bo", "tpe", "cmaes", "gp", "hyperband", "asha", "bohb")
    # the protocol: the seed's 40 trainings per search, its three settings and pair-45 on clean labels
    assert a.bench.settings == ("sym-20", "sym-50", "pair-45", "pair-45-clean") and len(a.bench.seeds) >= 3
    assert (a.bench.trials, a.bench.samples_per_round, a.bench.model, a.bench.backend) == (40, 2, "mlp", "real")
    n_val = round(a.bench.val_fraction * 0.8 * a.bench.mnist1d_samples)  # MNIST-1D keeps 20 % for test
    assert n_val >= 1000
    assert search.parse_args(["--quick"]).bench.backend == "replay"
    assert search.parse_args(["--quick", "--backend", "real"]).bench.backend == "real"
    assert a.wandb == "off" and a.storage == "bench-results" and not a.resume
    q = search.parse_args(["--quick", "--epochs", "5"])
    assert q.bench.epochs == 5 and q.bench.trials == definition.QUICK.trials and len(q.bench.searchers) == 2
    assert search.parse_args(["--trials", "1"]).bench.samples_per_round == 2  # K is S2E's alone, not capped
    assert search.main(["--samples-per-round", "1", "--storage", "x"]) == 2  # S2E needs K >= 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--settings", "sym-99"],
        ["--searchers", "grid"],
        ["--seeds", "a"],
        ["--resume", "--report-only"],
        ["--rerun", "s2e", "--report-only"],
        ["--rerun", "grid"],
        ["--searchers", "random", "--rerun", "s2e"],
        ["--storage", "s3://bucket/x"],
        ["--epochs", "0"],
        ["--backend", "simulated"],
        ["--workers", "0"],
        ["--model", "resnet"],
        ["--s2e-options", "{surrogate: linear"],
        ["--s2e-options", "[1, 2]"],
        ["--s2e-options", '{"surogate": "linear"}'],
        ["--s2e-options", '{"surrogate": "cubic"}'],
    ],
)
def test_bad_flags_stop_with_one_line(argv, tmp_path, capsys):
    if "--storage" not in argv:
        argv = [*argv, "--storage", str(tmp_path)]
    assert search.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_report_only_without_results_says_so(tmp_path, capsys):
    assert search.main(["--quick", "--report-only", "--storage", str(tmp_path)]) == 2
    assert "no results for sym-50" in capsys.readouterr().err


# ------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_quick_benchmark_end_to_end(tmp_path, data_dir, capsys):
    storage = tmp_path / "bench"
    argv = [
        "--quick",
        "--backend",
        "real",
        "--searchers",
        "s2e,random",
        "--settings",
        "sym-50",
        "--seeds",
        "0,1",
        "--trials",
        "2",
        "--epochs",
        "2",
        "--mnist1d-samples",
        "1000",
        "--storage",
        str(storage),
        "--data-dir",
        str(data_dir),
        "--quiet",
    ]
    assert search.main(argv) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"s2e", "random"} <= set(rows)
    assert any(k.startswith("ref: Co-teaching default (tau 0.5") for k in rows)
    assert any(k.startswith("ref: standard training") for k in rows)
    cells = [c.strip() for c in rows["s2e"].split("|")[1:-1]]
    assert len(cells) == 14 and " ± " in cells[5]  # val 100 %: mean ± s.e. over 2 seeds
    assert cells[1:3] == ["2.0", "4.0"]  # trials and epochs per seed
    md = (storage / "search_benchmark.md").read_text()
    assert "python -m s2e_tune.bench search --quick" in md and "commit:" in md and "machine:" in md
    assert "2 trials x 2 epochs = 4 epochs" in md and rows["s2e"] in md
    # the normal results path: Parquet per experiment, and the reference rows beside it
    exp = storage / "sym-50"
    assert (exp / "trials.parquet").exists() and (exp / "manifest.json").exists()
    trials = pd.read_parquet(exp / "trials.parquet")
    assert set(trials["searcher"]) == {"s2e", "random"} and set(trials["seed"]) == {0, 1}
    refs = pd.read_parquet(exp / "reference.parquet")
    assert len(refs) == 4 and refs[["val_acc", "test_acc"]].notna().all().all()

    # running again without --resume would mix two runs: refused
    assert search.main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    # the tables again from the files alone, into a BENCHMARKS file
    bench_md = tmp_path / "BENCHMARKS.md"
    bench_md.write_text("# Benchmarks\n")
    summary = tmp_path / "summary.json"
    report_only = [*argv, "--report-only", "--update-benchmarks", str(bench_md), "--summary-json", str(summary)]
    assert search.main(report_only) == 0
    again = (storage / "search_benchmark.md").read_text()
    js = json.loads(summary.read_text())
    assert js["backend"] == "real" and js["seeds"] == [0, 1] and js["trials"] == 2 and js["epochs"] == 2
    s2e_js = js["settings"]["sym-50"]["s2e"]
    assert cells[5] == f"{s2e_js['best_val_mean']:.4f} ± {s2e_js['best_val_se']:.4f}"  # the Markdown's numbers
    assert js["settings"]["sym-50"]["random"]["diff_vs_random_mean"] is None
    assert again == md  # same results, same header (the run's command, date and machine)
    assert bench_md.read_text() == f"# Benchmarks\n\n{render.START_MARK}\n{md.strip()}\n{render.END_MARK}\n"
    # a resume of a finished benchmark runs nothing new and keeps the reference rows
    assert search.main([*argv, "--resume"]) == 0
    assert "over 2 invocations (--resume)" in (storage / "search_benchmark.md").read_text()
    assert len(pd.read_parquet(exp / "reference.parquet")) == 4
    assert len(pd.read_parquet(exp / "trials.parquet")) == len(trials)

    # --rerun s2e: S2E's searches again from scratch, random's files untouched
    random_parts = {p: p.read_bytes() for p in (exp / "trials" / "searcher=random").rglob("*.parquet")}
    assert random_parts
    assert search.main([*argv, "--rerun", "s2e"]) == 0
    after = pd.read_parquet(exp / "trials.parquet")
    assert len(after) == len(trials)
    assert {p: p.read_bytes() for p in (exp / "trials" / "searcher=random").rglob("*.parquet")} == random_parts
    old_ids, new_ids = (set(t.loc[t["searcher"] == "s2e", "trial_id"]) for t in (trials, after))
    assert len(new_ids) == 4 and not old_ids & new_ids  # new trials, as many as before
    assert set(after.loc[after["searcher"] == "random", "trial_id"]) == set(
        trials.loc[trials["searcher"] == "random", "trial_id"]
    )
    rerun_md = (storage / "search_benchmark.md").read_text()
    assert "- rerun (`--rerun s2e`): " in rerun_md and "the rows of s2e come from this run" in rerun_md
    assert "over 2 invocations (--resume)" in rerun_md  # the first run's record is kept as it was
    manifest = json.loads((exp / "manifest.json").read_text())
    assert [r["searchers"] for r in manifest["reruns"]] == [["s2e"]]


def test_the_report_lists_every_command_that_wrote_the_storage(tmp_path):
    """A --resume may name other settings or searchers than the first run: all commands are kept."""
    first = ["--quick", "--storage", str(tmp_path), "--settings", "sym-50"]
    meta, _ = launch.start_meta(search.parse_args(first), {}, first)
    later = ["--quick", "--storage", str(tmp_path), "--settings", "pair-45-clean", "--resume"]
    for _ in range(2):  # the same command twice is listed once
        meta, _ = launch.start_meta(search.parse_args(later), meta, later)
    assert len(meta["commands"]) == 2 and meta["command"] == meta["commands"][0]
    assert "sym-50" in meta["commands"][0] and "pair-45-clean" in meta["commands"][1]
    assert meta["invocations"] == 3
    fresh, _ = launch.start_meta(search.parse_args(first), meta, first)  # not --resume: a new record
    assert fresh["commands"] == [fresh["command"]] and "pair-45-clean" not in fresh["command"]
