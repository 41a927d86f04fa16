"""``bench variants``: an S2E variant replayed against a replay benchmark's peers, by bench search's
own rerun, without touching the peers' files."""

from __future__ import annotations

import json

import pytest

from s2e_tune.bench import search
from s2e_tune.bench.search import variants


@pytest.fixture(scope="module")
def quick_peers(tmp_path_factory):
    """A replayed quick benchmark (S2E and random, sym-50, seeds 0 and 1, 8 trials)."""
    peers = tmp_path_factory.mktemp("peers") / "bench"
    summary = peers.parent / "summary.json"
    argv = ["--quick", "--storage", str(peers), "--quiet", "--workers", "1", "--summary-json", str(summary)]
    assert search.main(argv) == 0
    return peers, json.loads(summary.read_text())


def test_a_variant_reruns_s2e_against_linked_peers(quick_peers, tmp_path, capsys):
    peers, _ = quick_peers
    out = tmp_path / "variants"
    before = {p: p.read_bytes() for p in peers.rglob("*") if p.is_file()}
    argv = ["--peers", str(peers), "--out", str(out), "--variants", "v3-centre4", "--seeds", "0,1"]
    assert variants.main([*argv, "--settings", "sym-50", "--workers", "1"]) == 0
    assert {p: p.read_bytes() for p in peers.rglob("*") if p.is_file()} == before  # peers untouched
    js = json.loads((out / "v3-centre4" / "summary.json").read_text())
    assert set(js["settings"]["sym-50"]) == {"s2e", "random"} and js["seeds"] == [0, 1]
    manifest = json.loads((out / "v3-centre4" / "sym-50" / "manifest.json").read_text())
    options = variants.VARIANTS["v3-centre4"][0]
    assert manifest["config"]["extra"] == {"s2e": options}  # the variant, recorded
    assert manifest["reruns"][0]["changed"]["extra"]["to"] == {"s2e": options}
    # the random searches are the peers' own (the same files), S2E's are new
    mine = out / "v3-centre4" / "sym-50"
    for searcher, same in (("random", True), ("s2e", False)):
        old = sorted((peers / "sym-50" / "epochs" / f"searcher={searcher}").rglob("*.parquet"))
        new = sorted((mine / "epochs" / f"searcher={searcher}").rglob("*.parquet"))
        assert len(old) == len(new) == 2
        assert all((a.stat().st_ino == b.stat().st_ino) == same for a, b in zip(old, new, strict=True))
    md = (out / "variants.md").read_text()
    assert "| v3-centre4" in md and "Beta(4, 4)" in md and md in capsys.readouterr().out
    # done variants are not run again
    assert variants.main([*argv, "--settings", "sym-50", "--workers", "1"]) == 0


def test_screening_reproduces_bench_search_for_s2e(quick_peers, tmp_path):
    """The in-process screen of S2E's defaults gives bench search's own S2E numbers, to every digit,
    and another variant gives other numbers (the screen does pass the options on)."""
    peers, official = quick_peers
    argv = ["--peers", str(peers), "--out", str(tmp_path), "--seeds", "0,1", "--settings", "sym-50", "--screen"]
    assert variants.main([*argv, "--variants", "v0-before,v9-centre8", "--workers", "1"]) == 0
    before = json.loads((tmp_path / "v0-before" / "screen.json").read_text())["settings"]["sym-50"]
    want = official["settings"]["sym-50"]
    for name in ("s2e", "random"):
        assert before[name]["best_val_mean"] == want[name]["best_val_mean"]
    assert before["s2e"]["diff_vs_random_mean"] == pytest.approx(want["s2e"]["diff_vs_random_mean"], abs=1e-15)
    assert before["s2e"]["mean_rank"] == want["s2e"]["mean_rank"]
    centred = json.loads((tmp_path / "v9-centre8" / "screen.json").read_text())["settings"]["sym-50"]
    assert centred["s2e"]["best_val_mean"] != before["s2e"]["best_val_mean"]
    assert "| v9-centre8" in (tmp_path / "variants.md").read_text()


def test_unknown_variant_and_missing_peers_get_one_line(tmp_path, capsys):
    assert variants.main(["--peers", str(tmp_path), "--out", str(tmp_path / "o"), "--variants", "vX"]) == 2
    assert "unknown variant 'vX'" in capsys.readouterr().err
    assert variants.main(["--peers", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no replay benchmark" in capsys.readouterr().err
