"""The baselines of the seed's comparison table: hand-made batches, Trainer runs, restore, Tune."""

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from noisylabels.spaces import coteaching_default
from tests.test_engine import METRICS, strip_time
from trainables.engine import Trainer
from trainables.methods import (
    METHODS,
    EpochContext,
    coteaching,
    coteaching_plus,
    decoupling,
    estimate_transition,
    fcorrection,
    forward_corrected_loss,
    jocor,
    selfteach,
    small_loss_mask,
    standard,
    symmetric_kl,
)

ALL = list(METHODS)
TWO_CLASS_CE = lambda a: math.log1p(math.exp(-a))  # noqa: E731  CE of label 0 for logits [a, 0]


def two_class(a):
    """Logits [a, 0] per sample: class 0 predicted iff a > 0, CE(label 0) = log(1 + e^-a)."""
    a = torch.tensor(a, dtype=torch.float32)
    return torch.stack([a, torch.zeros_like(a)], 1).requires_grad_(True)


def rows(mask):
    return sorted(torch.as_tensor(mask).nonzero().flatten().tolist()) if mask.dtype == torch.bool else sorted(
        mask.tolist()
    )


# ---- selection rules on hand-made batches ------------------------------------------------------


def test_small_loss_mask_ranks_only_among_the_candidates():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.05, 9.0])
    among = torch.tensor([True, True, True, True, False, False])
    assert rows(small_loss_mask(losses, 0.5, among)) == [0, 1]  # 0.05 is not a candidate
    assert rows(small_loss_mask(losses, 0.1, among)) == [0]  # floor(0.4) -> at least one
    assert rows(small_loss_mask(losses, 1.0, among)) == [0, 1, 2, 3]
    assert rows(small_loss_mask(losses, 0.5, torch.zeros(6, dtype=torch.bool))) == []  # nothing to pick


def test_selfteach_learns_from_its_own_small_loss_samples():
    y = torch.zeros(4, dtype=torch.long)
    logits = two_class([3.0, -2.0, 1.0, -4.0])  # losses ascending: 0, 2, 1, 3
    res = selfteach([logits], y, keep=0.5)
    assert rows(res.selected[0]) == [0, 2]
    assert res.losses[0].item() == pytest.approx((TWO_CLASS_CE(3.0) + TWO_CLASS_CE(1.0)) / 2)
    res.losses[0].backward()
    assert torch.all(logits.grad[[1, 3]] == 0) and torch.all(logits.grad[[0, 2]] != 0)


def test_decoupling_updates_both_nets_on_the_disagreement_set_only():
    y = torch.tensor([0, 1, 0, 1])
    logits1 = torch.tensor([[2.0, 0], [0, 2], [2, 0], [0, 2]], requires_grad=True)  # predicts 0 1 0 1
    logits2 = torch.tensor([[2.0, 0], [2, 0], [0, 2], [0, 2]], requires_grad=True)  # predicts 0 0 1 1
    for keep in (1.0, 0.1):  # no R(t): keep is ignored
        res = decoupling([logits1, logits2], y, keep=keep)
        assert rows(res.selected[0]) == rows(res.selected[1]) == [1, 2]
    # net1 is right on both disagreement samples, net2 wrong on both
    assert res.losses[0].item() == pytest.approx(math.log1p(math.exp(-2)))
    assert res.losses[1].item() == pytest.approx(math.log1p(math.exp(2)))
    (res.losses[0] + res.losses[1]).backward()
    for g in (logits1.grad, logits2.grad):
        assert torch.all(g[[0, 3]] == 0) and torch.all(g[[1, 2]] != 0)


def test_decoupling_without_disagreement_gives_zero_loss_and_no_gradient():
    logits = torch.randn(5, 3, requires_grad=True)
    res = decoupling([logits, logits.detach().clone().requires_grad_(True)], torch.zeros(5, dtype=torch.long), 1.0)
    assert rows(res.selected[0]) == [] and res.losses[0].item() == 0.0
    res.losses[0].backward()
    assert torch.all(logits.grad == 0)


