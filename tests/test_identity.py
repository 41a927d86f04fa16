"""An experiment is what its manifest says: reuse without --resume is refused, a --resume that would
change the experiment is refused naming every differing key, runtime flags are allowed, and the
searchers and seeds may grow (s2e_tune.identity); the same on S3."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from results.manifest import write_manifest
from results.store import Store
from s2e_tune.config import ExperimentConfig
from s2e_tune.identity import EXTENSIBLE_KEYS, IDENTITY_KEYS, RUNTIME_KEYS
from s2e_tune.run import main


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes: what 'nothing changed on disk' compares."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_every_config_key_is_in_exactly_one_group():
    keys = [f.name for f in dataclasses.fields(ExperimentConfig)]
    groups = [*IDENTITY_KEYS, *EXTENSIBLE_KEYS, *RUNTIME_KEYS]
    assert sorted(groups) == sorted(keys), set(keys) ^ set(groups)


@pytest.fixture(scope="module")
def made(tmp_path_factory, data_dir):
    """A real, finished experiment: random search, sym-20 %, 2 trials x 1 epoch."""
    root = tmp_path_factory.mktemp("identity")
    base = ["--storage", str(root), "--name", "x", "--data-dir", str(data_dir), "--wandb", "off", "--quiet"]
    first = ["--searcher", "random", "--trials", "2", "--epochs", "1", "--noise-rate", "0.2",
             "--mnist1d-samples", "1000"]  # fmt: skip
    assert main([*base, *first]) == 0
    return root, base, first


def test_reusing_a_name_without_resume_is_refused_and_changes_nothing(made, capsys):
    root, base, first = made
    before = snapshot(root / "x")
    assert main([*base, *first]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"experiment {root}/x already exists" in err and "--resume" in err
    assert snapshot(root / "x") == before


def test_a_resume_that_would_change_the_experiment_names_each_key(made, capsys):
    root, base, first = made
    before = snapshot(root / "x")
    assert main([*base, *first, "--resume", "--noise-rate", "0.5", "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would change the experiment" in err
    assert "noise_rate stored 0.2, given 0.5 (--noise-rate)" in err and "epochs stored 1, given 3 (--epochs)" in err
    assert "trials" not in err  # the same value given again is no change
    assert snapshot(root / "x") == before


def test_runtime_flags_are_allowed_and_omitted_keys_come_from_the_manifest(made, capsys):
    root, base, _ = made
    # none of the first run's flags: the stored noise rate, budget and data size are the experiment
    assert main([*base, "--resume", "--wandb", "off", "--cpus-per-trial", "1"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((root / "x" / "manifest.json").read_text())
    cfg = manifest["config"]
    assert (cfg["noise_rate"], cfg["epochs"], cfg["trials"], cfg["mnist1d_samples"]) == (0.2, 1, 2, 1000)
    assert cfg["searchers"] == ["random"] and len(manifest["resumed_at"]) == 1
    assert "random" in out  # the summary of the stored searches
    assert not (root / "x" / "lock.json").exists()  # released at the end


def test_a_resume_may_add_a_searcher(made):
    root, base, _ = made
    assert main([*base, "--resume", "--searcher", "default"]) == 0
    manifest = json.loads((root / "x" / "manifest.json").read_text())
    assert manifest["config"]["searchers"] == ["random", "default"] and manifest["config"]["noise_rate"] == 0.2
    assert (root / "x" / "searches" / "default-seed0.done").exists()


def test_the_same_on_s3(s3_server, capsys):
    """Refusals happen before Ray starts, from the manifest alone: one written to the S3 server."""
    cfg = ExperimentConfig(storage="s3://s2e-results/ident", name="y", noise_rate=0.2, epochs=1, trials=2)
    store = Store.from_uri("s3://s2e-results/ident/y")
    write_manifest(store, cfg.to_dict(), {})
    before = sorted(i.path for i in store.fs.get_file_info(pafs.FileSelector(store.root)))
    argv = ["--storage", "s3://s2e-results/ident", "--name", "y", "--wandb", "off"]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--resume", "--epochs", "2"]) == 2
    assert "epochs stored 1, given 2 (--epochs)" in capsys.readouterr().err
    after = sorted(i.path for i in store.fs.get_file_info(pafs.FileSelector(store.root)))
    assert after == before
