"""The HTML report: self-contained, escapes what users supply, and renders in headless
Chromium with no console errors and a screenshot that is not blank."""

import csv
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from lstmkit.cli import main
from lstmkit.report import figures
from lstmkit.report.html import Report

CHROMIUM = shutil.which("chromium")
HOSTILE = '<script>alert("x")</script>&"\'<img src=x onerror=alert(1)>'
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def test_user_strings_are_escaped_and_nothing_is_fetched():
    png = figures.residuals(np.array([1.0, 2.0]), np.array([1.5, 1.0]))
    page = (
        Report(f"run {HOSTILE}")
        .text(HOSTILE, HOSTILE)
        .table("t", [HOSTILE], [[HOSTILE]])
        .metrics("m", {HOSTILE: {"rmse": 1.0}})
        .figure(HOSTILE, png, caption=HOSTILE)
        .render()
    )
    assert "<script" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 6
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # only data: URIs
    assert page.count('src="data:image/png;base64,') == 1


def _chromium(tmp_path, url, screenshot):
    result = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1000,1600",
            f"--screenshot={screenshot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_cli_report_renders_in_headless_chromium(tmp_path, capsys):
    csv = tmp_path / "sales.csv"
    rng = np.random.default_rng(0)
    values = 100 + 10 * np.sin(np.arange(80) / 3) + rng.normal(size=80)
    column = "sales <b>&</b>"
    csv.write_text(f'month,"{column}"\n' + "".join(f"m{t},{v}\n" for t, v in enumerate(values)))
    out = tmp_path / "run"
    code = main(
        [
            "forecast",
            "--data",
            str(csv),
            "--target",
            column,
            "--horizon",
            "6",
            "--lookback",
            "12",
            "--epochs",
            "3",
            "--hidden-size",
            "8",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["run_dir"] == str(out)
    page = (out / "report.html").read_text()
    assert "sales &lt;b&gt;&amp;&lt;/b&gt;" in page and column not in page
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, (out / "report.html").as_uri(), shot)
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape == (1600, 1000)
    assert image.std() > 20  # text, tables and plots: far from a blank page
    assert (image < 128).mean() > 0.01  # dark pixels (text, lines) are there


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    """OWASP's CSV-injection rule: text starting with = + - @ tab CR gets an apostrophe;
    numbers (also negative ones, and numbers as text) stay as they are."""
    from lstmkit.report.rundir import RunDir

    run = RunDir.create(tmp_path / "run", "test")
    rows = [
        ('=HYPERLINK("http://x","y")', -1.5, "-2.5"),
        ("+1+cmd", "@SUM(A1)", "\tx"),
        ("plain", 3, "a=b"),
    ]
    run.write_csv("p.csv", ("=label", "value", "text"), rows)
    with open(tmp_path / "run" / "p.csv", newline="") as f:
        got = list(csv.reader(f))
    assert got == [
        ["'=label", "value", "text"],
        ['\'=HYPERLINK("http://x","y")', "-1.5", "-2.5"],
        ["'+1+cmd", "'@SUM(A1)", "'\tx"],
        ["plain", "3", "a=b"],
    ]
