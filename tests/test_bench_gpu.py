"""``bench gpu`` runs its whole path on the CPU (the GPU numbers are BENCHMARKS.md's) and needs no Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s2e_tune.bench import gpu

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_smoke_writes_every_section(tmp_path, data_dir):
    argv = ["--device", "cpu", "--workloads", "mnist1d-mlp", "--samples", "600", "--repeats", "1",
            "--concurrency", "1,2", "--concurrent-epochs", "1", "--data-dir", str(data_dir),
            "--out", str(tmp_path)]  # fmt: skip
    assert gpu.main(argv) == 0
    res = json.loads((tmp_path / "gpu.json").read_text())
    w = res["workloads"]["mnist1d-mlp"]
    assert set(w["runners"]) == {"coteaching", "standard", "reference"}
    assert all(v["epochs_per_s"] > 0 and v["peak_mib"] is None for v in w["runners"].values())
    assert [c["k"] for c in w["concurrent"]] == [1, 2] and all(c["epochs_per_s"] > 0 for c in w["concurrent"])
    med, lo, hi = w["coteaching_over_standard"]
    assert lo <= med <= hi
    md = (tmp_path / "gpu.md").read_text()
    assert "| mnist1d-mlp | coteaching |" in md and "| mnist1d-mlp | 2 |" in md


def test_the_module_imports_without_ray():
    code = "import sys; sys.modules['ray'] = None; import s2e_tune.bench.gpu; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--workloads", "cifar"], "unknown workload(s) cifar"),
        (["--device", "cpu", "--epochs", "0"], "--epochs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    assert gpu.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_no_gpu_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(gpu.torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--device", "cuda"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
