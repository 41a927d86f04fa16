"""A search whose driver is killed with SIGKILL continues with --resume from what Tune had stored.

What survives a kill is Tune's last experiment snapshot (``experiment_state-*.json`` and the
searcher state beside it, in ``<exp>/<searcher>-seed<k>/``), not the newest epoch rows: Tune
writes the snapshot every ~10 s, the Parquet logger every epoch.  So after ``--resume``:

* each search that had a snapshot is restored (``[<searcher> seed 0] restored from <path>``), one
  that had finished is skipped, one that had neither starts afresh;
* every trial the snapshot knew keeps its id, and its epoch rows of the kill survive with the same
  metrics and config (a trial the snapshot had as TERMINATED is not trained again at all: its rows
  are unchanged to the timestamp; one it had as PENDING or RUNNING is re-trained from its last
  stored checkpoint, which continues exactly);
* the rows of trials started after the snapshot (orphans) are gone: the restored search replaced
  those trials with new ones (``ParquetLogger.on_experiment_end``);
* S2E's history keeps the rounds its stored state had at the kill, unchanged, as its first rounds;
* and the whole ends like an uninterrupted search.

A silent fresh restart (``Tuner.can_restore`` false, a new Tuner) fails the first two points.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from ray.tune.execution.tune_controller import TuneController

from results import layout
from results.history import read_history
from results.store import Store
from results.tables import read_epochs
from s2e_tune.search_run import newest_searcher_state, newest_tune_file
from searchers.s2e_state import history_from_state

SEARCHERS = ("s2e", "random")
TRIALS, EPOCHS, K = 4, 3, 2
KEY = ["searcher", "seed", "trial_id", "epoch"]
RUN_DEPENDENT = ("epoch_time_s", "time_this_iter_s", "timestamp", "node_id")  # the clock and the node, not training
# a snapshot or searcher state listed and read while Tune writes or uploads it
NOT_THERE_YET = (FileNotFoundError, json.JSONDecodeError, EOFError, pickle.UnpicklingError)


def command(tmp_path, storage, data_dir, *extra, quiet=True):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("mnist1d_samples: 1000\n")
    fixed = f"--trials {TRIALS} --epochs {EPOCHS} --samples-per-round {K} --name R --wandb off".split()
    return [
        *(sys.executable, "-m", "s2e_tune.run", "--config", str(cfg), "--searcher", ",".join(SEARCHERS), *fixed),
        *("--storage", storage, "--data-dir", str(data_dir), *(["--quiet"] if quiet else []), *extra),
    ]


def part_rows(store: Store, path: str) -> pa.Table | None:
    """One epoch part file read while the search writes it; ``None`` if it is gone or was replaced
    during the read (on object storage a read is several requests, and a part rewritten between
    them reads torn).  Any other error is raised."""
    seen = store.fs.get_file_info(path)
    try:
        return store.read_table(path)
    except (OSError, ValueError):  # FileNotFoundError, a torn Parquet file (OSError, ArrowInvalid)
        now = store.fs.get_file_info(path)
        if now.type == pafs.FileType.NotFound or (now.size, now.mtime) != (seen.size, seen.mtime):
            return None
        raise


def epoch_rows(store: Store) -> pd.DataFrame:
    """``trial_id`` and ``epoch`` of the epoch rows on disk while the search writes them."""
    parts = [part_rows(store, p) for p in store.list_files(store.path(layout.EPOCHS))]
    tables = [t.select(["trial_id", "epoch"]) for t in parts if t is not None]
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame(columns=["trial_id", "epoch"])


def tune_snapshot(store: Store, searcher: str) -> dict[str, str] | None:
    """``{trial_id: status}`` of the newest experiment snapshot Tune has stored for the search (what
    ``Tuner.restore`` starts from); ``None`` if it has stored none."""
    newest = newest_tune_file(store, layout.tune_experiment(searcher, 0), TuneController.CKPT_FILE_TMPL)
    if newest is None:
        return None
    doc = json.loads(store.read_bytes(newest))
    return {t["trial_id"]: t["status"] for t in (json.loads(d) for d, _ in doc["trial_data"])}


def s2e_rounds(store: Store) -> list[dict]:
    """The rounds S2E's stored searcher state has recorded, as ``history.json`` will hold them."""
    state = newest_searcher_state(store, layout.tune_experiment("s2e", 0))
    doc = history_from_state(state) if state is not None else None
    return [] if doc is None else json.loads(json.dumps(doc["rounds"]))


def stored(store: Store) -> dict:
    """What the experiment holds now: epoch rows, Tune's snapshots, finished searches, S2E's rounds."""
    return {
        "rows": epoch_rows(store),
        "snapshots": {s: tune_snapshot(store, s) for s in SEARCHERS},
        "done": {s for s in SEARCHERS if store.exists(store.path(layout.done_marker(s, 0)))},
        "rounds": s2e_rounds(store),
    }


