"""benchmarks/forecast_competitions.py: its scoring of a subset, the rows of a failing
contender, the summary's weighting and the markdown table (no data download, no neural fit)."""

import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def script():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling ``common``
    try:
        spec = importlib.util.spec_from_file_location(
            "forecast_competitions", BENCHMARKS / "forecast_competitions.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _subset(insamples, actuals, season=1):
    return {
        "subset": "m3-other",
        "horizon": len(actuals[0]),
        "season": season,
        "ids": [f"S{i}" for i in range(len(insamples))],
        "insamples": [np.asarray(x, dtype=np.float64) for x in insamples],
        "actuals": [np.asarray(y, dtype=np.float64) for y in actuals],
    }


OPTIONS = {"threads": 1, "nf_steps": 1, "nf_input_mult": 2}


def test_naive_row_scores_as_computed_by_hand(script):
    pytest.importorskip("statsforecast")
    data = _subset(
        [[1.0, 2.0, 4.0, 7.0], [10.0, 8.0, 9.0, 9.0, 11.0], [5.0, 6.0, 7.0, 8.0]],
        [[8.0, 6.0], [11.0, 13.0], [8.0, 8.0]],
    )
    row = script.run_pair((data, "Naive", [0, 1], OPTIONS))
    assert "error" not in row, row.get("traceback")
    # the last value repeated; MASE scale = mean |x_t - x_{t-1}|: 2, 1.25, 1
    mase = [np.mean([1, 1]) / 2, np.mean([0, 2]) / 1.25, 0.0]
    smape = [np.mean([200 * 1 / 15, 200 * 1 / 13]), np.mean([0, 200 * 2 / 24]), 0.0]
    assert row["mase"] == pytest.approx(np.mean(mase))
    assert row["smape"] == pytest.approx(np.mean(smape))
    assert 0 <= row["coverage"] <= 1 and row["msis"] > 0
    assert len(row["runs"]) == 1  # deterministic: one fit whatever the seeds
    assert row["mase_std"] == 0 and row["fallbacks"] == 0
    assert row["seconds"] >= 0 and row["cpu_seconds"] >= 0 and row["first_call"] >= 0


def test_failing_contender_is_a_row_with_its_error(script, monkeypatch):
    def broken(contender, data, seed, options):
        raise RuntimeError("no panel API | yet")

    monkeypatch.setattr(script, "forecast", broken)
    data = _subset([[1.0, 2.0, 3.0, 4.0]] * 3, [[5.0, 6.0]] * 3)
    row = script.run_pair((data, "lstmkit", [0], OPTIONS))
    assert row["error"] == "RuntimeError: no panel API | yet"
    assert "mase" not in row
    text = script.table([row])
    assert "failed: RuntimeError: no panel API \\| yet" in text
    cells = re.split(r"(?<!\\)\|", text.splitlines()[2])
    assert len(cells) == 9  # 7 columns between the outer bars: the escaped bar is text


def test_nonfinite_forecasts_are_an_error_not_a_score(script):
    data = _subset([[1.0, 2.0, 3.0]] * 2, [[4.0]] * 2)
    good = [np.array([4.0])]
    fc = {"point": [np.array([np.nan]), *good], "lower": good * 2, "upper": good * 2}
    with pytest.raises(ValueError, match="NaN or infinity in 1 of 2 series"):
        script.score(data, fc)


def _row(subset, contender, series, mase, **extra):
    return {
        "subset": subset,
        "contender": contender,
        "series": series,
        "mase": mase,
        "mase_std": 0.0,
        "smape": 10.0,
        "smape_std": 0.0,
        "coverage": 0.8,
        "coverage_std": 0.0,
        "msis": 5.0,
        "msis_std": 0.0,
        "seconds": 2.0,
    } | extra


def test_summary_weights_subsets_by_their_series(script):
    rows = [
        _row("m3-yearly", "AutoETS", 3, 3.0),
        _row("m3-monthly", "AutoETS", 1, 1.0),
        {"subset": "m3-other", "contender": "AutoETS", "series": 2, "error": "E: x"},
        _row("tourism-yearly", "AutoETS", 5, 2.0),
    ]
    got = script.summary(rows)
    assert got["m3"]["AutoETS"]["mase"] == pytest.approx((3 * 3.0 + 1 * 1.0) / 4)
    assert got["m3"]["AutoETS"]["series"] == 4
    assert got["m3"]["AutoETS"]["failed"] == ["m3-other"]
    assert got["tourism"]["AutoETS"]["mase"] == 2.0


def test_table_bolds_the_best_mase_and_shows_spread_only_across_seeds(script):
    rows = [
        _row("m3-yearly", "AutoETS", 645, 3.0),
        _row("m3-yearly", "nf-NHITS", 645, 2.5, mase_std=0.1),
        _row("m3-yearly", "Naive", 645, math.inf),
    ]
    lines = script.table(rows).splitlines()
    assert lines[0].startswith("| subset | contender | MASE |")
    assert lines[2].startswith("| m3-yearly (645) | AutoETS | 3.000 | 10.00 |")
    assert "| nf-NHITS | **2.500 ± 0.100** |" in lines[3]
    assert "| Naive | inf |" in lines[4]


def test_long_frame_is_neuralforecasts_integer_layout(script):
    frame = script.long_frame([np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])])
    assert frame["unique_id"].tolist() == [0, 0, 1, 1, 1]
    assert frame["ds"].tolist() == [1, 2, 1, 2, 3]
    assert frame["y"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_carried_rows_keep_their_scores_and_say_where_they_came_from(script, tmp_path):
    earlier = {
        "command": "forecast_competitions.py --seeds 0",
        "date": "2026-12-03 10:00 UTC",
        "rows": [
            _row("m3-yearly", "nf-NHITS", 645, 2.5),
            _row("m3-yearly", "lstmkit", 645, 2.7),  # run again now: not carried
            _row("m3-other", "nf-NHITS", 174, 2.1),  # not a subset of this run
        ],
    }
    path = tmp_path / "earlier.json"
    path.write_text(script.json.dumps(earlier))
    got = script.carry(str(path), ["m3-yearly"], ["lstmkit"])
    assert [(r["subset"], r["contender"], r["mase"]) for r in got] == [
        ("m3-yearly", "nf-NHITS", 2.5)
    ]
    assert got[0]["carried_from"] == {
        "file": "earlier.json",
        "command": earlier["command"],
        "date": earlier["date"],
    }
    text = script.table([_row("m3-yearly", "lstmkit", 645, 2.6), *got])
    assert "| nf-NHITS (earlier run) | **2.500** |" in text
