"""``--resume`` when Tune's stored experiment state was cut off (``search_run.unreadable_tune_state``).

Tune rewrites its experiment state in place while a background thread may still be copying the
previous one to storage; a driver stopped then leaves an empty copy (seen in CI).  Tune's own
restore logs the JSON error and goes on with a searcher that has no space.  The run must
instead say so in one line and run that search again from scratch, without duplicate rows."""

from __future__ import annotations

import json

import ray

from results import layout
from results.store import Store
from results.tables import read_epochs
from s2e_tune.search_run import run_search, unreadable_tune_state
from tests.test_tune_log import EPOCHS, interrupted_search


def test_unreadable_tune_state_finds_only_a_newest_state_that_is_not_json(tmp_path):
    store = Store.from_uri(str(tmp_path))
    assert unreadable_tune_state(store, "s-seed0") is None  # nothing saved yet
    exp = tmp_path / "s-seed0"
    (exp / "trial_0").mkdir(parents=True)
    (exp / "trial_0" / "result.json").write_text("")  # not Tune's experiment state: ignored
    (exp / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"a": 1}))
    assert unreadable_tune_state(store, "s-seed0") is None
    (exp / "experiment_state-2026-01-02_00-00-00.json").write_text('{"trial_data": [')
    assert unreadable_tune_state(store, "s-seed0").endswith("experiment_state-2026-01-02_00-00-00.json")
    (exp / "experiment_state-2026-01-03_00-00-00.json").write_text("{}")  # a newer good one wins
    assert unreadable_tune_state(store, "s-seed0") is None


def test_a_resume_from_a_cut_off_tune_state_runs_the_search_again_cleanly(small_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "0")
    cfg, store = interrupted_search(small_data, tmp_path)
    assert len(read_epochs(store)) >= 1
    states = sorted((tmp_path / "t" / "random-seed0").glob("experiment_state-*.json"))
    assert states, "Tune saved no experiment state"
    states[-1].write_bytes(b"")  # what the copy race leaves
    capsys.readouterr()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        run_search(cfg.replace(resume=True), store, "random", 0, small_data)
    finally:
        ray.shutdown()
    err = capsys.readouterr().err.strip().splitlines()
    warned = [line for line in err if "unreadable" in line]
    assert len(warned) == 1 and warned[0].startswith("[random seed 0] warning:") and states[-1].name in warned[0]
    rows = read_epochs(store)
    assert rows["epoch"].tolist() == list(range(1, EPOCHS + 1))  # the old partial rows are gone
    assert rows["trial_id"].nunique() == 1
    assert store.exists(store.path(layout.done_marker("random", 0)))
