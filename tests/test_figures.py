"""The report's figures, tested on their content: the line data of the Figure objects that
``s2e_tune.report.build_report`` draws from a small hand-made results tree, compared with values
worked out by hand from the tree's raw numbers (never by the library code the plots use).

The tree (``write_tree``): T = 4 epochs per trial, budget 3 trials x 4 epochs, noise rate 0.5.
S2E and random on seeds 0 and 1, TPE on seed 0 only; sequential trials, 1 s (S2E), 0.5 s
(random) or 2 s (TPE) per epoch.  Lines are found by their ``gid`` (set in results/plots.py).
"""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import results
from results import layout
from results.history import write_history
from results.parquet_log import epoch_table, status_table
from results.plots import plot_schedules
from results.store import Store
from s2e_tune.report import build_report

T0 = 1_800_000_000
T = 4
SEC = {"s2e": 1.0, "random": 0.5, "tpe": 2.0}
NEUTRAL = (1.0, 0.01, 0.0, 1.0)  # basis parameters of a basis with weight 0


def s2e_cfg(w, bases):
    cfg = {"schedule": "s2e", **{f"w{i}": float(v) for i, v in enumerate(w, start=1)}}
    for i in range(1, 5):
        cfg.update({f"f{i}_a{j}": float(v) for j, v in enumerate(bases.get(i, NEUTRAL), start=1)})
    return cfg


def cot_cfg(tau, c, t_k):
    return {"schedule": "coteaching", "tau": tau, "c": c, "t_k": t_k}


S2E_BEST1 = s2e_cfg((1, 0, 0, 0), {1: (1.0, 0.02, 0.1, 1.0)})  # exp(-0.02 t) + 0.1 t/200
S2E_BEST0 = s2e_cfg((0, 0, 0, 2), {4: (1.0, 0.05, 0.6, 1.0)})  # 1/(1+0.05 t) + 0.6 log(1+t)/log(201)
S2E_OTHER = s2e_cfg((1, 1, 1, 1), {})
DEFAULT = cot_cfg(0.5, 1.0, 10.0)  # Co-teaching's default at noise rate 0.5

# (searcher, seed) -> [(trial_id, val_acc per epoch, test_acc per epoch, label_precision per epoch, config)]
TRIALS = {
    ("s2e", 0): [
        ("a0", [0.2, 0.3, 0.4, 0.50], [0.3, 0.4, 0.5, 0.60], [0.50, 0.55, 0.60, 0.65], S2E_OTHER),
        ("b0", [0.3, 0.95, 0.6, 0.70], [0.4, 0.5, 0.65, 0.75], [0.52, 0.63, 0.74, 0.85], S2E_BEST0),
        ("c0", [0.3, 0.4, 0.5, 0.60], [0.5, 0.6, 0.8, 0.90], [0.50, 0.55, 0.60, 0.65], S2E_OTHER),
    ],
    ("s2e", 1): [
        ("a1", [0.2, 0.3, 0.35, 0.40], [0.3, 0.35, 0.4, 0.45], [0.5, 0.5, 0.5, 0.5], S2E_OTHER),
        ("b1", [0.2, 0.3, 0.45, 0.55], [0.3, 0.35, 0.4, 0.50], [0.5, 0.5, 0.5, 0.5], S2E_OTHER),
        ("c1", [0.3, 0.5, 0.7, 0.80], [0.35, 0.45, 0.6, 0.70], [0.61, 0.72, 0.83, 0.94], S2E_BEST1),
    ],
    ("random", 0): [
        ("x0", [0.2, 0.3, 0.5, 0.65], [0.3, 0.4, 0.5, 0.55], [0.40, 0.45, 0.50, 0.55], cot_cfg(0.6, 2.0, 100.0)),
        ("y0", [0.5, 0.99], [0.2, 0.10], [0.3, 0.3], cot_cfg(0.2, 1.0, 20.0)),  # stopped early: not a candidate
        ("z0", [0.2, 0.3, 0.4, 0.60], [0.3, 0.5, 0.7, 0.80], [0.4, 0.4, 0.4, 0.4], cot_cfg(0.2, 1.0, 20.0)),
    ],
    ("random", 1): [
        ("x1", [0.1, 0.2, 0.25, 0.30], [0.2, 0.3, 0.3, 0.35], [0.4, 0.4, 0.4, 0.4], cot_cfg(0.2, 1.0, 20.0)),
        ("y1", [0.2, 0.3, 0.4, 0.45], [0.25, 0.3, 0.35, 0.40], [0.30, 0.35, 0.40, 0.45], cot_cfg(0.3, 0.5, 50.0)),
        ("z1", [0.2, 0.25, 0.3, 0.35], [0.3, 0.4, 0.5, 0.60], [0.90, 0.80, 0.85, 0.88], DEFAULT),
    ],
    ("tpe", 0): [
        ("p0", [0.3, 0.4, 0.5, 0.58], [0.4, 0.5, 0.55, 0.62], [0.70, 0.60, 0.50, 0.40], cot_cfg(0.98, 1.0, 40.0)),
        ("q0", [0.3, 0.4, 0.5, 0.52], [0.4, 0.5, 0.6, 0.66], [0.5, 0.5, 0.5, 0.5], cot_cfg(0.1, 1.0, 5.0)),
    ],
}
MANIFEST = {
    "name": "figures",
    "config": dict(dataset="mnist1d", noise="sym", noise_rate=0.5, method="coteaching", epochs=T, trials=3),
    "seeds": [0, 1],
}
# S2E's record of seed 1: the mean configuration of each round (no parameter ranges: R(t) at the mean)
ROUND_MEANS = [
    s2e_cfg((1, 1, 1, 1), {}),  # 0.5 exp(-0.01 t) + 0.5 / (1 + 0.01 t)
    s2e_cfg((0, 1, 0, 0), {2: (0.5, 0.2, 0.25, 2.0)}),  # exp(-0.2 t^0.5) + 0.25 log(1+t^2)/log(1+200^2)
    s2e_cfg((0, 0, 1, 0), {3: (2.0, 0.03, 0.4, 3.0)}),  # (1 + 0.03 t)^-2 + 0.4 (t/200)^3
]


