"""The replay backend: ``bench record`` trains through the real Trainer, ``bench search --backend
replay`` replays every registered searcher against that recording through Tune's own searcher and
scheduler objects, and a replayed trial answers what was recorded."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from noisylabels.spaces import coteaching_default
from s2e_tune.bench import record
from s2e_tune.bench.search import definition
from s2e_tune.replay import recording as rec
from s2e_tune.replay.table import OBJECTIVES, REPLAYED, ReplayTable, query_curve
from searchers.registry import ALL, SEARCHERS

EPOCHS, TRIALS = 3, 4


@pytest.fixture(scope="module")
def tiny_recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    args = ["--out", str(out), "--settings", "sym-50", "--seeds", "0", "--schedules", "6", "--repeat-schedules", "2"]
    args += ["--repeats", "1", "--epochs", str(EPOCHS), "--mnist1d-samples", "600", "--workers", "2", "--quiet"]
    assert record.main(args) == 0
    return out


def test_record_trains_every_job_once_and_resumes_without_retraining(tiny_recording, capsys):
    df = pd.read_parquet(tiny_recording / record.TABLE_FILE)
    meta = json.loads((tiny_recording / record.META_FILE).read_text())
    spec = rec.RecordingSpec.from_dict(meta["spec"])
    keys = df.groupby(list(rec.KEY_COLUMNS)).size()
    assert len(keys) == 6 + 2 and (keys == EPOCHS).all()  # 6 schedules, 2 of them once more
    assert meta["complete"] and meta["trainings"] == 8
    assert set(df["space"]) == {"coteaching-default", "keep-all", *rec.RECORD_SPACES}
    # the recorded keep ratios are the schedules' own curves
    for (_, _, _, _), g in df.groupby(list(rec.KEY_COLUMNS)):
        q = query_curve(json.loads(g["config"].iloc[0]), EPOCHS)
        assert np.allclose(g["kept_ratio"].to_numpy(), q, atol=1e-6)
    # clean validation accuracy is scored on other labels than the noisy one: they differ
    assert not np.allclose(df["val_acc"], df["val_acc_clean"])
    # --resume: nothing left to train, the table is rebuilt the same
    argv = ["--out", str(tiny_recording), "--resume", "--quiet", *_flags(spec)]
    assert record.main(argv) == 0
    again = pd.read_parquet(tiny_recording / record.TABLE_FILE)
    pd.testing.assert_frame_equal(df, again)
    # other flags on --resume: one line, exit 2
    assert record.main([*argv, "--epochs", "4"]) == 2
    assert "was made with other epochs" in capsys.readouterr().err


def _flags(spec):
    return [
        "--settings", ",".join(spec.settings), "--seeds", ",".join(map(str, spec.data_seeds)),
        "--schedules", str(spec.schedules), "--repeat-schedules", str(spec.repeat_schedules),
        "--repeats", str(spec.repeats), "--epochs", str(spec.epochs), "--mnist1d-samples", str(spec.mnist1d_samples),
    ]  # fmt: skip


def test_a_recorded_schedule_replays_as_recorded_and_others_blend_neighbours(tiny_recording):
    df = pd.read_parquet(tiny_recording / record.TABLE_FILE)
    for objective, (acc, _) in OBJECTIVES.items():
        table = ReplayTable.from_recording(df, "sym-50", 0, objective)
        main = df[(df["train_seed"] == 0) & (df["schedule_id"] == 0)].sort_values("epoch")
        q = query_curve(coteaching_default(0.5), EPOCHS)
        got = table.answer(q, draw=12345)
        assert np.allclose(got[:, REPLAYED.index("val_acc")], main[acc].to_numpy(), atol=1e-6)
        assert np.allclose(got[:, REPLAYED.index("test_acc")], main["test_acc"].to_numpy(), atol=1e-6)
        # off the recorded curves: a convex blend of neighbours plus noise drawn from the repeats
        q2 = np.clip(q + 0.013, 0, 1)
        idx, w = table.weights(q2)
        assert len(idx) == table.k and np.isclose(w.sum(), 1) and (w > 0).all()
        a, b = table.answer(q2, draw=1), table.answer(q2, draw=2)
        assert not np.allclose(a, b)  # the noise draw matters
        assert np.allclose(table.answer(q2, draw=1), a)  # and is reproducible
    assert table.residuals.shape[0] == 2 * 2  # two repeated schedules, two trainings each


def test_every_registered_searcher_replays_within_its_budget(tiny_recording, tmp_path):
    storage = tmp_path / "bench"
    cmd = [sys.executable, "-m", "s2e_tune.bench", "search", "--backend", "replay", "--table", str(tiny_recording)]
    cmd += ["--settings", "sym-50", "--seeds", "0,1", "--trials", str(TRIALS), "--epochs", str(EPOCHS)]
    cmd += ["--mnist1d-samples", "600", "--workers", "2", "--quiet"]
    p = subprocess.run(
        [*cmd, "--storage", str(storage), "--summary-json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    from results.store import Store
    from results.tables import build_trials, read_epochs

    store = Store.from_uri(str(storage / "sym-50"))
    epochs, trials = read_epochs(store), build_trials(store)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["backend"] == "replay" and set(summary["settings"]["sym-50"]) == set(ALL)
    budget = TRIALS * EPOCHS
    for name in ALL:
        for seed in (0, 1):
            e = epochs[(epochs["searcher"] == name) & (epochs["seed"] == seed)]
            assert not e.duplicated(["trial_id", "epoch"]).any()
            per_trial = e.groupby("trial_id")["epoch"].agg(["min", "max", "size"])
            assert (per_trial["min"] == 1).all() and (per_trial["max"] == per_trial["size"]).all()
            if SEARCHERS[name].stops_early:
                assert len(e) == budget  # the budget stopper ends the search at exactly its epochs
            else:
                assert len(e) == budget and len(per_trial) == TRIALS and (per_trial["size"] == EPOCHS).all()
            t = trials[(trials["searcher"] == name) & (trials["seed"] == seed)]
            assert set(t["status"]) <= {"TERMINATED", "STOPPED_EARLY"} and set(t["trial_id"]) == set(e["trial_id"])
            assert e["val_acc"].between(0, 1).all() and e["kept_ratio"].between(0, 1).all()
    # a replay answers the same again: the whole benchmark is a function of its seeds
    again = tmp_path / "again"
    p = subprocess.run([*cmd, "--storage", str(again)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    e2 = read_epochs(Store.from_uri(str(again / "sym-50")))
    cols = ["searcher", "seed", "epoch", "val_acc", "test_acc", "kept_ratio"]
    key = ["searcher", "seed", "timestamp", "epoch", "val_acc"]
    pd.testing.assert_frame_equal(
        epochs.sort_values(key)[cols].reset_index(drop=True), e2.sort_values(key)[cols].reset_index(drop=True)
    )
    # bench fidelity pairs the same configurations of random search across two result trees
    from s2e_tune.bench.fidelity import same_trials

    pairs = same_trials(storage, again)
    assert len(pairs) == 2 * TRIALS and (pairs["val_acc_real"] == pairs["val_acc_replay"]).all()
    assert same_trials(storage, again, searcher="no-such-searcher").empty  # a setting it never ran: no pairs


def test_replay_refuses_a_recording_of_another_protocol(tiny_recording, capsys):
    from s2e_tune.bench.search import main

    argv = ["--backend", "replay", "--table", str(tiny_recording), "--settings", "sym-50", "--epochs", "7"]
    argv += ["--mnist1d-samples", "600", "--storage", "/nonexistent/never"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has epochs=3" in err and "--epochs 3" in err


def test_the_shipped_recording_is_the_protocols():
    meta = json.loads((definition_shipped() / record.META_FILE).read_text())
    spec, full = meta["spec"], definition.FULL
    assert (spec["epochs"], spec["mnist1d_samples"], spec["val_fraction"], spec["model"]) == (
        full.epochs,
        full.mnist1d_samples,
        full.val_fraction,
        full.model,
    )
    assert {s.removesuffix("-clean") for s in full.settings} <= set(spec["settings"])


def definition_shipped():
    from s2e_tune.replay.recording import SHIPPED

    if not (SHIPPED / record.META_FILE).exists():
        pytest.skip("no recording shipped in this checkout")
    return SHIPPED


def test_fidelity_compares_ranks_and_differences_and_can_disagree():
    from s2e_tune.bench import fidelity

    def summary(ranks, diffs):
        rows = {
            n: {"mean_rank": r, "diff_vs_random_mean": d, "diff_vs_random_se": 0.01, "normalized_score_mean": 0.5}
            for n, r, d in zip(("s2e", "random", "tpe", "asha"), ranks, diffs, strict=True)
        }
        return {"trials": 40, "epochs": 50, "space": "s2e", "seeds": [0, 1, 2], "settings": {"sym-50": rows}}

    real = summary([1, 2, 3, 4], [0.02, None, -0.01, -0.03])
    _, same = fidelity.side_by_side(real, summary([1, 2, 3, 4], [0.02, None, -0.01, -0.03]))
    assert same["spearman_all"] == pytest.approx(1.0) and same["same_sign"] == 1.0 and same["gap_in_se"] == 0.0
    _, flipped = fidelity.side_by_side(real, summary([4, 3, 2, 1], [-0.02, None, 0.01, 0.03]))
    assert flipped["spearman_all"] == pytest.approx(-1.0) and flipped["same_sign"] == 0.0
    assert flipped["gap_in_se"] == pytest.approx(np.mean([0.04, 0.02, 0.06]) / np.sqrt(2) / 0.01)
    assert "Spearman -1.00" in fidelity.markdown(real, summary([4, 3, 2, 1], [-0.02, None, 0.01, 0.03]))
    other = {**real, "epochs": 8}
    with pytest.raises(fidelity.UserError, match="differ in epochs"):
        fidelity.side_by_side(real, other)


def test_chance_agreement_pairs_disjoint_seed_groups():
    """Groups of 2 seeds: 0-1 with 2-3, 4-5 with 6-7; seeds 8 (an odd group) is left out."""
    from s2e_tune.bench import fidelity

    order = {"a": 0.3, "b": 0.2, "c": 0.1}
    rows = []
    for seed in range(9):
        flip = seed in (6, 7)  # the second pair's second group ranks the searchers the other way
        rows += [{"searcher": n, "seed": seed, "best_val_acc": -v if flip else v} for n, v in order.items()]
    rho = fidelity.chance_agreement(pd.DataFrame(rows), group=2)
    assert rho == [pytest.approx(1.0), pytest.approx(-1.0)]


def test_a_searcher_that_answers_none_while_nothing_runs_is_asked_again():
    """Tune asks again every step (BayesOptSearch returns None for a duplicate); so does the replay."""
    from ray.tune.search import Searcher

    from s2e_tune.replay.simulator import replay_search
    from searchers.plan import SearchPlan

    class Shy(Searcher):
        def __init__(self):
            super().__init__(metric="val_acc", mode="max")
            self.calls = 0

        def suggest(self, trial_id):
            self.calls += 1
            return None if self.calls % 3 else {"schedule": "constant", "keep": 0.5, "epochs": 2}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    plan = SearchPlan(Shy(), None, 4, {"schedule": "constant", "keep": 0.5, "epochs": 2})
    rows = replay_search(plan, lambda c, e: {"val_acc": 0.5}, epochs=2, slots=1)
    assert len({r["trial_id"] for r in rows}) == 4 and len(rows) == 8
