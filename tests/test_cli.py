"""The run command's argument handling: bad input is one line and exit code 2, before Ray starts."""

import json
import subprocess
import sys

import pytest
import ray

from s2e_tune.config import SEARCHERS, ExperimentConfig
from s2e_tune.run import main, parse_config


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--searcher", "grid"], "unknown searcher 'grid'"),
        (["--space", "nope"], "invalid choice"),
        (["--method", "magic"], "unknown method 'magic'"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--noise", "flip"], "unknown noise type 'flip'"),
        (["--noise-rate", "0.95"], "impossible"),
        (["--noise", "pair", "--noise-rate", "0.5"], "impossible"),
        (["--noise-rate", "-0.1"], "negative"),
        (["--epochs", "0"], "--epochs must be a positive whole number"),
        (["--epochs", "-3"], "--epochs must be a positive whole number"),
        (["--trials", "0"], "--trials must be a positive whole number"),
        (["--epochs", "ten"], "invalid int value"),
        (["--gpus-per-trial", "2", "--gpus", "1"], "more than --gpus"),
        (["--gpus-per-trial", "0.5"], "needs GPUs"),
        (["--seeds", "a,b"], "--seeds must be whole numbers"),
        (["--seeds", "5-2"], "runs backwards"),
        (["--seeds", "0-x"], "--seeds must be whole numbers or ranges"),
        (["--resume"], "--resume needs --name"),
        (["--model", "resnet"], "unknown model"),
        (["--bogus-flag"], "unrecognized arguments"),
        (["--val-labels", "gold"], "val_labels must be noisy or clean"),
        (["--val-fraction", "0.7"], "val_fraction 0.7 is out of range"),
        (["--val-fraction", "x"], "invalid float value"),
        (["--mnist1d-samples", "50"], "mnist1d_samples 50 is too small"),
        (["--s2e-options", "{init: 8"], "--s2e-options must be a JSON object"),
        (["--s2e-options", '{"init_concentration": 0.5}'], "init_concentration must be in [1"),
        (["--s2e-options", '{"seed": 1}'], "set by the run"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err
    assert err.count("\n") == 1
    assert not ray.is_initialized()


def test_config_file_keys_and_flag_precedence(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("searcher: random,tpe\nepochs: 7\nnoise-rate: 0.2\nseeds: [1, 2]\nval_labels: clean\n")
    cfg = parse_config(["--config", str(f), "--epochs", "9"])
    assert cfg.searchers == ("random", "tpe")
    assert cfg.epochs == 9 and cfg.noise_rate == 0.2 and cfg.seeds == (1, 2) and cfg.val_labels == "clean"
    # the validation setting and S2E's options from flags: a flag overrides the file, S2E's options merge
    f.write_text("extra: {s2e: {surrogate: linear, kl_per_param: 0.2}}\n")
    cfg = parse_config(
        ["--config", str(f), "--val-labels", "clean", "--val-fraction", "0.2", "--mnist1d-samples", "6250"]
        + ["--s2e-options", '{"kl_per_param": 0.05}']
    )
    assert (cfg.val_labels, cfg.val_fraction, cfg.mnist1d_samples) == ("clean", 0.2, 6250)
    assert cfg.extra == {"s2e": {"surrogate": "linear", "kl_per_param": 0.05}}
    cfg.validate()
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"searcher": "all", "trials": 3}))
    cfg = parse_config(["--config", str(j)])
    assert cfg.searchers == SEARCHERS and cfg.trials == 3


@pytest.mark.parametrize(
    "content,needle",
    [
        ("epochs: [1\n", "not valid YAML/JSON"),
        ("colour: red\n", "unknown key 'colour'"),
        ("- 1\n", "mapping"),
        # the training loop's settings are checked too: a test hook or a typo is not a setting
        ("extra: {train: {fault_nan_epoch: 2}}\n", "unknown training setting 'fault_nan_epoch'"),
        ("extra: {train: {jocor_lamda: 0.5}}\n", "unknown training setting 'jocor_lamda'"),
        ("extra: {model: x}\n", "unknown key 'model' under extra"),
    ],
)
def test_bad_config_files(tmp_path, content, needle, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    assert main(["--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_missing_config_file(capsys):
    assert main(["--config", "/nonexistent/x.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_defaults_are_an_s2e_search_on_mnist1d_sym50():
    cfg = parse_config([])
    assert cfg == ExperimentConfig()
    assert (cfg.searchers, cfg.space, cfg.method, cfg.dataset, cfg.noise, cfg.noise_rate) == (
        ("s2e",), "s2e", "coteaching", "mnist1d", "sym", 0.5)
    assert cfg.trial_gpus == 0 and cfg.budget_epochs == cfg.trials * cfg.epochs


def test_more_gpus_than_exist_stops_before_ray(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "s2e_tune.run", "--gpus", "64", "--storage", str(tmp_path), "--data-dir",
         str(tmp_path / "data"), "--trials", "1", "--epochs", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: --gpus 64") and "Traceback" not in proc.stderr
    assert not (tmp_path / "t").exists()


def test_missing_image_files_name_what_is_expected(tmp_path, capsys):
    assert main(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--storage", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "data_batch_1" in err and str(tmp_path) in err and err.count("\n") == 1


def test_unwritable_storage(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--storage", str(blocker / "sub"), "--data-dir", str(tmp_path)]) == 2
    assert "not writable" in capsys.readouterr().err


def test_resume_of_a_name_that_does_not_exist(tmp_path, capsys):
    argv = ["--resume", "--name", "never-ran", "--storage", str(tmp_path), "--data-dir", str(tmp_path / "d")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "never-ran" in err and err.count("\n") == 1
    assert not ray.is_initialized()


def test_wandb_online_without_a_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["--wandb", "online", "--storage", str(tmp_path), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "needs a W&B API key" in err and err.count("\n") == 1


def test_unreachable_address(tmp_path, data_dir, capsys):
    argv = ["--address", "127.0.0.1:1", "--storage", str(tmp_path), "--data-dir", str(data_dir),
            "--config", str(_small(tmp_path))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot join Ray cluster at 127.0.0.1:1") and err.count("\n") == 1


def _small(tmp_path):
    f = tmp_path / "small.yaml"
    f.write_text("mnist1d_samples: 1000\n")
    return f


def test_seeds_take_lists_and_ranges():
    from s2e_tune.config import parse_seeds

    assert parse_seeds("0-49") == tuple(range(50))
    assert parse_seeds("0-2,7,1") == (0, 1, 2, 7)
    assert parse_seeds([3, 4]) == (3, 4)
