"""The W&B Report (``results.wandb_report``), built offline and checked on content: its panels name
only metrics the W&B callback logs, its run sets filter on the experiment and group by the search,
its table holds the summary's values; and the save step's one-line answers, without the network.

No API key is used: W&B's config dir and netrc point at an empty temporary directory.
"""

from __future__ import annotations

import socket
import sys
from types import SimpleNamespace

import pandas as pd
import pytest
import wandb
import wandb_workspaces.reports.v2 as wr
from wandb_workspaces import expr

from results.schema import EPOCH_METRICS, SEARCH_KEY
from results.stats import pm
from results.summary import markdown_table
from results.wandb_log import EXPERIMENT_KEY, WandbTrialLogger
from results.wandb_report import build_wandb_report, save_wandb_report

EXPERIMENT = "2026-exp 'quoted'"  # a quote the filter must escape
MEDIA = ("search_efficiency", "label_precision")
SUMMARY = pd.DataFrame(
    {
        "searcher": ["s2e", "random"],
        "seeds": [2, 2],
        "best_val_acc": [0.675, 0.5],
        "best_val_acc_se": [0.025, 0.05],
        "test_acc": [0.73, 0.53],
        "test_acc_se": [0.07, 0.03],
        "trials": [3.0, 2.5],
    }
)


class NetworkUsed(BaseException):
    """Not an Exception: no ``except Exception`` on the way hides it."""


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No key, and any attempt to reach the network or W&B's API fails the test."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))

    def no_network(*args, **kwargs):
        raise NetworkUsed("the network was used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(wandb, "Api", no_network)


class _FakeRun:
    def __init__(self, logged: list[dict]) -> None:
        self.logged = logged

    def log(self, row, step):
        self.logged.append(row)


def _callback_logs(monkeypatch) -> tuple[set[str], dict]:
    """What the W&B callback logs for an epoch that reports every metric and Tune's own fields,
    and the config of its run: the callback driven with a stand-in for wandb."""
    logged: list[dict] = []
    fake = SimpleNamespace(init=lambda **kw: _FakeRun(logged), Settings=lambda **kw: None)
    monkeypatch.setattr("results.wandb_log._wandb", lambda: fake)
    cb = WandbTrialLogger("offline", EXPERIMENT, "s2e", 1)
    trial = SimpleNamespace(trial_id="t1", config={"schedule": "s2e", "w1": 0.5})
    result = {m: 0.5 for m in EPOCH_METRICS} | {"epoch": 1, "diverged": False}
    result |= {"time_this_iter_s": 1.0, "pid": 7, "hostname": "h", "training_iteration": 1}
    cb.on_trial_result(0, [], trial, result)
    (row,) = logged
    return set(row), cb.run_config(trial)


def _report():
    return build_wandb_report(SUMMARY, EXPERIMENT, "ent", "proj", MEDIA)


def _grids(report) -> list:
    return [b for b in report.blocks if isinstance(b, wr.PanelGrid)]


def _filters(runset) -> dict:
    """A run set's filter string, parsed by wandb-workspaces: ``{(section, name): value}``."""
    tree = expr.expr_to_filters(runset.filters)
    assert tree.op == "AND"
    return {(f.key.section, f.key.name): f.value for f in tree.filters if f.op == "="}


def test_the_report_is_built_offline():
    report = _report()
    assert isinstance(report, wr.Report)
    assert (report.entity, report.project) == ("ent", "proj") and EXPERIMENT in report.title
    assert all(rs.entity == "ent" and rs.project == "proj" for g in _grids(report) for rs in g.runsets)


def test_plots_name_only_metrics_the_callback_logs(monkeypatch):
    logged, _ = _callback_logs(monkeypatch)
    assert {"val_acc", "epoch", "time_this_iter_s"} <= logged and "pid" not in logged  # the stand-in works
    plots = [p for g in _grids(_report()) for p in g.panels if isinstance(p, wr.LinePlot)]
    assert len(plots) >= 3
    for p in plots:
        assert p.y and set(p.y) <= logged, p.y
        assert p.x in logged
    media = [p for g in _grids(_report()) for p in g.panels if isinstance(p, wr.MediaBrowser)]
    assert [m.media_keys for m in media] == [list(MEDIA)]  # the summary run's images, as given


def test_run_sets_filter_on_the_experiment_and_group_by_search(monkeypatch):
    _, config = _callback_logs(monkeypatch)
    trials, summary = _grids(_report())
    (runs,) = trials.runsets
    assert _filters(runs) == {("config", EXPERIMENT_KEY): EXPERIMENT, ("run", "jobType"): "trial"}
    assert config[EXPERIMENT_KEY] == EXPERIMENT  # the key a trial run carries
    assert {"config.searcher", "config.seed"} <= set(runs.groupby)
    assert runs.groupby == [f"config.{k}" for k in SEARCH_KEY]
    assert (config["searcher"], config["seed"]) == ("s2e", 1)  # the grouped keys are on every trial run
    (media_runs,) = summary.runsets
    assert _filters(media_runs) == {("config", EXPERIMENT_KEY): EXPERIMENT, ("run", "jobType"): "summary"}
    assert not any(isinstance(p, wr.MediaBrowser) for p in trials.panels)


def _markdown_rows(text: str) -> list[dict[str, str]]:
    head, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]
    return [dict(zip(head, r, strict=True)) for r in rows]


def test_the_summary_block_holds_the_summary_values():
    (block,) = [b for b in _report().blocks if isinstance(b, wr.MarkdownBlock)]
    assert block.text == markdown_table(SUMMARY)
    rows = _markdown_rows(block.text)
    assert [r["searcher"] for r in rows] == SUMMARY["searcher"].tolist()
    for r, s in zip(rows, SUMMARY.itertuples(), strict=True):
        assert r["best_val_acc"] == pm(s.best_val_acc, s.best_val_acc_se)
        assert r["best_val_acc"] == f"{s.best_val_acc:.4f} ± {s.best_val_acc_se:.4f}"
        assert r["test_acc"] == f"{s.test_acc:.4f} ± {s.test_acc_se:.4f}"
        assert float(r["trials"]) == s.trials and int(r["seeds"]) == s.seeds


def test_no_media_no_media_panel():
    report = build_wandb_report(SUMMARY, EXPERIMENT, "ent", "proj")
    assert len(_grids(report)) == 1


# ------------------------------------------------------------------------------ the save step
MANIFEST = {"name": EXPERIMENT}


def test_save_without_a_key_is_skipped():
    line = save_wandb_report(SUMMARY, MANIFEST)
    assert line == "W&B report skipped: no W&B API key (run `wandb login` or set WANDB_API_KEY)"


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_save_in_offline_mode_is_skipped(monkeypatch, mode):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", mode)
    line = save_wandb_report(SUMMARY, MANIFEST)
    assert line == f"W&B report skipped: WANDB_MODE={mode}; a report needs the W&B server"


def test_save_without_the_package_is_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb_workspaces.reports.v2", None)  # import raises ImportError
    line = save_wandb_report(SUMMARY, MANIFEST)
    assert line.startswith("W&B report skipped: the optional package wandb-workspaces is not installed")


def test_a_failed_save_is_one_line(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)

    def api_down(*args, **kwargs):
        raise RuntimeError("W&B is down\nsecond line")

    monkeypatch.setattr(wandb, "Api", api_down)
    assert save_wandb_report(SUMMARY, MANIFEST) == "W&B report failed: W&B is down"