def ready_to_kill(now: dict, kill_after_rows: int, need_round: bool) -> bool:
    """The rows the test waits for are there, an unfinished search has a snapshot that knows a trial
    with rows (so that something must survive the kill), and S2E has a stored round if asked."""
    with_rows = set(now["rows"]["trial_id"])
    restorable = [snap for s, snap in now["snapshots"].items() if snap and s not in now["done"]]
    return (
        len(now["rows"]) >= kill_after_rows
        and any(with_rows & set(snap) for snap in restorable)
        and (len(now["rounds"]) >= 1 or not need_round)
    )


@pytest.fixture
def storage(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "out")
    server = request.getfixturevalue("s3_server")
    return f"s3://{server['bucket']}/{tmp_path.name}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("storage", "kill_after_rows", "need_round"),
    [
        pytest.param("local", 1, False, id="local-first-epoch"),
        # a snapshot every second (TUNE_GLOBAL_CHECKPOINT_S), so that S2E's state is stored with a
        # finished round before its search ends: its history must keep that round
        pytest.param("local", 9, True, id="local-after-a-round"),
        pytest.param("s3", 9, False, id="s3"),
    ],
    indirect=["storage"],
)
def test_sigkilled_search_resumes_from_tunes_snapshot(tmp_path, storage, data_dir, kill_after_rows, need_round):
    store = Store.from_uri(f"{storage}/R")
    env = {**os.environ, **({"TUNE_GLOBAL_CHECKPOINT_S": "1"} if need_round else {})}
    proc = subprocess.Popen(
        command(tmp_path, storage, data_dir),
        start_new_session=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        try:
            if ready_to_kill(stored(store), kill_after_rows, need_round):
                break
        except NOT_THERE_YET:
            pass
        time.sleep(0.2)
    assert proc.poll() is None, f"search ended before the kill point: {proc.stderr.read()[-2000:]}"
    assert time.time() < deadline, "the kill point never came"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started die at once
    proc.wait()

    at_kill = stored(store)  # nothing writes now: read as it is, errors raised
    before = read_epochs(store)
    assert kill_after_rows <= len(before) < len(SEARCHERS) * TRIALS * EPOCHS
    assert len(at_kill["rounds"]) >= 1 or not need_round
    known = {t: st for snap in at_kill["snapshots"].values() if snap for t, st in snap.items()}
    kept = set(before["trial_id"]) & set(known)
    assert kept, "no trial with rows in Tune's snapshot: the kill checks nothing"

    done = subprocess.run(
        command(tmp_path, storage, data_dir, "--resume", quiet=False), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for s in SEARCHERS:  # the restore branch was taken for every search Tune had a snapshot of
        restored = f"[{s} seed 0] restored from " in done.stdout
        skipped = f"[{s} seed 0] already finished, skipped" in done.stdout
        want = (False, True) if s in at_kill["done"] else (at_kill["snapshots"][s] is not None, False)
        assert (restored, skipped) == want, (s, done.stdout[-3000:])

    after = read_epochs(store)
    assert not after.duplicated(KEY).any()
    # the trials the snapshot knew survive; those started after it were replaced
    assert set(after["trial_id"]) & set(before["trial_id"]) == kept
    trials = store.read_table(store.path(layout.TRIALS_TABLE)).to_pandas()
    assert set(known) <= set(trials["trial_id"])
    # their rows of the kill survive with the same values; a TERMINATED trial is not trained again
    stable = [c for c in before.columns if c not in RUN_DEPENDENT]
    old = before[before["trial_id"].isin(kept)].reset_index(drop=True)
    new = old[KEY].merge(after, on=KEY, how="left", validate="one_to_one")
    pd.testing.assert_frame_equal(new[stable], old[stable])
    finished = old["trial_id"].map(known).eq("TERMINATED")
    pd.testing.assert_frame_equal(new[finished][old.columns], old[finished])

    for searcher in SEARCHERS:
        mine = trials[trials["searcher"] == searcher]
        assert len(mine) == TRIALS, mine
        assert (mine["epochs_run"] == EPOCHS).all()
        assert (mine["status"] == "TERMINATED").all()
        rows = after[after["searcher"] == searcher]
        assert sorted(rows.groupby("trial_id")["epoch"].apply(list).tolist()) == [[1, 2, 3]] * TRIALS

    # S2E's history keeps the rounds its stored state had at the kill, as they were
    history = read_history(store, "s2e", 0)
    assert len(history["rounds"]) == TRIALS // K
    assert history["rounds"][: len(at_kill["rounds"])] == at_kill["rounds"]
