"""``bench variants``: an S2E variant replayed against a replay benchmark's peers, by bench search's
own rerun, without touching the peers' files."""

from __future__ import annotations

import json

from s2e_tune.bench import search, variants


def test_a_variant_reruns_s2e_against_linked_peers(tmp_path, capsys):
    peers, out = tmp_path / "peers", tmp_path / "variants"
    assert search.main(["--quick", "--storage", str(peers), "--quiet", "--workers", "1"]) == 0
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


def test_unknown_variant_and_missing_peers_get_one_line(tmp_path, capsys):
    assert variants.main(["--peers", str(tmp_path), "--out", str(tmp_path / "o"), "--variants", "vX"]) == 2
    assert "unknown variant 'vX'" in capsys.readouterr().err
    assert variants.main(["--peers", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no replay benchmark" in capsys.readouterr().err