def test_coteaching_plus_selects_small_loss_samples_inside_the_disagreement_set():
    y = torch.zeros(6, dtype=torch.long)
    logits1 = two_class([3.0, 1.0, -1.0, -3.0, 2.0, -2.0])  # predicts 0 0 1 1 0 1
    logits2 = two_class([-3.0, -1.0, 1.0, 3.0, 2.0, -2.0])  # predicts 1 1 0 0 0 1: disagree on 0-3
    res = coteaching_plus([logits1, logits2], y, keep=0.5)  # 2 of the 4 disagreement samples each
    # net1's smallest losses overall are samples 0 and 4, but 4 is an agreement sample
    assert rows(res.selected[0]) == [0, 1]
    assert rows(res.selected[1]) == [2, 3]
    # cross update: net1 learns from net2's pick (2, 3), net2 from net1's pick (0, 1)
    assert res.losses[0].item() == pytest.approx((TWO_CLASS_CE(-1.0) + TWO_CLASS_CE(-3.0)) / 2)
    assert res.losses[1].item() == pytest.approx((TWO_CLASS_CE(-3.0) + TWO_CLASS_CE(-1.0)) / 2)
    (res.losses[0] + res.losses[1]).backward()
    assert torch.all(logits1.grad[[0, 1, 4, 5]] == 0) and torch.all(logits1.grad[[2, 3]] != 0)
    assert torch.all(logits2.grad[[2, 3, 4, 5]] == 0) and torch.all(logits2.grad[[0, 1]] != 0)
    # floor(0.1 * 4) = 0 -> at least one sample each
    small = coteaching_plus([logits1, logits2], y, keep=0.1)
    assert rows(small.selected[0]) == [0] and rows(small.selected[1]) == [3]


def test_coteaching_plus_before_init_epoch_is_plain_coteaching():
    y = torch.zeros(6, dtype=torch.long)
    l1, l2 = two_class([3.0, 1.0, -1.0, -3.0, 2.0, -2.0]), two_class([-3.0, -1.0, 1.0, 3.0, 2.0, -2.0])
    plain = coteaching_plus([l1, l2], y, keep=0.5, disagree=False)
    ref = coteaching([l1, l2], y, keep=0.5)
    assert rows(plain.selected[0]) == rows(ref.selected[0]) == [0, 1, 4]
    assert [x.item() for x in plain.losses] == [x.item() for x in ref.losses]
    opt = METHODS["coteaching_plus"].options
    cfg = {"cotplus_init": 0.1}
    # 0.1 of 40 epochs = 4 Co-teaching epochs (CIFAR-10 code: 20 of 200), then disagreement
    assert [opt(EpochContext(e, 40, cfg))["disagree"] for e in (1, 4, 5, 40)] == [False, False, True, True]
    assert opt(EpochContext(1, 40, {"cotplus_init": 0.0}))["disagree"] is True  # the paper's MNIST code


def test_symmetric_kl_matches_a_hand_computation():
    logits1 = torch.tensor([[0.0, math.log(3.0)]])  # p1 = (1/4, 3/4)
    logits2 = torch.tensor([[0.0, 0.0]])  # p2 = (1/2, 1/2)
    kl12 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl21 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert symmetric_kl(logits1, logits2).item() == pytest.approx(kl12 + kl21, rel=1e-6)
    # the paper code's kl_div(log_softmax(a), softmax(b)) is KL(p_b || p_a)
    ref = F.kl_div(F.log_softmax(logits1, 1), F.softmax(logits2, 1), reduction="sum")
    assert ref.item() == pytest.approx(kl21, rel=1e-6)


def test_jocor_joint_loss_value_and_selection():
    y = torch.zeros(2, dtype=torch.long)
    # sample 0: the nets agree (KL = 0), CE sum 2 * 0.313; sample 1: smaller CE sum 0.219, but the nets disagree
    logits1, logits2 = two_class([1.0, 4.0]), two_class([1.0, 1.5])
    ce_sum = [2 * TWO_CLASS_CE(1.0), TWO_CLASS_CE(4.0) + TWO_CLASS_CE(1.5)]
    p1, p2 = 1 / (1 + math.exp(-4.0)), 1 / (1 + math.exp(-1.5))
    kl = (p1 - p2) * (math.log(p1 / p2) - math.log((1 - p1) / (1 - p2)))
    res = jocor([logits1, logits2], y, keep=0.5, lam=0.9)
    assert rows(res.selected[0]) == rows(res.selected[1]) == [0]  # small joint loss: agreement wins
    assert len(res.losses) == 1 and res.losses[0].item() == pytest.approx(0.1 * ce_sum[0], rel=1e-5)
    res.losses[0].backward()
    for g in (logits1.grad, logits2.grad):  # both nets are updated on the same selection
        assert torch.all(g[1] == 0) and torch.all(g[0] != 0)
    # lam = 0: plain small-loss selection on CE1 + CE2 picks sample 1
    assert rows(jocor([logits1, logits2], y, keep=0.5, lam=0.0).selected[0]) == [1]
    # the full per-sample joint loss at keep = 1
    both = jocor([logits1, logits2], y, keep=1.0, lam=0.9)
    expected = (0.1 * ce_sum[0] + 0.1 * ce_sum[1] + 0.9 * kl) / 2
    assert both.losses[0].item() == pytest.approx(expected, rel=1e-5)


