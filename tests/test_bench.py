"""`vapipe bench`: the figures are measured, consistent and sane (not timed: ratios only)."""

from __future__ import annotations

import json

import pytest
from conftest import SSD, run_cli


@pytest.mark.parametrize("with_sources", [True, False])
def test_bench_reports_consistent_figures(media, with_sources):
    sources = [media["car30"], media["bottle45"]] if with_sources else []
    proc = run_cli("bench", *sources, "--model", SSD, "--streams", "3", "--seconds", "1.5",
                   "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["streams"] == 3 and report["nireq"] >= 1
    for key in ("inference_fps", "decode_fps", "e2e_fps", "peak_rss_mb"):
        assert report[key] > 0, key
    assert report["combined_limit_fps"] < min(report["inference_fps"], report["decode_fps"])
    assert report["e2e_frames"] == report["e2e_decoded"] > 0, "no frame may be lost"
    # the ratios are the figures' own (no bound on them: a machine's speed and load set them)
    ratio = report["e2e_fps"] / report["inference_fps"]
    assert report["ratio_e2e_over_inference"] == pytest.approx(ratio, abs=0.002)
    ratio = report["e2e_fps"] / report["combined_limit_fps"]
    assert report["ratio_e2e_over_combined_limit"] == pytest.approx(ratio, abs=0.002)
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"]


def test_bench_prints_a_table_with_both_ratios(media):
    proc = run_cli("bench", media["car30"], "--model", SSD, "--streams", "2", "--seconds", "1")
    assert proc.returncode == 0, proc.stderr
    assert "ratio e2e / inference only" in proc.stdout
    assert "ratio e2e / combined limit" in proc.stdout


def test_bench_rounds_alternate_the_phases_and_report_medians(media):
    proc = run_cli("bench", media["car30"], "--model", SSD, "--streams", "2", "--seconds", "1",
                   "--rounds", "3", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rounds = report["rounds"]
    assert len(rounds) == 3
    assert report["e2e_fps"] == sorted(r["e2e_fps"] for r in rounds)[1]
    assert report["inference_fps"] == sorted(r["inference_fps"] for r in rounds)[1]
    for r in rounds:  # each round's ratio is its own e2e over its own combined limit
        combined = 1.0 / (1.0 / r["inference_fps"] + 1.0 / report["decode_fps"])
        assert r["e2e_over_combined"] == pytest.approx(r["e2e_fps"] / combined, abs=0.002)
    assert report["e2e_frames"] == report["e2e_decoded"] > 0
