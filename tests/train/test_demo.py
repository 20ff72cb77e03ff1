"""`crosskd demo` runs offline end to end and says where it wrote everything."""

from __future__ import annotations

import json

from crosskd.cli import main


def test_demo_trains_both_variants_and_writes_table_and_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1", "--videos", "40"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"CE+", "CE+ + caption KD"}
    assert results["CE+"]["protocol"]["split"] == "full-test"
    assert (out / "demo.png").stat().st_size > 1000
    assert "| CE+ + caption KD |" in printed and "protocol: MSRVTT full-test split" in printed
    assert str(out / "demo.png") in printed
    assert len(list((out / "runs").iterdir())) == 2