def test_forward_corrected_loss_matches_a_manual_computation():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    y = torch.tensor([1, 2])
    t = torch.tensor([[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7]])
    manual = []
    for row, label in zip(logits.tolist(), y.tolist(), strict=True):
        e = [math.exp(v) for v in row]
        p = [v / sum(e) for v in e]
        q = sum(p[i] * t[i, label].item() for i in range(3))  # p(noisy = label | x)
        manual.append(-math.log(q))
    assert forward_corrected_loss(logits, y, t).tolist() == pytest.approx(manual, rel=1e-6)
    res = fcorrection([logits], y, keep=0.3, transition=t)
    assert res.selected == [None] and res.losses[0].item() == pytest.approx(np.mean(manual), rel=1e-6)
    # T = I is plain cross-entropy; no T yet (warm-up) is standard training
    assert forward_corrected_loss(logits, y, torch.eye(3)).tolist() == pytest.approx(
        F.cross_entropy(logits, y, reduction="none").tolist(), rel=1e-6
    )
    assert fcorrection([logits], y, 0.3).losses[0].item() == standard([logits], y, 0.3).losses[0].item()


def synthetic_posteriors(t_true, fillers=29, outliers=3):
    """Per class: ``outliers`` over-confident rows, one anchor row = T[i], fillers mixed towards uniform."""
    c = t_true.shape[0]
    out = []
    for i in range(c):
        conf = torch.full((c,), 0.01 / (c - 1))
        conf[i] = 0.99
        out += [conf] * outliers
        out.append(t_true[i])
        for lam in torch.linspace(0.1, 0.9, fillers):
            out.append(lam * t_true[i] + (1 - lam) / c)
    return torch.stack(out)


def test_anchor_estimate_recovers_the_transition_matrix():
    t_true = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.7, 0.3], [0.2, 0.0, 0.8]])
    clean = synthetic_posteriors(t_true, outliers=0)
    assert torch.allclose(estimate_transition(clean, percentile=100.0), t_true)
    # over-confident (memorised) rows: the plain argmax takes them as anchors and finds T ~ I ...
    probs = synthetic_posteriors(t_true)  # 99 rows: the top 3 % of every column are the outliers
    assert torch.allclose(estimate_transition(probs, percentile=100.0).diagonal(), torch.full((3,), 0.99))
    # ... the 97th-percentile anchor (the paper's code) skips them
    t_hat = estimate_transition(probs)
    assert torch.allclose(t_hat, t_true, atol=1e-6)
    assert torch.allclose(t_hat.sum(1), torch.ones(3))


# ---- through the Trainer -----------------------------------------------------------------------


def cfg_for(method, epochs=2, **kw):
    cfg = {"method": method, "epochs": epochs, "model": "mlp", "seed": 1, "device": "cpu"}
    return {**cfg, **coteaching_default(0.5), **kw}


