"""The throughput/overhead benchmarks and their reference loop: behaviour only, never timings."""

import numpy as np
import pytest
import torch

from noisylabels.spaces import coteaching_default
from s2e_tune.bench import overhead, procfs, throughput
from s2e_tune.bench.reference_loop import ReferenceCoteaching, loss_coteaching
from trainables.engine import Trainer
from trainables.methods import Method, coteaching


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread, as in a 1-CPU Tune trial: fast and steady on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_reference_loop_learns(small_data):
    cfg = {"method": "coteaching", "epochs": 6, "seed": 0, **coteaching_default(0.5)}
    ref = ReferenceCoteaching(cfg, small_data)
    hist = [ref.train_epoch() for _ in range(6)]
    assert [h["epoch"] for h in hist] == list(range(1, 7))
    assert hist[0]["kept_ratio"] == 1.0 and hist[-1]["kept_ratio"] == pytest.approx(0.5)
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["test_acc"] > 0.2  # 10 classes: chance is 0.1
    assert all(0.0 <= h["label_precision"] <= 1.0 for h in hist)
    assert not any(h["diverged"] for h in hist)


@pytest.mark.parametrize(
    "schedule",
    [coteaching_default(0.5), {"schedule": "constant", "keep": 0.37}, {"schedule": "constant", "keep": 0.01}],
    ids=["coteaching", "keep-0.37", "r_min"],
)
def test_reference_selects_as_many_samples_per_batch_as_the_trainer(small_data, schedule):
    cfg = {"method": "coteaching", "epochs": 3, "seed": 0, **schedule}
    trainer = Trainer(cfg, small_data)
    seen: list[tuple[int, int]] = []

    def recording_rule(logits, y, keep):
        res = coteaching(logits, y, keep)
        seen.append(tuple(int(s.shape[0]) for s in res.selected))
        return res

    trainer.method = Method("coteaching", 2, True, recording_rule)
    ref = ReferenceCoteaching(cfg, small_data)
    for _ in range(3):
        seen.clear()
        m_tr, m_ref = trainer.train_epoch(), ref.train_epoch()
        assert m_tr["kept_ratio"] == m_ref["kept_ratio"]
        assert len(seen) == len(ref.batch_kept) == len(small_data.y_train) // 128  # drop_last in both
        assert [a for a, _ in seen] == [b for _, b in seen] == ref.batch_kept


def test_loss_coteaching_exchanges_small_loss_samples():
    torch.manual_seed(0)
    y = torch.randint(0, 3, (8,))
    logits1 = torch.randn(8, 3, requires_grad=True)
    logits2 = torch.randn(8, 3, requires_grad=True)
    ind = np.arange(100, 108)  # data-set indices of the batch
    clean = np.zeros(110, dtype=bool)
    clean[[100, 101]] = True
    loss1, loss2, pr1, pr2, kept = loss_coteaching(logits1, logits2, y, 0.5, ind, clean)
    assert kept == 4
    l1 = torch.nn.functional.cross_entropy(logits1, y, reduction="none").detach()
    l2 = torch.nn.functional.cross_entropy(logits2, y, reduction="none").detach()
    small1, small2 = torch.argsort(l1)[:4], torch.argsort(l2)[:4]
    assert loss1.item() == pytest.approx(l1[small2].mean().item())  # net 1 learns from net 2's choice
    assert loss2.item() == pytest.approx(l2[small1].mean().item())
    assert pr1 == pytest.approx(np.isin(small1.numpy(), [0, 1]).sum() / 4)
    assert pr2 == pytest.approx(np.isin(small2.numpy(), [0, 1]).sum() / 4)


def test_throughput_main_prints_ratios(data_dir, capsys):
    rc = throughput.main(["--epochs", "1", "--repeats", "2", "--samples", "1000", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "load average at start" in out and "torch threads 1" in out
    for runner in throughput.RUNNERS:
        assert f"\n{runner}" in out
    assert "ratio coteaching/standard epoch time (wall)" in out
    assert "ratio reference/coteaching epoch time (wall)" in out
    assert out.count("target <= 2.3x") == 2 and out.count("target >= 3x") == 2


def test_benchmarks_reject_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        throughput.main(["--epochs", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        overhead.main(["--trials", "0"])
    assert e.value.code == 2


def test_overhead_in_process_runs_the_given_configs(small_data):
    cfgs = [{"method": "coteaching", "epochs": 1, "seed": s, **coteaching_default(0.3)} for s in (0, 1)]
    walls, cpus = overhead.run_in_process(small_data, cfgs, log=lambda s: None)
    assert len(walls) == len(cpus) == 2 and all(t > 0 for t in walls + cpus)


def test_proc_cpu_time_of_this_process():
    import os

    cpu = procfs.proc_cpu_s(os.getpid())
    if cpu is None:
        pytest.skip("no /proc here")
    assert cpu > 0
    assert procfs.proc_cpu_s(-1) is None


@pytest.mark.slow
def test_overhead_main_prints_ratio(data_dir, capsys):
    args = ["--trials", "2", "--epochs", "1", "--samples", "1000", "--data-dir", str(data_dir)]
    rc = overhead.main(args)
    out = capsys.readouterr().out
    assert rc == 0
    assert "Tune: 2 trials" in out and "in-process: 2 trials" in out
    assert "ratio Tune wall / (summed in-process / concurrency)" in out
    assert "Tune trial processes:" in out  # CPU accounting through /proc (Linux)
    assert "not judged" in out  # 1-epoch trials are far below 10 s
