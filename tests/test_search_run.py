"""``search_run``'s Tune callbacks, on real Tune objects."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import ray
from ray.train._internal.storage import StorageContext
from ray.tune import ResultGrid
from ray.tune.experiment import Trial

from s2e_tune.search_run import NameUnstartedTrials, trial_dirname


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
