"""The run command's progress line: best so far, budget used and time left (s2e_tune.progress)."""

from __future__ import annotations

import io
import re
import sys
from types import SimpleNamespace

import pyarrow as pa
import pytest

from results import layout
from results.store import Store
from s2e_tune.progress import LineProgress, format_duration


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def trial(trial_id: str, epoch: int, val: float) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, last_result={"epoch": epoch, "val_acc": val, "label_precision": 0.5})


def run_trial(p: LineProgress, clock: Clock, t, epochs_s: list[float], first_epoch: int = 1) -> str:
    """Report one result per entry of ``epochs_s`` (the clock when it arrives), then complete."""
    for epoch, now in enumerate(epochs_s, start=first_epoch):
        clock.t = now
        p.on_trial_result(0, [], t, {"time_this_iter_s": 1.0, "epoch": epoch})
    p.on_trial_complete(0, [], t)
    return p.stream.getvalue().splitlines()[-1]


def test_line_shows_best_of_full_length_trials_budget_and_time_left():
    clock = Clock(0.0)
    p = LineProgress("s2e seed 0", total=4, budget=8, full_epochs=2, stream=io.StringIO(), clock=clock)
    p.setup()
    # first result at t=10 after a 1 s epoch: the pace counts from t=9; two epochs by t=11 -> 1 s/epoch
    line = run_trial(p, clock, trial("a", 2, 0.30), [10.0, 11.0])
    assert line == (
        "[s2e seed 0] trial 1/4 a: epochs=2 val_acc=0.3000 label_precision=0.500 | "
        "best 0.3000 | 2/8 epochs (25 %) | ~6s left"
    )
    # an early-stopped trial's higher val_acc is not the best (the best-trial rule: full length)
    line = run_trial(p, clock, trial("b", 1, 0.90), [14.0])
    assert "trial 2/4 b: epochs=1 val_acc=0.9000" in line and "best 0.3000 | 3/8 epochs (38 %)" in line
    assert line.endswith("~8s left")  # 3 epochs in 5 s, 5 epochs left
    line = run_trial(p, clock, trial("c", 2, 0.50), [15.0, 19.0])
    assert "best 0.5000 | 5/8 epochs (62 %) | ~6s left" in line  # 5 epochs in 10 s, 3 left


def test_best_is_a_dash_until_a_trial_finishes_and_short_trials_count_while_no_full_one_has():
    clock = Clock(0.0)
    p = LineProgress("asha seed 1", total=3, budget=6, full_epochs=2, stream=io.StringIO(), clock=clock)
    p.setup()
    assert p.best() is None
    line = run_trial(p, clock, trial("a", 1, 0.42), [2.0])
    assert "best 0.4200" in line  # no full-length trial yet: results.schema.best_trials takes all
    line = run_trial(p, clock, trial("b", 2, 0.10), [3.0, 4.0])
    assert "best 0.1000" in line


def write_part(store: Store, kind: str, trial_id: str, table: pa.Table) -> None:
    store.write_table(store.path(layout.part_file(kind, "s2e", 0, trial_id)), table)


def test_resume_takes_up_the_stored_epochs_and_finished_trials(tmp_path):
    store = Store.from_uri(str(tmp_path / "exp"))
    write_part(store, layout.EPOCHS, "t1", pa.table({"trial_id": ["t1", "t1"], "epoch": [1, 2], "val_acc": [0.2, 0.4]}))
    write_part(store, layout.TRIALS, "t1", pa.table({"trial_id": ["t1"]}))
    write_part(store, layout.EPOCHS, "t2", pa.table({"trial_id": ["t2"], "epoch": [1], "val_acc": [0.9]}))  # running
    clock = Clock(0.0)
    p = LineProgress("s2e seed 0", 4, 8, 2, search=(store, "s2e", 0), stream=io.StringIO(), clock=clock)
    p.setup()
    assert (p.used, p.done, p.finals) == (3, 1, [(2, 0.4)])
    line = run_trial(p, clock, trial("t2", 2, 0.35), [5.0], first_epoch=2)
    assert "trial 2/4 t2: epochs=2 val_acc=0.3500" in line and "best 0.4000 | 4/8 epochs (50 %)" in line


def test_an_epoch_trained_again_after_a_fallback_is_not_new_budget_and_its_warning_is_shown():
    clock = Clock(0.0)
    p = LineProgress("s2e seed 0", total=2, budget=4, full_epochs=2, stream=io.StringIO(), clock=clock)
    p.setup()
    t = trial("a", 2, 0.3)
    p.on_trial_result(0, [], t, {"epoch": 1, "time_this_iter_s": 1.0, "restore_warning": ""})
    warning = "warning: checkpoint /x/trainer.pt unreadable (EOFError); restored from /y (epoch 1)"
    p.on_trial_result(0, [], t, {"epoch": 2, "time_this_iter_s": 1.0, "restore_warning": warning})
    p.on_trial_result(0, [], t, {"epoch": 2, "time_this_iter_s": 1.0, "restore_warning": ""})  # trained again
    assert p.used == 2 and p.epochs_here == 3
    assert p.stream.getvalue().splitlines() == [f"[s2e seed 0] trial a: {warning}"]


@pytest.mark.parametrize(("s", "text"), [(0, "0s"), (44.6, "45s"), (130, "2m10s"), (3900, "1h05m")])
def test_format_duration(s, text):
    assert format_duration(s) == text


def test_a_real_run_prints_the_new_fields(tmp_path, data_dir):
    from s2e_tune.run import main

    out = io.StringIO()
    argv = ["--searcher", "random", "--trials", "2", "--epochs", "2", "--storage", str(tmp_path), "--name", "p",
            "--data-dir", str(data_dir), "--wandb", "off", "--mnist1d-samples", "1000"]  # fmt: skip
    old, sys.stdout = sys.stdout, out
    try:
        assert main(argv) == 0
    finally:
        sys.stdout = old
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("[random seed 0] trial")]
    assert len(lines) == 2, out.getvalue()
    pattern = r"val_acc=(\S+) .* \| best (\S+) \| (\d)/4 epochs \(\d+ %\) \| ~\d+s left$"
    fields = [re.search(pattern, ln) for ln in lines]
    assert all(fields), lines
    vals = [float(f.group(1)) for f in fields]
    assert float(fields[0].group(2)) == vals[0]  # trials may run side by side: the count at each line varies
    assert float(fields[1].group(2)) == max(vals) and fields[1].group(3) == "4"  # the whole budget at the end
