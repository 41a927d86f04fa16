"""Presets, the `default` reference searcher and the paper setup on fabricated MNIST files."""

import numpy as np
import pandas as pd
import pytest

from s2e_tune.config import PRESETS, ExperimentConfig
from s2e_tune.run import main, parse_config
from tests.test_vision_loaders import write_idx_images, write_idx_labels


def test_presets_sit_between_defaults_and_file_and_flags(tmp_path):
    cfg = parse_config(["--preset", "paper-mnist"])
    assert (cfg.dataset, cfg.model, cfg.epochs, cfg.batch_size, cfg.lr) == ("mnist", "cnn9", 200, 128, 1e-3)
    f = tmp_path / "c.yaml"
    f.write_text("preset: smoke\nepochs: 5\n")
    cfg = parse_config(["--config", str(f), "--trials", "7"])
    assert (cfg.epochs, cfg.trials, cfg.samples_per_round) == (5, 7, PRESETS["smoke"]["samples_per_round"])
    assert parse_config(["--preset", "smoke", "--epochs", "9"]).epochs == 9
    assert ExperimentConfig() == parse_config([])


@pytest.mark.slow
def test_paper_mnist_preset_runs_end_to_end_on_fabricated_idx_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    for split, n in (("train", 300), ("t10k", 100)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for k in range(10):  # a learnable pattern: a bright bar whose row is the class
            images[labels == k, 2 + 2 * k, 4:24] = 255
        write_idx_images(raw / f"{split}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{split}-labels-idx1-ubyte", labels)
    argv = ["--preset", "paper-mnist", "--epochs", "3", "--searcher", "default", "--data-dir", str(tmp_path / "data"),
            "--storage", str(tmp_path / "out"), "--name", "paper", "--wandb", "off", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    trials = pd.read_parquet(tmp_path / "out" / "paper" / "trials.parquet")
    assert len(trials) == 1 and trials["epochs_run"].iloc[0] == 3
    row = trials.iloc[0]
    assert row["config.model"] == "cnn9" and row["config.tau"] == 0.5 and row["config.t_k"] == 10.0
    assert "default" in capsys.readouterr().out