def write_tree(root) -> Store:
    store = Store.from_uri(str(root))
    for (searcher, seed), trials in TRIALS.items():
        clock = 0
        for tid, val, test, lp, cfg in trials:
            rows = []
            for e, (v, t, p) in enumerate(zip(val, test, lp, strict=True), start=1):
                clock += 1
                metrics = {"val_acc": v, "test_acc": t, "label_precision": p, "kept_ratio": 1.0, "diverged": False}
                when = {"time_this_iter_s": SEC[searcher], "timestamp": T0 + clock}
                config = {f"config.{k}": x for k, x in {**cfg, "epochs": T, "seed": seed}.items()}
                rows.append({"trial_id": tid, "epoch": e, **metrics, **when, **config})
            store.write_table(store.path(layout.part_file(layout.EPOCHS, searcher, seed, tid)), epoch_table(rows))
            status = "TERMINATED" if len(val) == T else "STOPPED_EARLY"
            table = status_table([tid], [status], [clock], [T0 + clock])
            store.write_table(store.path(layout.part_file(layout.TRIALS, searcher, seed, tid)), table)
    store.write_bytes(store.path(layout.MANIFEST), json.dumps(MANIFEST).encode())
    write_history(store, "s2e", 0, {"params": None, "fixed": {"schedule": "s2e"}, "rounds": []})  # no round yet
    rounds = [{"round": i, "mean": {k: v for k, v in m.items() if k != "schedule"}} for i, m in enumerate(ROUND_MEANS)]
    write_history(store, "s2e", 1, {"params": None, "fixed": {"schedule": "s2e"}, "rounds": rounds})
    return store


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures") / "exp"
    write_tree(root)
    return root


