import math

import numpy as np
import pytest
import torch

from noisylabels.spaces import coteaching_default
from trainables.engine import Trainer
from trainables.methods import coteaching, num_kept, small_loss_indices, standard


def test_small_loss_selection_on_a_hand_made_batch():
    losses = torch.tensor([0.9, 0.1, 0.5, 0.05, 2.0, 0.3])
    assert sorted(small_loss_indices(losses, 0.5).tolist()) == [1, 3, 5]
    assert sorted(small_loss_indices(losses, 1.0).tolist()) == list(range(6))
    assert small_loss_indices(losses, 0.0).tolist() == [3]  # never an empty batch
    assert num_kept(128, 0.5) == 64 and num_kept(10, 0.55) == 5


def test_coteaching_updates_each_net_on_the_other_nets_selection():
    y = torch.tensor([0, 1, 0, 1])
    # net1 is confident on samples 0 and 1, net2 on samples 2 and 3
    logits1 = torch.tensor([[5.0, -5], [-5, 5], [-5, 5], [5, -5]], requires_grad=True)
    logits2 = torch.tensor([[-5.0, 5], [5, -5], [5, -5], [-5, 5]], requires_grad=True)
    res = coteaching([logits1, logits2], y, keep=0.5)
    assert sorted(res.selected[0].tolist()) == [0, 1]
    assert sorted(res.selected[1].tolist()) == [2, 3]
    (res.losses[0] + res.losses[1]).backward()
    # net1 learns from net2's pick (2, 3) only, and vice versa
    assert torch.all(logits1.grad[[0, 1]] == 0) and torch.all(logits1.grad[[2, 3]] != 0)
    assert torch.all(logits2.grad[[2, 3]] == 0) and torch.all(logits2.grad[[0, 1]] != 0)


def test_standard_uses_every_sample():
    logits = torch.randn(8, 3, requires_grad=True)
    res = standard([logits], torch.zeros(8, dtype=torch.long), keep=0.1)
    assert res.selected == [None]
    res.losses[0].backward()
    assert torch.all(logits.grad.abs().sum(1) > 0)


def test_label_precision_counts_the_clean_fraction_of_selected_samples(small_data):
    seed = 5
    tr = Trainer({"method": "coteaching", "epochs": 4, "seed": seed, **coteaching_default(0.5)}, small_data)
    m1 = tr.train_epoch()
    # epoch 1 keeps everything: precision is exactly the clean fraction of the full batches seen
    perm = torch.randperm(len(small_data.y_train), generator=torch.Generator().manual_seed(seed + 1))
    seen = perm[: (len(perm) // 128) * 128].numpy()
    clean = small_data.y_train[seen] == small_data.y_train_clean[seen]
    assert m1["kept_ratio"] == 1.0
    assert m1["label_precision_net1"] == pytest.approx(clean.mean())
    assert m1["label_precision"] == np.mean([m1["label_precision_net1"], m1["label_precision_net2"]])


def test_small_loss_selection_finds_cleaner_samples(medium_data):
    tr = Trainer({"method": "coteaching", "epochs": 6, **coteaching_default(0.5)}, medium_data)
    first = tr.train_epoch()
    for _ in range(5):
        last = tr.train_epoch()
    assert last["kept_ratio"] == 0.5
    assert last["label_precision"] > first["label_precision"] + 0.15


def test_standard_reports_whole_set_precision_and_no_second_net(small_data):
    m = Trainer({"method": "standard", "epochs": 2}, small_data).train_epoch()
    assert abs(m["label_precision"] - (1 - small_data.info["realised_noise_rate"])) < 0.05
    assert math.isnan(m["label_precision_net2"]) and math.isnan(m["test_acc_net2"])
