"""``search_run``'s Tune callbacks and stopper, on real Tune objects."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pyarrow as pa
import pytest
import ray
from ray.train._internal.storage import StorageContext
from ray.tune import ResultGrid
from ray.tune.experiment import Trial

from results import layout
from results.store import Store
from s2e_tune.search_run import EpochBudgetStopper, NameUnstartedTrials, trial_dirname


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def unstarted_trial(tmp_path) -> Trial:
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="exp")
    return Trial("f", config={"a": 1}, storage=storage, trial_dirname_creator=trial_dirname, stub=True)


def grid_of(trials) -> ResultGrid:
    return ResultGrid(SimpleNamespace(trials=trials, trial_dataframes={}, _fs=None))


def test_a_trial_tune_never_scheduled_breaks_the_result_grid_unless_it_is_named(tmp_path):
    started, unstarted = unstarted_trial(tmp_path), unstarted_trial(tmp_path)
    started.init_local_path()  # what scheduling its actor does
    with pytest.raises(RuntimeError, match="trial_dir_name"):  # Ray's behaviour the callback works around
        grid_of([started, unstarted])
    NameUnstartedTrials().on_experiment_end(trials=[started, unstarted])
    grid = grid_of([started, unstarted])
    assert len(grid) == 2 and grid[1].path.endswith(trial_dirname(unstarted))
    assert unstarted.status == Trial.PENDING and "epoch" not in grid[1].metrics
    assert started.storage.trial_dir_name == trial_dirname(started)  # a named trial keeps its name


def test_the_budget_counts_each_trial_epoch_once_and_a_restored_copy_takes_up_the_stored_rows(tmp_path):
    store = Store.from_uri(str(tmp_path))
    stopper = EpochBudgetStopper(budget=4, store=store, searcher="s2e", seed=0)
    for epoch in (1, 2, 2, 3):  # epoch 2 trained again after a checkpoint fallback
        stopper("t1", {"epoch": epoch})
    assert stopper.used == 3 and not stopper.stop_all()
    stopper("t2", {"epoch": 1})
    assert stopper.used == 4 and stopper.stop_all()

    rows = pa.table({"trial_id": ["t1"] * 6, "epoch": list(range(1, 7))})  # more than the pickled count
    store.write_table(store.path(layout.part_file(layout.EPOCHS, "s2e", 0, "t1")), rows)
    restored = pickle.loads(pickle.dumps(EpochBudgetStopper(budget=10, store=store, searcher="s2e", seed=0)))
    restored("t1", {"epoch": 7})
    assert restored.used == 7  # the six rows on disk, then the new epoch