@pytest.fixture(scope="module")
def figures(tree, tmp_path_factory):
    """The three Figure objects build_report draws, caught as it saves them."""
    caught: list[Figure] = []
    save = Figure.savefig

    def spy(self, *args, **kwargs):
        caught.append(self)
        return save(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", spy)
        build_report(str(tree), out=str(tmp_path_factory.mktemp("plots")))
    titles = {"Search efficiency": "efficiency", "Label precision": "precision", "Sample-selection": "schedules"}
    out = {}
    for fig in caught:
        key = [v for k, v in titles.items() if fig.get_suptitle().startswith(k)]
        assert len(key) == 1, fig.get_suptitle()
        out[key[0]] = fig
    assert set(out) == set(titles.values()) and len(caught) == 3
    return out


# ------------------------------------------------------------------------------ helpers
def by_gid(ax) -> dict:
    lines = ax.get_lines()
    gids = [ln.get_gid() for ln in lines]
    assert None not in gids and len(set(gids)) == len(gids), gids
    return dict(zip(gids, lines, strict=True))


def step_value(line, x: float) -> float:
    """The value a ``steps-post`` line shows at ``x``."""
    assert line.get_drawstyle() == "steps-post"
    xd, yd = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    i = np.searchsorted(xd, x, side="right") - 1
    return math.nan if i < 0 else float(yd[i])


def last_value(line) -> float:
    y = np.asarray(line.get_ydata(), float)
    return float(y[~np.isnan(y)][-1])


def in_band(coll, x: float, y: float) -> bool:
    return any(p.contains_point((x, y)) for p in coll.get_paths())


def clip(r):
    return np.clip(r, 0.05, 1.0)


def cot(tau, c, t_k):
    return lambda t: clip(1.0 - tau * np.minimum((t / t_k) ** c, 1.0))


def clock(x, epochs=T):
    """Epoch x of an ``epochs``-long run on the 200-unit reference clock."""
    return (np.asarray(x, float) - 1.0) * 200.0 / epochs


R_BEST = {  # R(t) of each searcher's best configuration per seed, and the default
    "s2e/seed=1": lambda t: clip(np.exp(-0.02 * t) + 0.1 * t / 200.0),
    "s2e/seed=0": lambda t: clip(1.0 / (1.0 + 0.05 * t) + 0.6 * np.log1p(t) / np.log(201.0)),
    "random/seed=0": cot(0.6, 2.0, 100.0),
    "random/seed=1": cot(0.3, 0.5, 50.0),
    "tpe/seed=0": cot(0.98, 1.0, 40.0),
    "default": cot(0.5, 1.0, 10.0),
}
R_ROUND = [
    lambda t: clip(0.5 * np.exp(-0.01 * t) + 0.5 / (1.0 + 0.01 * t)),
    lambda t: clip(np.exp(-0.2 * np.sqrt(t)) + 0.25 * np.log1p(t**2) / np.log1p(200.0**2)),
    lambda t: clip((1.0 + 0.03 * t) ** -2.0 + 0.4 * (t / 200.0) ** 3),
]

# ------------------------------------------------------------------------------ search efficiency
NAN = math.nan
# mean ± s.e. over seeds on the epoch grid 0..12; a trial's val_acc counts at its last epoch only
# s2e: seed 0 .50 (4) .70 (8); seed 1 .40 (4) .55 (8) .80 (12); random: seed 0 .65 (4; y0's .99 after
# 2 epochs is no candidate; ends at 10, kept); seed 1 .30 (4) .45 (8); tpe: one seed .58 (4), ends at 8.
EPOCH_CURVES = {
    "S2E": {
        "val": ([NAN] * 4 + [0.45] * 4 + [0.625] * 4 + [0.75], [NAN] * 4 + [0.05] * 4 + [0.075] * 4 + [0.05]),
        "test": ([NAN] * 4 + [0.525] * 4 + [0.625] * 4 + [0.725], [NAN] * 4 + [0.075] * 4 + [0.125] * 4 + [0.025]),
    },
    "random": {
        "val": ([NAN] * 4 + [0.475] * 4 + [0.55] * 5, [NAN] * 4 + [0.175] * 4 + [0.10] * 5),
        "test": ([NAN] * 4 + [0.45] * 4 + [0.475] * 5, [NAN] * 4 + [0.10] * 4 + [0.075] * 5),
    },
    "TPE": {"val": ([NAN] * 4 + [0.58] * 5 + [NAN] * 4, None), "test": ([NAN] * 4 + [0.62] * 5 + [NAN] * 4, None)},
}


def test_efficiency_epoch_panels_show_mean_best_so_far_and_its_test_accuracy(figures):
    fig = figures["efficiency"]
    axes = fig.axes
    assert len(axes) == 4
    for ax, which in ((axes[0], "val"), (axes[2], "test")):  # left column: cumulative epochs
        lines = by_gid(ax)
        assert set(lines) == {"s2e", "random", "tpe", "budget"}
        np.testing.assert_allclose(lines["budget"].get_xdata(), [12, 12])  # 3 trials x 4 epochs
        for gid, lab in (("s2e", "S2E"), ("random", "random"), ("tpe", "TPE")):
            line = lines[gid]
            assert line.get_label() == lab and line.get_drawstyle() == "steps-post"
            np.testing.assert_allclose(line.get_xdata(), np.arange(13))
            np.testing.assert_allclose(line.get_ydata(), EPOCH_CURVES[lab][which][0], atol=1e-12, err_msg=lab)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["S2E", "random", "TPE"]


def test_efficiency_bands_are_mean_plus_minus_standard_error(figures):
    axes = figures["efficiency"].axes
    for ax, which in ((axes[0], "val"), (axes[2], "test")):
        bands = {c.get_gid(): c for c in ax.collections}
        assert set(bands) == {"band/s2e", "band/random"}  # TPE has one seed: no band
        for gid, lab in (("band/s2e", "S2E"), ("band/random", "random")):
            mean, se = EPOCH_CURVES[lab][which]
            for x in (4, 8, 11):  # the steps [4, 5), [8, 9), [11, 12)
                lo, hi, eps = mean[x] - se[x], mean[x] + se[x], 0.01
                assert in_band(bands[gid], x + 0.5, lo + eps) and in_band(bands[gid], x + 0.5, hi - eps), (gid, x)
                assert not in_band(bands[gid], x + 0.5, lo - eps), (gid, x)
                assert not in_band(bands[gid], x + 0.5, hi + eps), (gid, x)
            assert not in_band(bands[gid], 2.5, 0.5)  # no candidate finished yet


# time: s2e 1 s/epoch (events at 4, 8, 12 s), random 0.5 s (2, 2 and 4 s; ends 5 and 6 s),
# tpe 2 s (8 s; ends at 16 s); the value shown at x, between events
TIME_POINTS = {
    "s2e": [(3.5, NAN, NAN), (6.0, 0.45, 0.525), (10.0, 0.625, 0.625)],
    "random": [(1.5, NAN, NAN), (3.0, 0.475, 0.45), (5.0, 0.55, 0.475), (5.9, 0.55, 0.475)],
    "tpe": [(7.0, NAN, NAN), (12.0, 0.58, 0.62), (15.9, 0.58, 0.62)],
}


def test_efficiency_time_panels(figures):
    axes = figures["efficiency"].axes
    for ax, col in ((axes[1], 1), (axes[3], 2)):  # right column: cumulative training time
        lines = by_gid(ax)
        assert set(lines) == {"s2e", "random", "tpe"}  # no budget line on the time axis
        for gid, points in TIME_POINTS.items():
            for p in points:
                np.testing.assert_allclose(step_value(lines[gid], p[0]), p[col], atol=1e-12, err_msg=f"{gid} {p}")
        xd, yd = lines["s2e"].get_xdata(), lines["s2e"].get_ydata()
        assert np.nanmax(np.where(np.isnan(yd), np.nan, xd)) <= 12.0 + 1e-9  # stops at the search's cost


def test_efficiency_time_panels_reach_each_searchers_final_best(figures):
    lines = by_gid(figures["efficiency"].axes[1])
    finals = {gid: float(last_value(lines[gid])) for gid in lines}
    assert finals == pytest.approx({"s2e": 0.75, "random": 0.55, "tpe": 0.58})


# ------------------------------------------------------------------------------ label precision
# the best trial of each (searcher, seed) (highest val_acc at epoch 4), its label precision and test
# accuracy per epoch; the searcher's thick line is its best seed (s2e: seed 1, .80 > .70)
BEST_TRIALS = {
    "s2e/seed=1/c1": ("S2E best trial (seed 1, c1)", [0.61, 0.72, 0.83, 0.94], [0.35, 0.45, 0.6, 0.70]),
    "s2e/seed=0/b0": (None, [0.52, 0.63, 0.74, 0.85], [0.4, 0.5, 0.65, 0.75]),
    "random/seed=0/x0": ("random best trial (seed 0, x0)", [0.40, 0.45, 0.50, 0.55], [0.3, 0.4, 0.5, 0.55]),
    "random/seed=1/y1": (None, [0.30, 0.35, 0.40, 0.45], [0.25, 0.3, 0.35, 0.40]),
    "tpe/seed=0/p0": ("TPE best trial (seed 0, p0)", [0.70, 0.60, 0.50, 0.40], [0.4, 0.5, 0.55, 0.62]),
    "default/random/seed=1/z1": (
        "Co-teaching default schedule (tau = noise rate, c = 1, T_k = 10): random seed 1, z1",
        [0.90, 0.80, 0.85, 0.88],
        [0.3, 0.4, 0.5, 0.60],
    ),
}


def test_label_precision_of_each_seeds_best_trial(figures):
    axes = figures["precision"].axes
    assert len(axes) == 2
    for ax, col in ((axes[0], 1), (axes[1], 2)):  # left: label precision, right: test accuracy
        lines = by_gid(ax)
        assert set(lines) == set(BEST_TRIALS)
        for gid, want in BEST_TRIALS.items():
            line = lines[gid]
            np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4])
            np.testing.assert_allclose(line.get_ydata(), want[col], atol=1e-12, err_msg=gid)
            if want[0] is None:  # a thin line: another seed's best trial, not in the legend
                assert line.get_label().startswith("_")
            else:
                assert line.get_label() == want[0]
        assert lines["s2e/seed=0/b0"].get_linewidth() < lines["s2e/seed=1/c1"].get_linewidth()
        assert lines["random/seed=1/y1"].get_linewidth() < lines["random/seed=0/x0"].get_linewidth()
        assert lines["s2e/seed=0/b0"].get_color() == lines["s2e/seed=1/c1"].get_color()
        assert lines["s2e/seed=1/c1"].get_color() != lines["random/seed=0/x0"].get_color()
        assert lines["default/random/seed=1/z1"].get_linestyle() == "--"
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert sorted(legend) == sorted(w[0] for w in BEST_TRIALS.values() if w[0])


