"""The README's "S2E in your own Ray Tune script" example runs as printed (taken from the README,
so the two cannot drift), and the package-level names it imports are the documented ones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## S2E in your own Ray Tune script"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README lost its section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    assert len(blocks) == 1, f"expected one python block in {SECTION!r}, found {len(blocks)}"
    return blocks[0]


def test_the_example_uses_the_package_level_api():
    code = readme_example()
    assert "from searchers import S2ESearcher, tune_space" in code
    assert "from trainables import NoisyLabelTrainable, prepare_data" in code


def test_package_level_names_are_the_real_objects():
    import searchers
    import trainables
    from noisylabels.data import prepare_data
    from noisylabels.spaces import tune_space
    from searchers.s2e_search import S2ESearcher
    from trainables.trainable import NoisyLabelTrainable

    assert searchers.S2ESearcher is S2ESearcher and searchers.tune_space is tune_space
    assert trainables.NoisyLabelTrainable is NoisyLabelTrainable and trainables.prepare_data is prepare_data
    with pytest.raises(AttributeError):
        trainables.NoSuchThing  # noqa: B018


def test_prepare_data_names_a_bad_keyword():
    from noisylabels.errors import UserError
    from trainables import prepare_data

    with pytest.raises(UserError, match="unknown argument.*noise_rat\\b"):
        prepare_data(noise_rat=0.5)
    with pytest.raises(UserError, match="val_fraction"):
        prepare_data(val_fraction=0.7)


@pytest.mark.slow  # a real Tune run: about a minute on the 2-core VM
def test_readme_example_runs_verbatim(tmp_path):
    """The example trains 6 real trials under S2E and ASHA; the test reads Tune's experiment back:
    six trials, S2E's suggestions within the space, no trial past 6 epochs, and the printed best
    is the best final val_acc among them."""
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AIR_NEW_OUTPUT": "0"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("best R(t):", "val_acc "))]
    assert len(lines) == 2, proc.stdout[-2000:]
    best_val = float(re.search(r"val_acc (\d\.\d+)", lines[1]).group(1))

    exp = tmp_path / "ray_results" / "s2e-own-tuner"
    results = [p for p in exp.glob("*/result.json") if p.stat().st_size > 0]
    assert len(results) == 6, sorted(p.parent.name for p in exp.iterdir())
    finals = []
    for path in results:
        rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        cfg = rows[-1]["config"]
        assert 0.0 <= cfg["tau"] <= 0.9 and 0.25 <= cfg["c"] <= 4.0 and 1.0 <= cfg["t_k"] <= 100.0
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) <= 6
        finals.append(rows[-1]["val_acc"])
    assert best_val == pytest.approx(max(finals), abs=5e-5)
