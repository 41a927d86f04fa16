"""The CUDA path: the Trainer with bf16 autocast for every method, checkpoint continuity on the GPU,
and GPU fractions packing trials on one GPU.  Marked ``cuda`` and skipped where torch sees no GPU
(CI, the 2-core VM); run them with ``python -m pytest -m cuda`` on a GPU machine.  The first two
need neither Ray nor the network; the packing test needs Ray and is skipped without it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from noisylabels.spaces import coteaching_default
from results.schema import EPOCH_METRICS
from trainables.engine import Trainer
from trainables.methods import METHODS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU"),
]


def config(method: str, epochs: int) -> dict:
    return {"method": method, "epochs": epochs, "seed": 0, "device": "cuda", "amp": True,
            **coteaching_default(0.5)}  # fmt: skip


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_on_cuda_with_bf16_autocast(method, medium_data):
    t = Trainer(config(method, 3), medium_data)
    assert t.device.type == "cuda" and t.amp
    assert all(p.is_cuda for net in t.nets for p in net.parameters())
    rows = [t.train_epoch() for _ in range(3)]
    assert [set(r) for r in rows] == [set(EPOCH_METRICS)] * 3
    assert [r["epoch"] for r in rows] == [1, 2, 3] and t.finished
    for r in rows:
        assert not r["diverged"] and math.isfinite(r["train_loss"])
        assert 0.0 <= r["val_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0
    assert rows[-1]["test_acc"] > 0.15  # it learns: chance on MNIST-1D is 0.1
    assert all(p.dtype == torch.float32 for net in t.nets for p in net.parameters())  # autocast, not bf16 weights


def run(method: str, epochs: int, data, stop_after: int | None = None, tmp_path=None) -> list[dict]:
    """``epochs`` epochs; with ``stop_after``, a checkpoint written to disk after that epoch is
    loaded into a fresh Trainer (as Tune's restore does) that trains the rest."""
    t = Trainer(config(method, epochs), data)
    rows = []
    for e in range(epochs):
        if stop_after is not None and e == stop_after:
            path = tmp_path / "trainer.pt"
            torch.save(t.state_dict(), path)
            before = [p.detach().clone() for net in t.nets for p in net.parameters()]
            del t
            t = Trainer(config(method, epochs), data)
            t.load_state_dict(torch.load(path, map_location="cuda", weights_only=False))
            after = [p.detach() for net in t.nets for p in net.parameters()]
            assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
        rows.append(t.train_epoch())
    return rows


@pytest.mark.parametrize("method", ["coteaching", "standard"])
def test_checkpoint_restore_on_cuda_continues_the_run(method, medium_data, tmp_path):
    """A restored trial continues where it stopped: bit for bit where the GPU's kernels are
    deterministic run to run (checked first), else within the run-to-run spread."""
    a, b = run(method, 4, medium_data), run(method, 4, medium_data)
    resumed = run(method, 4, medium_data, stop_after=2, tmp_path=tmp_path)
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4]
    keys = ["kept_ratio", "label_precision", "train_loss", "val_acc", "test_acc"]
    same = all(x[k] == y[k] for x, y in zip(a, b, strict=True) for k in keys)
    for x, y in zip(a, resumed, strict=True):
        for k in keys:
            if same:
                assert x[k] == y[k], (k, x["epoch"], x[k], y[k])
            else:
                spread = max(abs(p[k] - q[k]) for p, q in zip(a, b, strict=True))
                assert abs(x[k] - y[k]) <= max(3 * spread, 0.02), (k, x["epoch"], x[k], y[k], spread)


def test_gpu_fractions_pack_four_trials_on_one_gpu(tmp_path, data_dir):
    """``--gpus 1 --gpus-per-trial 0.25``: four trials run at the same time on the one GPU."""
    pytest.importorskip("ray")
    from results.store import Store
    from results.tables import build_trials, read_epochs
    from s2e_tune.run import main

    argv = ["--searcher", "random", "--trials", "4", "--epochs", "3", "--gpus", "1", "--gpus-per-trial", "0.25",
            "--cpus-per-trial", "0.5", "--storage", str(tmp_path), "--name", "g", "--data-dir", str(data_dir),
            "--mnist1d-samples", "3000", "--wandb", "off", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    store = Store.from_uri(str(tmp_path / "g"))
    epochs, trials = read_epochs(store), build_trials(store)
    assert len(trials) == 4 and (trials["epochs_run"] == 3).all()
    assert (epochs["config.device"] == "cuda").all()
    start = trials["started_at"].max()
    end = trials["finished_at"].min()
    assert start < end, "the four trials did not overlap: they were not packed on the GPU"
    assert np.isfinite(epochs["val_acc"]).all()