# ------------------------------------------------------------------------------ schedules
def check_dense(line, r, epochs=T):
    x = np.asarray(line.get_xdata(), float)
    assert x[0] == pytest.approx(1.0) and x[-1] == pytest.approx(epochs) and np.all(np.diff(x) > 0)
    assert len(x) > 50  # the shape between the run's epochs, not only the epochs
    np.testing.assert_allclose(line.get_ydata(), r(clock(x, epochs)), atol=1e-9)


def check_epochs(line, r, epochs=T):
    np.testing.assert_allclose(line.get_xdata(), np.arange(1, epochs + 1))
    np.testing.assert_allclose(line.get_ydata(), r(clock(np.arange(1, epochs + 1), epochs)), atol=1e-9)


SCHEDULE_LABELS = {
    "s2e/seed=1": "S2E best configuration (seed 1)",
    "random/seed=0": "random best configuration (seed 0)",
    "tpe/seed=0": "TPE best configuration (seed 0)",
    "default": "Co-teaching default (tau = 0.5, c = 1, T_k = 10)",
}


def test_schedules_of_the_best_configurations_and_the_default(figures):
    ax = figures["schedules"].axes[0]
    lines = by_gid(ax)
    assert set(lines) == set(R_BEST) | {f"{g}/epochs" for g in R_BEST}
    for gid, r in R_BEST.items():
        check_dense(lines[gid], r)
        check_epochs(lines[f"{gid}/epochs"], r)
        want = SCHEDULE_LABELS.get(gid)  # thin lines (the other seeds' best) are not in the legend
        assert lines[gid].get_label() == want if want else lines[gid].get_label().startswith("_")
    # spot values worked out on paper: b0 is clipped at 1 early on, TPE's tau = .98 at r_min = .05
    assert lines["s2e/seed=0/epochs"].get_ydata()[0] == pytest.approx(1.0)
    assert lines["tpe/seed=0/epochs"].get_ydata().tolist() == pytest.approx([1.0, 0.05, 0.05, 0.05])
    assert lines["default/epochs"].get_ydata().tolist() == pytest.approx([1.0, 0.5, 0.5, 0.5])
    assert lines["random/seed=0/epochs"].get_ydata().tolist() == pytest.approx([1.0, 0.85, 0.4, 0.4])


