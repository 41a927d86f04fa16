"""``bench variants --screen``: an S2E variant replayed in this process, S2E's searches only, and
compared with a replay benchmark's stored peers through ``bench search``'s own statistics.

An S2E search of the protocol runs only full-length trials, K at a time, so its replay needs no
scheduler: the run command's ``S2ESearcher`` (``searchers.registry`` -> ``SearchPlan``) is asked
for configurations and told each trial's final ``val_acc``, answered from the recording exactly as
``bench search --backend replay`` answers them (``s2e_tune.replay.table``: the same query curve,
nearest recorded curves and noise draw), so the best value of a search equals that replay's to
every digit.  The peers' final values come from their stored searches, once per peer directory
(``aggregate.analyse_setting``, cached as ``peer-finals.parquet`` in ``--out``).  What it skips:
writing Parquet, Tune's ``Trial`` objects and the per-epoch results, so a variant takes seconds
instead of minutes; ``bench variants`` without ``--screen`` measures through ``bench search``
itself.  The budget fraction to match random is computed on the trials in the order they were
asked (a replay with two slots completes them in that order, give or take one trial).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from results.efficiency import mean_ranks
from s2e_tune.bench import common
from s2e_tune.bench.search import aggregate
from s2e_tune.bench.search.definition import REFERENCE
from s2e_tune.bench.search.replay import TABLE_FILE, _init_worker, _table, data_seed_of, load_recording_meta, table_dir
from s2e_tune.replay.table import REPLAYED, draw_of, query_curve
from searchers import registry

PEER_FINALS = "peer-finals.parquet"


def s2e_search(cfg: Any, setting: str, seed: int, recording: str, data_seeds: list[int]) -> np.ndarray:
    """The final ``val_acc`` of every trial of one replayed S2E search, in the order asked."""
    plan = registry.get("s2e").plan(cfg.search_context(seed))
    alg = plan.search_alg
    alg.set_search_properties("val_acc", "max", plan.param_space)
    base, objective = common.recorded_as(setting)
    table = _table(recording, base, data_seed_of(seed, data_seeds), objective)
    col = REPLAYED.index("val_acc")
    values: list[float] = []
    while len(values) < plan.num_samples:
        batch = []  # one round: everything the searcher hands out before it waits
        while len(values) + len(batch) < plan.num_samples:
            trial_id = f"t{len(values) + len(batch)}"
            config = alg.suggest(trial_id)
            if not isinstance(config, dict):
                break
            batch.append((trial_id, config))
        if not batch:
            break
        for trial_id, config in batch:
            q = query_curve(config, table.epochs)
            v = float(table.answer(q, draw_of(seed, q))[-1, col])
            alg.on_trial_complete(trial_id, {"val_acc": v})
            values.append(v)
    return np.array(values)


def _job(job: tuple) -> tuple[str, int, np.ndarray]:
    cfg, setting, seed, recording, data_seeds = job
    return setting, seed, s2e_search(cfg, setting, seed, recording, data_seeds)


def peer_finals(bench_args: Any, out: Path) -> pd.DataFrame:
    """Per (setting, searcher, seed) the best ``val_acc`` at the full budget of the stored peers."""
    path = out / PEER_FINALS
    if path.exists():
        return pd.read_parquet(path)
    frames = []
    for setting in bench_args.bench.settings:
        res = aggregate.analyse_setting(bench_args, setting)
        frames.append(res.finals.assign(setting=setting))
    df = pd.concat(frames, ignore_index=True)
    df = df[df["searcher"] != "s2e"]
    df.to_parquet(path, index=False)
    return df


def screen(bench_args: Any, cfgs: dict[str, Any], out: Path, workers: int) -> dict[str, Any]:
    """The summary (``bench search --summary-json``'s shape) of S2E under ``cfgs``' options."""
    rec_meta = load_recording_meta(bench_args)
    recording = str(table_dir(bench_args) / TABLE_FILE)
    data_seeds = list(rec_meta["spec"]["data_seeds"])
    peers = peer_finals(bench_args, out)
    jobs = [(cfg, s, seed, recording, data_seeds) for s, cfg in cfgs.items() for seed in bench_args.bench.seeds]
    runs: dict[tuple[str, int], np.ndarray] = {}
    with cf.ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        for setting, seed, values in pool.map(_job, jobs, chunksize=5):
            runs[(setting, seed)] = values
    settings = {}
    for setting in cfgs:
        seeds = list(bench_args.bench.seeds)
        mine = pd.DataFrame(
            {"searcher": "s2e", "seed": seeds, "best_val_acc": [runs[(setting, s)].max() for s in seeds]}
        )
        finals = pd.concat([peers[peers["setting"] == setting].drop(columns="setting"), mine], ignore_index=True)
        scores = aggregate.normalized_scores(finals)
        ranks = mean_ranks(finals)
        ref = finals[finals["searcher"] == REFERENCE]["best_val_acc"].mean()
        curve = np.mean([np.maximum.accumulate(runs[(setting, s)]) for s in seeds], axis=0)
        hit = np.flatnonzero(curve >= ref - 1e-12)
        rows = {}
        for name in finals["searcher"].unique():
            diff, se = aggregate.paired_difference(finals, name)
            sc = scores.loc[scores["searcher"] == name, "score"]
            rows[name] = {
                "best_val_mean": float(finals.loc[finals["searcher"] == name, "best_val_acc"].mean()),
                "diff_vs_random_mean": None if math.isnan(diff) else diff,
                "diff_vs_random_se": None if math.isnan(se) else se,
                "normalized_score_mean": None if sc.dropna().empty else float(sc.mean()),
                "pooled_normalized_score": aggregate.pooled_normalized_score(finals, name),
                "mean_rank": float(ranks.get(name, math.nan)),
                "budget_fraction_to_random_final": None,
            }
        rows["s2e"]["budget_fraction_to_random_final"] = float((hit[0] + 1) / len(curve)) if len(hit) else None
        settings[setting] = rows
    return {"backend": "replay (screen)", "seeds": list(bench_args.bench.seeds), "settings": settings}
