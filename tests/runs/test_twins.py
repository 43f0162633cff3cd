"""lstmkit.runs: every CLI command has a one-call Python twin that gives the same run
directory — metrics.json, predictions.csv, config.toml — for the same options and seed (the
oracle is the command itself), and the runs' defaults are the CLI's."""

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import forecast_rows

from lstmkit import runs
from lstmkit.cli import cli, main

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "timeseries"
TINY = {"epochs": 2, "hidden_size": 8}


def cli_args(command: str, options: dict) -> list[str]:
    """The command line that gives ``options`` (named as in config.toml)."""
    params = {p.name: p for p in cli.commands[command].params}
    args = [command]
    for name, value in options.items():
        param = params[name]
        if isinstance(value, bool):
            flags = param.opts if value else param.secondary_opts
            args += flags[:1] if flags or value else []
        else:
            args += [param.opts[0], str(value)]
    return args


def metrics_without_timings(path: Path) -> dict:
    """metrics.json without wall-clock seconds (they differ between any two runs)."""
    metrics = json.loads((path / "metrics.json").read_text("utf-8"))
    return {row: {k: v for k, v in m.items() if "seconds" not in k} for row, m in metrics.items()}


def assert_twins(tmp_path, capsys, command: str, options: dict) -> runs.RunResult:
    by_cli, by_python = tmp_path / f"{command}-cli", tmp_path / f"{command}-python"
    code = main([*cli_args(command, options), "--out", str(by_cli), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 0, err
    result = getattr(runs, command)(**options, out=by_python, quiet=True)
    assert result.path == by_python
    assert (by_python / "config.toml").read_text() == (by_cli / "config.toml").read_text()
    for name in ("predictions.csv", "poems.txt", "comparison.md"):
        if (by_cli / name).exists() or (by_python / name).exists():
            if name == "comparison.md":  # its table has a seconds column
                continue
            assert (by_python / name).read_text() == (by_cli / name).read_text(), name
    if (by_cli / "metrics.json").exists():
        assert metrics_without_timings(by_python) == metrics_without_timings(by_cli)
        assert json.loads(json.dumps(result.metrics)) == json.loads(
            (by_python / "metrics.json").read_text()
        )
    assert sorted(p.name for p in by_python.iterdir()) == sorted(p.name for p in by_cli.iterdir())
    return result


@pytest.fixture(scope="module")
def npz_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("npz")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 7, 2))
    running = np.cumsum(X[:, :, 0], axis=1)
    for name, part in (("train", slice(0, 28)), ("test", slice(28, 40))):
        np.savez(folder / f"last_{name}.npz", X=X[part], y=running[part, -1])
        np.savez(folder / f"tag_{name}.npz", X=X[part], y=np.where(X[part, :, 1] > 0, "up", "down"))
    return folder


def test_forecast_one_series(tmp_path, capsys):
    result = assert_twins(tmp_path, capsys, "forecast", {"data": "airline", "horizon": 6, **TINY})
    assert list(result.metrics) == forecast_rows()
    frame = result.predictions.frame()
    assert list(frame.columns) == ["time", "target", "actual", "predicted"] and len(frame) == 6
    np.testing.assert_allclose(frame["predicted"], result.model.predict(6))
    assert result.predictions.column("predicted") == frame["predicted"].tolist()


def test_forecast_panel_of_one_with_quantiles(tmp_path, capsys):
    options = {"data": "airline", "horizon": 6, "quantiles": "0.1,0.5,0.9", **TINY}
    result = assert_twins(tmp_path, capsys, "forecast", options)
    assert {"coverage", "crps"} <= set(result.metrics["model"])


@pytest.mark.parametrize(
    ("command", "stem", "extra"),
    [("regress", "last", {}), ("tag", "tag", {"bidirectional": False})],
)
def test_regress_and_tag(tmp_path, capsys, npz_files, command, stem, extra):
    options = {
        "train_path": str(npz_files / f"{stem}_train.npz"),
        "test_path": str(npz_files / f"{stem}_test.npz"),
        **TINY,
        **extra,
    }
    assert_twins(tmp_path, capsys, command, options)


