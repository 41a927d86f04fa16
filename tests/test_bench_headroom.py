"""``python -m s2e_tune.bench headroom``: random search and the oracle on a landscape whose answers
are known, and the command on the shipped recording."""

from __future__ import annotations

import numpy as np
import pytest

from s2e_tune.bench import headroom as hr
from s2e_tune.replay.table import REPLAYED, ReplayTable


def table_with(residual: float, epochs: int = 3) -> ReplayTable:
    """Two recorded schedules; every repeated training lies ``residual`` above its schedule's mean."""
    keep = np.array([np.ones(epochs), np.full(epochs, 0.5)])
    metrics = np.zeros((2, epochs, len(REPLAYED)))
    residuals = np.full((4, epochs, len(REPLAYED)), residual)
    return ReplayTable(keep=keep, metrics=metrics, residuals=residuals, epochs=epochs)


def test_without_noise_random_scores_its_pick_and_the_oracle_scores_the_space_max():
    means = np.linspace(0.1, 0.5, 50)
    out = hr.headroom(table_with(0.0), means, np.ones(50), trials=10, repeats=30, rng=np.random.default_rng(0))
    assert out["random_best"] == pytest.approx(out["random_pick_mean"])
    assert out["oracle_best"] == pytest.approx(0.5) and out["space_max"] == pytest.approx(0.5)
    assert 0 < out["headroom_pick"] == pytest.approx(0.5 - out["random_best"])
    assert out["headroom_score"] == pytest.approx(out["headroom_pick"])
    assert out["noise_sd"] == 0


def test_a_residual_is_added_as_the_replay_scales_it():
    means = np.array([0.2, 0.3, 0.4])
    extra = np.array([1.0, 0.25, 0.0])  # sqrt(1 - sum w^2): 1, 0.5, 0
    y = hr.noisy(means, extra, table_with(0.04), np.random.default_rng(0))
    assert y == pytest.approx([0.24, 0.32, 0.4])
    out = hr.headroom(table_with(0.04), means, extra, trials=3, repeats=5, rng=np.random.default_rng(0))
    assert out["random_best"] == pytest.approx(0.4) and out["random_pick_mean"] == pytest.approx(0.4)
    assert out["oracle_best"] == pytest.approx(0.4)  # the best schedule is a recorded one: no noise added


def test_draws_from_the_shipped_recording_are_answers_of_its_trainings():
    df = hr.pd.read_parquet(hr.SHIPPED / hr.TABLE_FILE)
    table = ReplayTable.from_recording(df, "sym-50", 0)
    means, extra = hr.draw_means(table, "s2e-authors", 4.0, 20, np.random.default_rng(0))
    finals = table.metrics[:, -1, hr.VAL]
    assert means.shape == extra.shape == (20,)
    assert finals.min() - 1e-9 <= means.min() and means.max() <= finals.max() + 1e-9  # weighted means of them
    assert ((0 <= extra) & (extra <= 1)).all() and len(np.unique(means)) > 1


def test_the_command_writes_one_row_per_space_and_setting(tmp_path, capsys):
    out = tmp_path / "h.md"
    argv = ["--spaces", "s2e", "--settings", "sym-20,pair-45-clean", "--samples", "60", "--repeats", "5",
            "--concentrations", "1,8", "--out", str(out)]  # fmt: skip
    assert hr.main(argv) == 0
    text = out.read_text()
    assert text.startswith("```bash\npython -m s2e_tune.bench headroom --spaces s2e")
    assert text.count("| s2e   |") == 4 and "Beta(8, 8)" in text  # two tables x two settings
    assert "pair-45-clean" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--spaces", "nope"], "unknown space 'nope' in --spaces"),
        (["--settings", "sym-99"], "unknown setting 'sym-99' in --settings"),
        (["--concentrations", "0.5"], "--concentrations takes a comma list of numbers >= 1"),
        (["--concentrations", "x"], "--concentrations takes a comma list of numbers >= 1"),
        (["--samples", "10", "--trials", "40"], "need --samples >= --trials"),
        (["--table", "/nonexistent"], "no recording at /nonexistent"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert hr.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