@pytest.mark.parametrize("method", ALL)
def test_two_epochs_of_every_method_report_the_same_metrics(small_data, method):
    spec = METHODS[method]
    tr = Trainer(cfg_for(method), small_data)
    hist = [tr.train_epoch() for _ in range(2)]
    for m in hist:
        assert set(m) == METRICS
        assert math.isfinite(m["train_loss"]) and not m["diverged"]
        assert 0.0 <= m["label_precision_net1"] <= 1.0
        assert math.isnan(m["label_precision_net2"]) == (spec.num_nets == 1)
        assert math.isnan(m["test_acc_net2"]) == (spec.num_nets == 1)
    assert hist[0]["kept_ratio"] == 1.0
    assert hist[1]["kept_ratio"] == (0.5 if spec.uses_schedule else 1.0)
    if not spec.selects:  # the clean fraction of every sample trained on (drop_last leaves < 128 out)
        perm = torch.randperm(len(small_data.y_train), generator=torch.Generator().manual_seed(2))
        seen = perm[: (len(perm) // 128) * 128].numpy()
        clean = small_data.y_train[seen] == small_data.y_train_clean[seen]
        assert hist[0]["label_precision_net1"] == pytest.approx(clean.mean())


def test_fcorrection_estimates_t_hat_after_warmup_and_restarts_the_network(small_data):
    tr = Trainer(cfg_for("fcorrection", epochs=4, fc_warmup=0.5), small_data)  # 2 warm-up epochs
    tr.train_epoch()
    assert tr.transition is None
    net = tr.nets[0]
    tr.train_epoch()
    t_hat = tr.transition
    assert t_hat is not None and t_hat.shape == (10, 10)
    assert torch.allclose(t_hat.sum(1), torch.ones(10)) and torch.all(t_hat >= 0)
    assert tr.nets[0] is not net  # fc_reinit: the corrected network is trained from scratch
    assert tr.train_epoch()["kept_ratio"] == 1.0 and torch.equal(tr.transition, t_hat)  # estimated once
    keep = Trainer(cfg_for("fcorrection", epochs=4, fc_warmup=0.25, fc_reinit=False), small_data)
    net = keep.nets[0]
    keep.train_epoch()
    assert keep.transition is not None and keep.nets[0] is net


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("fcorrection", {"fc_warmup": 0.25}),  # checkpoint after the estimation: T_hat in the state
        ("fcorrection", {"fc_warmup": 0.5}),  # checkpoint before it: estimation + re-init replayed
        ("coteaching_plus", {"cotplus_init": 0.25}),  # epoch 1 Co-teaching, then disagreement
    ],
)
def test_restored_trainer_continues_exactly(small_data, method, extra):
    cfg = cfg_for(method, epochs=4, **extra)
    a = Trainer(cfg, small_data)
    a.train_epoch()
    state = copy.deepcopy(a.state_dict())
    assert (state["transition"] is not None) == (method == "fcorrection" and extra["fc_warmup"] == 0.25)
    expected = [strip_time(a.train_epoch()) for _ in range(2)]
    torch.manual_seed(999)
    b = Trainer(cfg, small_data)
    b.load_state_dict(state)
    assert [strip_time(b.train_epoch()) for _ in range(2)] == expected
    if method == "fcorrection":
        assert torch.equal(a.transition, b.transition)


@pytest.mark.slow
def test_tune_grid_over_every_method(small_data, tmp_path):
    import ray
    from ray import tune

    from trainables.trainable import NoisyLabelTrainable

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(NoisyLabelTrainable, data=small_data), {"cpu": 1}),
            param_space={**cfg_for("standard"), "method": tune.grid_search(ALL)},
            tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="methods", verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    assert len(grid) == len(ALL) and not grid.errors
    assert sorted(r.config["method"] for r in grid) == sorted(ALL)
    for res in grid:
        hist = res.metrics_dataframe
        assert list(hist["epoch"]) == [1, 2] and METRICS <= set(hist.columns)


# ---- the benchmark -----------------------------------------------------------------------------


def test_methods_benchmark_prints_the_seed_table_and_merges_saved_runs(data_dir, tmp_path, capsys):
    from s2e_tune.bench import methods as bench

    out = tmp_path / "runs.jsonl"
    args = ["--settings", "sym-50", "--methods", "standard,jocor", "--seeds", "0", "--epochs", "1", "--model", "mlp",
            "--samples", "400", "--data-dir", str(data_dir), "--out", str(out), "--set", "jocor_lambda=0.5"]
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "config overrides: {'jocor_lambda': 0.5}" in printed
    assert "| Flipping rate | Standard (Normal) | JoCoR |" in printed and "| Symmetry-50% | " in printed
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in saved] == [("standard", 0), ("jocor", 0)]
    assert {r["setting"] for r in saved} == {"sym-50"}
    assert bench.main(["--table-only", str(out)]) == 0
    assert "| sym-50 | jocor |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--methods", "magic"])
