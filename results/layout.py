"""Every path of an experiment's results tree, in one place (README, "Results").

All paths are relative to the experiment root ``<storage>/<name>/`` and joined with
:meth:`results.store.Store.path`; the logger, the tables, the report, the run command and the
benchmarks ask this module, never spell a path themselves::

    manifest.json                                      MANIFEST
    lock.json                                          LOCK: held by the run writing the experiment
    epochs/searcher=<s>/seed=<k>/part-<trial>.parquet  epoch_part(...)
    trials/searcher=<s>/seed=<k>/part-<trial>.parquet  trial_part(...)
    trials.parquet, summary.parquet                    TRIALS_TABLE, SUMMARY_TABLE
    plots/                                             PLOTS
    <searcher>/seed=<k>/history.json                   history(...): a searcher's own record (S2E's p_theta)
    <searcher>-seed<k>/                                tune_experiment(...): Ray Tune's experiment
    searches/<searcher>-seed<k>.done                   done_marker(...): the search has finished
    wandb/                                             WANDB: W&B offline runs
"""

from __future__ import annotations

MANIFEST = "manifest.json"
LOCK = "lock.json"  # results.lock: host, pid, start and heartbeat of the run that writes the experiment
EPOCHS = "epochs"  # one row per (trial, epoch), Hive-partitioned by searcher and seed
TRIALS = "trials"  # one status row per trial when it ends, partitioned the same way
TRIALS_TABLE = "trials.parquet"
SUMMARY_TABLE = "summary.parquet"
PLOTS = "plots"
SEARCHES = "searches"
WANDB = "wandb"
HISTORY_FILE = "history.json"


def partition(kind: str, searcher: str, seed: int) -> str:
    """``<kind>/searcher=<s>/seed=<k>``: the Hive partition of one search (``kind``: EPOCHS or TRIALS)."""
    return f"{kind}/searcher={searcher}/seed={int(seed)}"


def part_file(kind: str, searcher: str, seed: int, trial_id: str) -> str:
    return f"{partition(kind, searcher, seed)}/part-{trial_id}.parquet"


def partition_values(path: str) -> dict[str, str]:
    """``{"searcher": ..., "seed": ...}`` read back from a part file's path."""
    return dict(seg.split("=", 1) for seg in path.split("/") if "=" in seg)


def search_label(searcher: str, seed: int) -> str:
    """``<searcher>-seed<k>``: the name of one search (its Tune experiment, its done marker)."""
    return f"{searcher}-seed{int(seed)}"


def tune_experiment(searcher: str, seed: int) -> str:
    return search_label(searcher, seed)


def done_marker(searcher: str, seed: int) -> str:
    return f"{SEARCHES}/{search_label(searcher, seed)}.done"


def history_dir(searcher: str) -> str:
    return searcher


def history(searcher: str, seed: int) -> str:
    return f"{searcher}/seed={int(seed)}/{HISTORY_FILE}"


def plot_file(name: str) -> str:
    return f"{PLOTS}/{name}"


def search_paths(searcher: str, seed: int) -> tuple[str, ...]:
    """Everything one (searcher, seed) search leaves in the tree - what ``bench search --rerun``
    deletes so that a ``--resume`` runs the search again from scratch.  The tables and plots
    are rebuilt from the parts and are not listed."""
    return (
        done_marker(searcher, seed),
        tune_experiment(searcher, seed),
        f"{history_dir(searcher)}/seed={int(seed)}",
        partition(EPOCHS, searcher, seed),
        partition(TRIALS, searcher, seed),
    )