def test_s2e_mean_schedule_per_round(figures):
    fig = figures["schedules"]
    ax2 = fig.axes[1]
    lines = by_gid(ax2)
    assert set(lines) == {f"round={i}{m}" for i in (1, 2, 3) for m in ("", "/epochs")} | {"default"}
    for i, r in enumerate(R_ROUND, start=1):
        check_dense(lines[f"round={i}"], r)
        check_epochs(lines[f"round={i}/epochs"], r)
    check_dense(lines["default"], R_BEST["default"])
    cmap = plt.get_cmap("viridis")  # first round to last
    assert np.allclose(lines["round=1"].get_color(), cmap(0.0)) and np.allclose(lines["round=3"].get_color(), cmap(1.0))
    assert "R(t) at the mean of p_θ" in ax2.get_title() and "seed 1" in ax2.get_title()


def test_schedule_markers_at_the_run_epochs_when_T_does_not_divide_the_clock(tree):
    run = results.load(str(tree))
    manifest = {**MANIFEST, "config": {**MANIFEST["config"], "epochs": 3}}  # epochs at t = 0, 66.7, 133.3
    history = {"seed": 1, "params": None, "fixed": {"schedule": "s2e"}, "rounds": [{"mean": ROUND_MEANS[0]}]}
    fig = plot_schedules(run.epochs, run.trials, manifest, 4, history)
    try:
        left, right = by_gid(fig.axes[0]), by_gid(fig.axes[1])
        for gid, r in R_BEST.items():
            check_dense(left[gid], r, epochs=3)
            check_epochs(left[f"{gid}/epochs"], r, epochs=3)
        assert set(right) == {"round=1", "round=1/epochs", "default"}
        check_dense(right["round=1"], R_ROUND[0], epochs=3)
        check_epochs(right["round=1/epochs"], R_ROUND[0], epochs=3)
    finally:
        plt.close(fig)


