import copy

import pytest
import torch

from noisylabels.spaces import coteaching_default
from results.schema import EPOCH_METRICS
from trainables.engine import Trainer
from trainables.methods import METHODS

METRICS = set(EPOCH_METRICS)


def strip_time(m):
    return {k: v for k, v in m.items() if k != "epoch_time_s"}


@pytest.mark.parametrize("model", ["cnn1d", "mlp"])
def test_restored_trainer_continues_exactly(small_data, model):
    cfg = {"method": "coteaching", "epochs": 4, "model": model, "seed": 3, "device": "cpu", **coteaching_default(0.5)}
    a = Trainer(cfg, small_data)
    a.train_epoch()
    state = copy.deepcopy(a.state_dict())
    expected = [strip_time(a.train_epoch()) for _ in range(2)]
    torch.manual_seed(12345)  # the global RNG is part of the state: disturb it
    b = Trainer(cfg, small_data)
    b.load_state_dict(state)
    assert [strip_time(b.train_epoch()) for _ in range(2)] == expected


def test_same_seed_same_metrics_other_seed_differs(small_data):
    cfg = {"method": "coteaching", "epochs": 2, "device": "cpu", **coteaching_default(0.5)}
    runs = [strip_time(Trainer({**cfg, "seed": s}, small_data).train_epoch()) for s in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_metric_names_and_optimizer_schedule(small_data):
    cfg = {"method": "coteaching", "epochs": 5, "decay_start": 0.4, **coteaching_default(0.5)}
    tr = Trainer(cfg, small_data)
    seen = []
    for _ in range(5):
        m = tr.train_epoch()
        assert set(m) == METRICS
        group = tr.opts[0].param_groups[0]
        seen.append((group["lr"], group["betas"][0]))
    # epochs 1-2 (0-based 0, 1) at lr, then linear decay from 0-based epoch 2 with beta1 = 0.1
    assert seen[0] == (1e-3, 0.9) and seen[1] == (1e-3, 0.9)
    assert seen[2] == pytest.approx((1e-3, 0.1))
    assert seen[3][0] == pytest.approx(1e-3 * 2 / 3) and seen[4][0] == pytest.approx(1e-3 / 3)


def test_unknown_method_is_rejected(small_data):
    with pytest.raises(ValueError, match="unknown method"):
        Trainer({"method": "magic"}, small_data)


@pytest.mark.parametrize("method", list(METHODS))
def test_an_epoch_reports_exactly_the_schema_metrics(method, small_data):
    """What the loggers, tables and report read (results.schema.EPOCH_METRICS) is what an epoch emits."""
    m = Trainer({"method": method, "epochs": 2, "model": "mlp", **coteaching_default(0.5)}, small_data).train_epoch()
    assert sorted(m) == sorted(EPOCH_METRICS)
