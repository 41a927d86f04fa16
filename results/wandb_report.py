"""A W&B Report of one experiment: built offline (:func:`build_wandb_report`), saved online
(:func:`save_wandb_report`, what ``python -m s2e_tune.report DIR --wandb-report`` calls).

The report names only what :mod:`results.wandb_log` logs: the trial runs' per-epoch metrics
(:data:`results.wandb_log.TRIAL_METRICS`), grouped by the search (``results.schema.SEARCH_KEY``
config keys, on every trial run), and the summary run's images; both run sets are the runs whose
:data:`results.wandb_log.EXPERIMENT_KEY` config names the experiment.  It needs the optional
package wandb-workspaces (``pip install wandb-workspaces``, the ``report`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from results.schema import OBJECTIVE, SEARCH_KEY
from results.summary import markdown_table
from results.wandb_log import EXPERIMENT_KEY, has_api_key, project_name

X_METRIC = "epoch"  # the x axis of every line plot (also the trial runs' W&B step)
LINE_METRICS = (OBJECTIVE, "test_acc", "label_precision", "kept_ratio")  # one line plot each
GROUPBY = [f"config.{k}" for k in SEARCH_KEY]  # one line per (searcher, seed) search
SKIPPED = "W&B report skipped: "


def _quoted(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def runs_filter(experiment: str, job_type: str) -> str:
    """The run-set filter of one experiment's runs of one ``job_type`` (``trial`` or ``summary``)."""
    return f"Config('{EXPERIMENT_KEY}') = {_quoted(experiment)} and JobType = {_quoted(job_type)}"


def build_wandb_report(
    summary: pd.DataFrame,
    experiment: str,
    entity: str,
    project: str,
    media_keys: Sequence[str] = (),
) -> Any:
    """The ``wandb_workspaces.reports.v2.Report`` of ``experiment`` (not saved; no network): its
    title, the ``summary`` table (:func:`results.summary.markdown_table`), a line plot of each of
    :data:`LINE_METRICS` against :data:`X_METRIC` over the trial runs grouped by :data:`GROUPBY`, and
    the summary run's images ``media_keys``.  Raises ImportError without wandb-workspaces."""
    import wandb_workspaces.reports.v2 as wr  # optional package

    trials = wr.Runset(
        entity=entity,
        project=project,
        name=f"{experiment}: trials",
        filters=runs_filter(experiment, "trial"),
        groupby=list(GROUPBY),
    )
    plots = [wr.LinePlot(x=X_METRIC, y=[m], title=f"{m} per {X_METRIC}") for m in LINE_METRICS]
    blocks = [
        wr.H1(text=f"s2e-tune: {experiment}"),
        wr.MarkdownBlock(text=markdown_table(summary)),
        wr.PanelGrid(runsets=[trials], panels=plots),
    ]
    if media_keys:
        runs = wr.Runset(
            entity=entity, project=project, name=f"{experiment}: summary", filters=runs_filter(experiment, "summary")
        )
        blocks.append(
            wr.PanelGrid(runsets=[runs], panels=[wr.MediaBrowser(media_keys=list(media_keys), num_columns=1)])
        )
    return wr.Report(
        entity=entity,
        project=project,
        title=f"s2e-tune: {experiment}"[:128],  # W&B's limit
        description="Search of Co-teaching's R(t): S2E vs. the usual searchers",
        blocks=blocks,
    )


def _why_not() -> str | None:
    """Why a report cannot be saved now (one line), or None."""
    try:
        import wandb_workspaces.reports.v2  # noqa: F401 - only whether it is there
    except ImportError:
        return SKIPPED + "the optional package wandb-workspaces is not installed (pip install it)"
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return SKIPPED + f"WANDB_MODE={os.environ['WANDB_MODE']}; a report needs the W&B server"
    if not has_api_key():
        return SKIPPED + "no W&B API key (run `wandb login` or set WANDB_API_KEY)"
    return None


def save_wandb_report(
    summary: pd.DataFrame,
    manifest: dict[str, Any] | None,
    project: str | None = None,
    media_keys: Sequence[str] = (),
) -> str:
    """Build the report of the experiment ``manifest["name"]`` and save it to W&B (online only);
    returns one line: its URL, why it was skipped, or why saving failed."""
    if why := _why_not():
        return why
    experiment = (manifest or {}).get("name") or "s2e-tune"
    try:
        import wandb  # local: a slow import that only a saved report needs

        entity = os.environ.get("WANDB_ENTITY") or wandb.Api().default_entity
        report = build_wandb_report(summary, experiment, entity, project_name(project), media_keys)
        report.save()
        return f"W&B report: {report.url}"
    except Exception as exc:  # noqa: BLE001 - network/auth/API problems: one line, not a traceback
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return f"W&B report failed: {first}"