def test_s2e_expected_schedule_per_round_with_parameter_ranges(tree):
    """With the parameter ranges, a round's curve is E[R(t)] under p_θ: here p_θ is a product
    Beta concentrated at u (a = u n, b = (1 - u) n, n = 4e6), so E[R(t)] is R at the point u."""
    params = [
        {"name": "tau", "low": 0.2, "high": 0.8, "log": False},
        {"name": "c", "low": 0.5, "high": 2.0, "log": False},
        {"name": "t_k", "low": 5.0, "high": 45.0, "log": False},
    ]
    n = 4e6
    rounds = [{"a": [u * n] * 3, "b": [(1 - u) * n] * 3} for u in (0.5, 0.75)]
    history = {"seed": 0, "params": params, "fixed": {"schedule": "coteaching"}, "rounds": rounds}
    run = results.load(str(tree))
    fig = plot_schedules(run.epochs, run.trials, MANIFEST, 4, history)
    try:
        ax2 = fig.axes[1]
        lines = by_gid(ax2)
        assert set(lines) == {"round=1", "round=1/epochs", "round=2", "round=2/epochs", "default"}
        for i, (tau, c, t_k) in enumerate(((0.5, 1.25, 25.0), (0.65, 1.625, 35.0)), start=1):
            x = np.asarray(lines[f"round={i}"].get_xdata(), float)
            np.testing.assert_allclose(lines[f"round={i}"].get_ydata(), cot(tau, c, t_k)(clock(x)), atol=2e-3)
            np.testing.assert_allclose(
                lines[f"round={i}/epochs"].get_ydata(), cot(tau, c, t_k)(clock([1, 2, 3, 4])), atol=2e-3
            )
        assert "E[R(t)] under p_θ (Monte Carlo)" in ax2.get_title() and "seed 0" in ax2.get_title()
    finally:
        plt.close(fig)