def test_classify_then_predict_evaluate_explain_with_its_model(tmp_path, capsys):
    result = assert_twins(
        tmp_path, capsys, "classify", {"train_path": "italy_power_demand", **TINY}
    )
    assert result.metrics["model"]["accuracy"] > result.metrics["majority"]["accuracy"]
    model_dir = str(tmp_path / "classify-cli")
    test_file = str(DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TEST.ts")
    predicted = assert_twins(
        tmp_path, capsys, "predict", {"model_dir": model_dir, "data": test_file}
    )
    assert predicted.predictions.rows[0][1] == predicted.payload["predictions"][0]
    assert_twins(tmp_path, capsys, "evaluate", {"model_dir": model_dir, "data": test_file})
    explained = assert_twins(
        tmp_path, capsys, "explain", {"model_dir": model_dir, "data": test_file, "sample": 3}
    )
    gates_cli = np.load(tmp_path / "explain-cli" / "gates.npz")
    gates_python = np.load(tmp_path / "explain-python" / "gates.npz")
    assert set(gates_cli) == set(gates_python) and set(explained.payload["gates"]) == set(gates_cli)
    for name in gates_cli:
        np.testing.assert_array_equal(gates_python[name], gates_cli[name])


def test_generate(tmp_path, capsys):
    corpus = tmp_path / "poems.txt"
    corpus.write_text("白日依山盡，黃河入海流。\n春眠不覺曉，處處聞啼鳥。\n" * 20, "utf-8")
    options = {"corpus": str(corpus), "epochs": 2, "n_poems": 2, "acrostic": "白春"}
    result = assert_twins(tmp_path, capsys, "generate", options)
    assert (
        result.payload["poems"]
        == (tmp_path / "generate-cli" / "poems.txt").read_text("utf-8").splitlines()
    )


@pytest.mark.parametrize("command", ["tune", "compare"])
def test_tune_and_compare(tmp_path, capsys, command):
    options = {"data": "airline", "horizon": 6, "epochs": 2, "whales": 2, "iterations": 1}
    if command == "compare":
        options["seeds"] = "0"
    assert_twins(tmp_path, capsys, command, options)


def test_runs_defaults_are_the_commands_defaults():
    """Every option of every twin has the default the CLI resolves when it is not given,
    and no option is missing on either side."""
    output = {"config", "out", "json_output", "quiet", "resume"}
    for command, defaults in runs.DEFAULTS.items():
        required = {k: "." for k, v in defaults.items() if v is runs.common.REQUIRED}
        ctx = cli.commands[command].make_context(command, cli_args(command, required)[1:])
        given = {k: v for k, v in ctx.params.items() if k not in output}
        assert given == {**defaults, **required}, command


def test_a_run_in_memory_writes_nothing_until_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = []
    result = runs.forecast(
        data="airline", horizon=6, **TINY, out=False, quiet=True, say=lines.append
    )
    assert list(tmp_path.iterdir()) == [] and result.path is None
    assert lines == result.lines and lines[0] == "forecast: Passengers, last 6 steps held out"
    written = result.write(tmp_path / "later")
    assert (written / "metrics.json").is_file() and (written / "model" / "config.json").is_file()
    assert json.loads(result.to_json())["run_dir"] == str(written)


def test_unknown_and_missing_options_are_type_errors():
    with pytest.raises(TypeError, match="unknown option 'horizn'; expected some of data"):
        runs.forecast(data="airline", horizn=6, out=False)
    with pytest.raises(TypeError, match="expected the option 'data', got none"):
        runs.forecast(out=False)


def test_demo(tmp_path, capsys):
    """The main job is a sequence of runs: the same metrics, predictions and figures."""
    result = assert_twins(tmp_path, capsys, "demo", {"quick": True})
    for name, png in result.figures.items():
        assert (tmp_path / "demo-cli" / name).read_bytes() == png, name
    assert set(result.models) == {"forecaster", "classifier"}


@pytest.mark.parametrize("extra", [{}, {"quantiles": "0.1,0.5,0.9"}], ids=["one", "panel"])
def test_forecast_forecasts_once(monkeypatch, extra):
    """The run shows the forecasts its metrics scored: the model forecasts once (a spy on
    Forecaster.predict / panel_quantiles), and the drawn report adds none."""
    from lstmkit.tasks import Forecaster

    calls = []
    for name in ("predict", "panel_quantiles"):
        method = getattr(Forecaster, name)

        def spy(self, *args, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(Forecaster, name, spy)
    result = runs.forecast(data="airline", horizon=6, **TINY, **extra, out=False, quiet=True)
    assert len(calls) == 1
    assert result.report is not None  # drawn on first read
    assert len(calls) == 1
