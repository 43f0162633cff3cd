"""The command line: exit codes (0 / 2 with one line, no traceback / 1), the run directory's
contract (config.toml re-usable with --config, metrics.json keys, predictions.csv, model/),
--json, --quiet, and that a saved model predicts what the library predicts."""

import csv
import inspect
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from helpers import forecast_rows

from lstmkit.cli import main
from lstmkit.data import load_dataset
from lstmkit.tasks import Forecaster, SequenceClassifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "timeseries"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_run_directory_contract(tmp_path, capsys):
    out = tmp_path / "air"
    code, text, err = run(
        capsys,
        "forecast",
        "--data",
        "airline",
        "--horizon",
        6,
        "--epochs",
        3,
        "--hidden-size",
        8,
        "--out",
        out,
    )
    assert code == 0, err
    assert f"run directory: {out}" in text and "seasonal_naive" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == forecast_rows()
    assert {"rmse", "mae", "mape", "r2"} <= set(metrics["model"])
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert [r["time"] for r in rows] == [f"1960-{m:02d}" for m in range(7, 13)]
    passengers = load_dataset("airline").column("Passengers")
    assert [float(r["actual"]) for r in rows] == passengers[-6:].tolist()
    # the saved model is the library's: same predictions as loading it in Python
    model = Forecaster.load(out / "model")
    np.testing.assert_allclose([float(r["predicted"]) for r in rows], model.predict(6))
    assert (out / "log.txt").read_text().startswith("forecast: Passengers")
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["horizon"] == 6 and config["hidden_size"] == 8 and config["data"] == "airline"


def test_config_file_then_flags_override(tmp_path, capsys):
    (tmp_path / "run.toml").write_text("epochs = 2\nhidden-size = 4\nlayers = 2\nhorizon = 3\n")
    code, _, err = run(
        capsys,
        "forecast",
        "--data",
        "airline",
        "--config",
        tmp_path / "run.toml",
        "--horizon",
        4,
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert code == 0, err
    config = tomllib.loads((tmp_path / "r" / "config.toml").read_text())
    assert (config["epochs"], config["hidden_size"], config["num_layers"]) == (2, 4, 2)
    assert config["horizon"] == 4  # the flag wins
    # the saved config runs again as is
    code, _, err = run(
        capsys,
        "forecast",
        "--config",
        tmp_path / "r" / "config.toml",
        "--out",
        tmp_path / "r2",
        "--quiet",
    )
    assert code == 0, err
    assert (tmp_path / "r2" / "config.toml").read_text() == (
        tmp_path / "r" / "config.toml"
    ).read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "--data", "missing.csv"], "lstmkit: error: [Errno 2] No such file"),
        (["forecast", "--data", "airline", "--target", "Nope"], "unknown column 'Nope'"),
        (["forecast", "--data", "airline", "--horizon", "0"], "'--horizon': expected 1 ≤ n ≤"),
        (["forecast", "--data", "airline", "--test", "500"], "--test: expected fewer steps"),
        (
            ["forecast", "--data", "airline", "--horizon", "500"],
            "--horizon (the test split's default): expected fewer steps than the series has",
        ),
        (["classify", "--train", "a.csv", "--test", "b.csv"], "expected a .ts or .npz file"),
        (["predict", "--model", "."], "expected a saved lstmkit model"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_bad_csv_cell_names_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,x\n")
    code, _, err = run(capsys, "forecast", "--data", bad, "--target", "a")
    assert code == 2
    assert err.strip() == f"lstmkit: error: {bad}, line 3, column 'b': expected a number, got 'x'"


def test_unknown_config_key(tmp_path, capsys):
    (tmp_path / "b.toml").write_text("bogus = 1\n")
    code, _, err = run(capsys, "forecast", "--data", "airline", "--config", tmp_path / "b.toml")
    assert code == 2 and "unknown key 'bogus'" in err


BIG = "9" * 23  # past 64 bits


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dropout", "nan"], "'--dropout': expected a finite number, got nan"),
        (["--dropout", "1"], "'--dropout': expected a number in [0, 1), got 1.0"),
        (["--forget-bias", "1e308"], "'--forget-bias': expected a number in [-100, 100]"),
        (["--forget-bias", "inf"], "'--forget-bias': expected a finite number, got inf"),
        (["--lr", "1e300"], "'--lr': expected a number in (0, 10]"),
        (["--epochs", BIG], f"'--epochs': expected 1 ≤ n ≤ 1000000, got '{BIG}'"),
        (["--hidden-size", BIG], "'--hidden-size': expected 1 ≤ n ≤ 2147483647"),
        (["--seed", BIG], "'--seed': expected 0 ≤ n ≤ 4294967295"),
        (["--seed", "-1"], "'--seed': expected 0 ≤ n ≤ 4294967295, got -1"),
        (["--epochs", "2.7"], "'--epochs': expected an integer, got '2.7'"),
    ],
)
def test_out_of_range_and_non_finite_options_exit_2_before_any_work(
    tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "forecast", "--data", "airline", *args, "--out", "r")
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("temperature", ["1e-300", "1e300", "inf", "nan", "0", "-1"])
def test_generate_temperature_must_be_a_finite_number_in_range(tmp_path, capsys, temperature):
    code, _, err = run(capsys, "generate", "--corpus", "tang300", "--temperature", temperature)
    assert code == 2 and "'--temperature': expected a" in err, err


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("epochs = 2.7", "'--epochs': expected an integer, got 2.7"),
        ("epochs = true", "'--epochs': expected an integer, got True"),
        ("hidden_size = [1, 2]", "hidden_size: expected a single value, got an array"),
        ("lr = 'abc'", "'--lr': expected a number, got 'abc'"),
        ("lr = nan", "'--lr': expected a finite number, got nan"),
        ("bidirectional = 'yes'", "bidirectional: expected true or false, got 'yes'"),
        ("target = 3", "target: expected a string, got 3"),
        ("hidden_size = {a = 1}", "hidden_size: expected a single value, got a table"),
        ("a = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("epochs = ", "expected a readable TOML file"),
    ],
)
def test_config_values_are_parsed_strictly(tmp_path, capsys, toml, message):
    (tmp_path / "c.toml").write_text(toml + "\n")
    args = ("forecast", "--data", "airline", "--config", tmp_path / "c.toml", "--out", "r")
    code, out, err = run(capsys, *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out


def test_internal_error_exits_1_and_debug_shows_it(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("lstmkit.cli.list_datasets", broken)
    code, _, err = run(capsys, "datasets")
    assert code == 1 and "internal error: RuntimeError: boom" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "datasets"])


def test_datasets_json(capsys):
    code, out, _ = run(capsys, "datasets", "--json")
    assert code == 0
    assert [d["name"] for d in json.loads(out)] == [
        "airline",
        "italy_power_demand",
        "tang300",
        "negation",
    ]


def test_classify_builtin_then_predict_and_evaluate_with_the_saved_model(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "classify",
        "--train",
        "italy_power_demand",
        "--epochs",
        3,
        "--hidden-size",
        8,
        "--out",
        tmp_path / "c",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result["metrics"]) == {"model", "majority", "minirocket", "dtw_1nn"}
    assert {"accuracy", "precision", "recall", "f1"} <= set(result["metrics"]["model"])
    data = load_dataset("italy_power_demand")
    model = SequenceClassifier.load(tmp_path / "c" / "model")
    expected = model.evaluate(data.X_test, data.y_test, baselines=False)["model"]
    for key in ("accuracy", "precision", "recall", "f1", "f1_weighted"):
        assert result["metrics"]["model"][key] == pytest.approx(expected[key])
    assert result["metrics"]["model"]["confusion_matrix"] == expected["confusion_matrix"]
    # majority-class baseline by hand
    majority = max(set(data.y_train), key=list(data.y_train).count)
    assert result["metrics"]["majority"]["accuracy"] == pytest.approx(
        np.mean(data.y_test == majority)
    )
    test_file = DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TEST.ts"
    if test_file.exists():
        code, _, err = run(
            capsys,
            "predict",
            "--model",
            tmp_path / "c",
            "--data",
            test_file,
            "--out",
            tmp_path / "p",
            "--quiet",
        )
        assert code == 0, err
        rows = list(csv.DictReader((tmp_path / "p" / "predictions.csv").open()))
        assert [r["predicted"] for r in rows] == model.predict(data.X_test).tolist()
        code, _, err = run(capsys, "predict", "--model", tmp_path / "c", "--steps", 5)
        assert code == 2 and "--steps: for a Forecaster; a SequenceClassifier predicts" in err
        code, out, err = run(
            capsys,
            "evaluate",
            "--model",
            tmp_path / "c" / "model",
            "--data",
            test_file,
            "--out",
            tmp_path / "e",
            "--json",
        )
        assert code == 0, err
        assert json.loads(out)["metrics"]["model"]["accuracy"] == pytest.approx(
            result["metrics"]["model"]["accuracy"]
        )
        assert list(json.loads(out)["metrics"]) == ["model"]  # no training data given
        train_file = DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TRAIN.ts"
        code, out, err = run(
            capsys,
            "evaluate",
            "--model",
            tmp_path / "c" / "model",
            "--data",
            test_file,
            "--train",
            train_file,
            "--out",
            tmp_path / "e2",
            "--json",
        )
        assert code == 0, err
        rows = json.loads(out)["metrics"]
        for name in ("majority", "minirocket", "dtw_1nn"):  # the training run's rows again
            assert rows[name]["accuracy"] == pytest.approx(result["metrics"][name]["accuracy"])


def test_generate_acrostic_with_a_tiny_model(tmp_path, capsys):
    corpus = tmp_path / "poems.txt"
    corpus.write_text("白日依山盡，黃河入海流。\n春眠不覺曉，處處聞啼鳥。\n" * 20, "utf-8")
    code, out, err = run(
        capsys,
        "generate",
        "--corpus",
        corpus,
        "--epochs",
        2,
        "--poems",
        2,
        "--acrostic",
        "白春",
        "--out",
        tmp_path / "g",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert len(result["poems"]) == 2
    assert all(p.startswith("白") and "春" in p for p in result["poems"])
    assert set(result["metrics"]) == {"model", "unigram"}
    assert (tmp_path / "g" / "poems.txt").read_text("utf-8").splitlines() == result["poems"]
    page = (tmp_path / "g" / "report.html").read_text("utf-8")
    assert all(p in page for p in result["poems"]) and "learning_curves" not in page
    assert (tmp_path / "g" / "learning_curves.png").is_file()


def test_demo_command_writes_the_whole_run(tmp_path, capsys):
    """The main job with tiny budgets: every part ran and landed in the run directory."""
    code, out, err = run(capsys, "demo", "--quick", "--out", tmp_path / "d")
    assert code == 0, err
    assert "engine check" in out and "WOA-BiLSTM" in out and f"report: {tmp_path / 'd'}" in out
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    # the forecast's line names every baseline it was scored beside, the strongest first
    line = next(x for x in out.splitlines() if x.startswith("BiLSTM forecaster"))
    named = [n for n in forecast_rows() if n not in ("model", "mean")]
    listed_part = line[line.index("(") :]  # "(AutoARIMA 23.9, …, naive 103.0)"
    labels = [item.rsplit(" ", 1)[0] for item in listed_part.strip("()").split(", ")]
    shown_order = [n for label in labels for n in named if n.replace("_", " ") == label]
    assert len(shown_order) == len(named)
    assert shown_order == sorted(named, key=lambda n: metrics[n]["rmse"])
    assert {"BiLSTM", "WOA-BiLSTM", "LSTM", "GRU", "naive", "seasonal_naive", "mean"} <= set(
        metrics
    )
    assert {"classifier", "classifier majority", "classifier minirocket"} <= set(metrics)
    data = load_dataset("italy_power_demand")
    majority = max(set(data.y_train), key=list(data.y_train).count)
    assert metrics["classifier majority"]["accuracy"] == pytest.approx(
        np.mean(data.y_test == majority)
    )
    passengers = load_dataset("airline").column("Passengers")
    snaive = passengers[-24:-12]
    assert metrics["seasonal_naive"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((passengers[-12:] - snaive) ** 2)))
    )
    files = {p.name for p in (tmp_path / "d").iterdir()}
    assert {"report.html", "convergence.png", "forecast.png", "classifier_confusion.png"} <= files
    assert Forecaster.load(tmp_path / "d" / "forecaster").predict(12).shape == (12,)


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes_the_run(tmp_path, capsys, monkeypatch):
    import lstmkit.train.loop as loop

    args = [
        "forecast",
        "--data",
        "airline",
        "--horizon",
        3,
        "--epochs",
        5,
        "--patience",
        50,
        "--hidden-size",
        6,
        "--quiet",
    ]
    code, _, err = run(capsys, *args, "--out", tmp_path / "whole")
    assert code == 0, err
    save = loop._save

    def interrupt_after_third(*a):
        save(*a)
        if inspect.signature(save).bind(*a).arguments["epochs_done"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save", interrupt_after_third)
    code, _, err = run(capsys, *args, "--out", tmp_path / "cut")
    assert code == 130
    assert "interrupted after epoch 3" in err and f"--resume {tmp_path / 'cut'}" in err
    assert (tmp_path / "cut" / "checkpoint").is_dir()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    monkeypatch.setattr(loop, "_save", save)
    code, _, err = run(capsys, "forecast", "--resume", tmp_path / "cut")
    assert code == 0, err
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text()) == json.loads(
        (tmp_path / "whole" / "metrics.json").read_text()
    )


def test_a_resume_that_cannot_continue_writes_nothing_and_exits_2(tmp_path, capsys, monkeypatch):
    """Other options than --epochs, or no checkpoint: exit 2 before anything is written,
    so the run can still be resumed as it was (issue 14)."""
    import lstmkit.train.loop as loop

    args = ["forecast", "--data", "airline", "--horizon", 3, "--epochs", 4, "--patience", 50]
    args += ["--hidden-size", 6, "--quiet", "--out", tmp_path / "cut"]
    save = loop._save

    def interrupt_after_second(*a):
        save(*a)
        if inspect.signature(save).bind(*a).arguments["epochs_done"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save", interrupt_after_second)
    assert run(capsys, *args)[0] == 130
    monkeypatch.setattr(loop, "_save", save)
    config = (tmp_path / "cut" / "config.toml").read_bytes()
    code, _, err = run(capsys, "forecast", "--resume", tmp_path / "cut", "--hidden-size", 16)
    assert code == 2
    assert "hidden_size = 16 where the run has 6" in err and "only epochs may change" in err
    assert (tmp_path / "cut" / "config.toml").read_bytes() == config
    code, _, err = run(capsys, "forecast", "--resume", tmp_path / "cut", "--epochs", 5)
    assert code == 0, err
    assert "epochs = 5" in (tmp_path / "cut" / "config.toml").read_text()
    assert len(json.loads((tmp_path / "cut" / "metrics.json").read_text())) > 0


def test_resume_without_a_checkpoint_exits_2_and_an_early_stop_says_nothing_was_saved(
    tmp_path, capsys, monkeypatch
):
    import lstmkit.train.loop as loop

    def interrupt_at_once(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_save", interrupt_at_once)  # before the first checkpoint
    args = ["forecast", "--data", "airline", "--horizon", 3, "--epochs", 3, "--quiet"]
    code, _, err = run(capsys, *args, "--hidden-size", 4, "--out", tmp_path / "r")
    assert code == 130
    assert "before the first epoch ended: nothing was saved" in err
    assert "continue with" not in err
    code, _, err = run(capsys, "forecast", "--resume", tmp_path / "r")
    assert code == 2
    assert f"expected a checkpoint to continue from in {tmp_path / 'r' / 'checkpoint'}" in err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_explain_writes_the_gates_of_the_sample(tmp_path, capsys):
    code, _, err = run(
        capsys,
        "forecast",
        "--data",
        "airline",
        "--horizon",
        3,
        "--epochs",
        2,
        "--hidden-size",
        5,
        "--layers",
        2,
        "--out",
        tmp_path / "f",
        "--quiet",
    )
    assert code == 0, err
    code, out, err = run(
        capsys,
        "explain",
        "--model",
        tmp_path / "f",
        "--sample",
        4,
        "--out",
        tmp_path / "x",
        "--json",
    )
    assert code == 0, err
    model = Forecaster.load(tmp_path / "f" / "model")
    expected = model.gate_activations(back=4)
    with np.load(tmp_path / "x" / "gates.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == sorted(
            f"{layer}/{gate}" for layer, g in expected.items() for gate in g
        )
        for layer, g in expected.items():
            for gate, values in g.items():
                np.testing.assert_array_equal(saved[f"{layer}/{gate}"], values)
    summary = json.loads(out)["gates"]
    assert summary["l1/f"]["mean"] == pytest.approx(float(expected["l1"]["f"].mean()))
    assert {"gates_l0.png", "gates_l1.png", "report.html"} <= {
        p.name for p in (tmp_path / "x").iterdir()
    }
    code, _, err = run(capsys, "explain", "--model", tmp_path / "f", "--sample", 999)
    assert code == 2 and "back: expected an int in [0," in err


def test_bench_reports_same_run_ratios(capsys):
    code, out, err = run(capsys, "bench", "--hidden", 8, "--steps", 5, "--rounds", 2, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["case"].split()[0] for r in rows] == ["LSTM", "LSTM", "GRU", "GRU"]
    for r in rows:
        assert r["speed"] == pytest.approx(r["torch_ms"] / r["lstmkit_ms"])
        assert r["backend"] in {"native", "compiled", "python-steps", "reference"}


def test_cli_reference_documents_every_command_and_option():
    doc = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    from lstmkit.cli import cli

    for name, command in cli.commands.items():
        section = doc.split(f"## lstmkit {name}\n", 1)
        assert len(section) == 2, (
            f"docs/cli.md lacks lstmkit {name}; run docs/make_cli_reference.py"
        )
        body = section[1].split("\n## ", 1)[0]
        for param in command.params:
            for opt in getattr(param, "opts", []):
                assert opt in body, f"docs/cli.md: lstmkit {name} lacks {opt}"


def test_regress_and_tag_from_npz_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 7, 2))
    running = np.cumsum(X[:, :, 0], axis=1)
    for name, part in (("train", slice(0, 40)), ("test", slice(40, 60))):
        np.savez(tmp_path / f"sum_{name}.npz", X=X[part], y=running[part])
        np.savez(tmp_path / f"last_{name}.npz", X=X[part], y=running[part, -1])
        tags = np.where(X[part, :, 1] > 0, "up", "down")
        np.savez(tmp_path / f"tag_{name}.npz", X=X[part], y=tags)
    common = ["--epochs", 3, "--hidden-size", 6, "--json"]
    for kind, stem, extra, baseline in (
        ("regress", "last", [], "mean"),
        ("regress", "sum", ["--output", "sequence"], "mean"),
        ("tag", "tag", [], "majority"),
    ):
        out = tmp_path / f"{kind}-{stem}"
        code, text, err = run(
            capsys,
            kind,
            "--train",
            tmp_path / f"{stem}_train.npz",
            "--test",
            tmp_path / f"{stem}_test.npz",
            *extra,
            *common,
            "--out",
            out,
        )
        assert code == 0, err
        metrics = json.loads(text)["metrics"]
        peers = {"minirocket"} if stem == "last" else set()  # one value per sequence only
        assert set(metrics) == {"model", baseline} | peers
        rows = list(csv.DictReader((out / "predictions.csv").open()))
        per_step = stem != "last"
        assert len(rows) == (20 * 7 if per_step else 20)
        assert ("step" in rows[0]) == per_step
    truth = running[40:].reshape(-1)
    mean_rmse = float(np.sqrt(np.mean((truth - running[:40].mean()) ** 2)))
    sum_metrics = json.loads((tmp_path / "regress-sum" / "metrics.json").read_text())
    assert sum_metrics["mean"]["rmse"] == pytest.approx(mean_rmse)


def test_tune_and_compare_commands(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "tune",
        "--data",
        "airline",
        "--horizon",
        6,
        "--epochs",
        3,
        "--whales",
        2,
        "--iterations",
        1,
        "--out",
        tmp_path / "t",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    tuning = json.loads((tmp_path / "t" / "tuning.json").read_text())
    assert tuning == json.loads(json.dumps(result["tuning"]))
    assert tuning["metric"] == "rmse" and tuning["direction"] == "minimize"
    assert tuning["trials"]["COMPLETE"] == 4  # 2 whales x (1 + 1) generations
    assert len(tuning["history"]) == 2 and tuning["history"][1] <= tuning["history"][0]
    assert set(tuning["best_params"]) == {
        "hidden_size",
        "num_layers",
        "lr",
        "dropout",
        "batch_size",
        "lookback",
    }
    model = Forecaster.load(tmp_path / "t" / "model")
    assert model.params["lookback"] == tuning["best_params"]["lookback"]
    assert model.params["bidirectional"] is True and model.params["epochs"] == 3
    assert list(result["metrics"]) == forecast_rows()
    rows = list(csv.DictReader((tmp_path / "t" / "predictions.csv").open()))
    passengers = load_dataset("airline").column("Passengers")
    assert [float(r["actual"]) for r in rows] == passengers[-6:].tolist()
    np.testing.assert_allclose([float(r["predicted"]) for r in rows], model.predict(6))

    code, out, err = run(
        capsys,
        "compare",
        "--data",
        "airline",
        "--horizon",
        6,
        "--epochs",
        2,
        "--whales",
        2,
        "--iterations",
        1,
        "--seeds",
        "0,1",
        "--out",
        tmp_path / "c",
        "--json",
    )
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert list(metrics)[:5] == ["LSTM", "GRU", "BiLSTM", "WOA-BiLSTM", "random-BiLSTM"]
    assert {"rmse", "rmse_std", "seconds"} <= set(metrics["GRU"])
    assert metrics["seasonal_naive"]["rmse_std"] == 0
    table = (tmp_path / "c" / "comparison.md").read_text()
    assert table.startswith("| model | rmse | mae | mape | r2 | wall s |")
    code, _, err = run(capsys, "tune", "--task", "classify")
    assert code == 2 and "--train: expected" in err


def test_json_output_is_strict_json_and_run_files_are_readable(tmp_path, capsys):
    csv_file = tmp_path / "flat.csv"
    csv_file.write_text("v\n" + "1.0\n" * 40 + "0.0\n" * 3)  # a test part of zeros: mape NaN
    code, out, err = run(
        capsys,
        "forecast",
        "--data",
        csv_file,
        "--horizon",
        3,
        "--lookback",
        4,
        "--epochs",
        2,
        "--hidden-size",
        4,
        "--out",
        tmp_path / "r",
        "--json",
    )
    assert code == 0, err
    payload = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert payload["metrics"]["model"]["mape"] is None
    mode = (tmp_path / "r" / "metrics.json").stat().st_mode & 0o777
    assert mode & 0o044 == 0o044  # group and others may read it (umask 022 here)


def test_target_as_its_own_covariate_is_refused(capsys):
    code, _, err = run(
        capsys,
        "forecast",
        "--data",
        "airline",
        "--target",
        "Passengers",
        "--future-covariates",
        "Passengers",
    )
    assert code == 2 and "expected columns other than the target, got Passengers" in err


def test_two_runs_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    from lstmkit.report import rundir

    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20261125-000000")
    first = rundir.RunDir.create(None, "x", root=str(tmp_path))
    second = rundir.RunDir.create(None, "x", root=str(tmp_path))
    assert (first.path.name, second.path.name) == ("20261125-000000-x", "20261125-000000-x-2")


def test_export_writes_an_onnx_file_that_predicts_as_the_model(tmp_path, capsys):
    """ONNX Runtime on the exported file gives the saved classifier's probabilities; a cell
    without an ONNX operator (layer norm) is refused with one line and no file."""
    import onnxruntime as ort

    run_dir = tmp_path / "italy"
    args = ["classify", "--train", "italy_power_demand", "--epochs", 2, "--hidden-size", 6]
    code, _, err = run(capsys, *args, "--peephole", "--out", run_dir, "--quiet")
    assert code == 0, err
    code, text, err = run(capsys, "export", "--model", run_dir, "--onnx", tmp_path / "m.onnx")
    assert code == 0, err
    assert "1 LSTM" in text
    model = SequenceClassifier.load(run_dir / "model")
    X = np.stack(load_dataset("italy_power_demand").X_test[:20]).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    lengths = np.full(len(X), X.shape[1], dtype=np.int64)
    probabilities = session.run(["probabilities"], {"x": X, "lengths": lengths})[0]
    np.testing.assert_allclose(probabilities, model.predict_proba(list(X)), atol=1e-5)
    code, _, err = run(capsys, *args, "--layer-norm", "--out", tmp_path / "ln", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "export", "--model", tmp_path / "ln", "--onnx", tmp_path / "x.onnx")
    assert code == 2 and "layer_norm" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()


def test_predict_refuses_data_a_forecaster_would_ignore(tmp_path, capsys):
    args = ("forecast", "--data", "airline", "--epochs", 1, "--hidden-size", 4)
    code, _, err = run(capsys, *args, "--out", tmp_path / "f", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "predict", "--model", tmp_path / "f", "--data", "x.csv")
    assert code == 2 and "--data: a Forecaster forecasts past the end of the series" in err
    code, _, err = run(capsys, "explain", "--model", tmp_path / "f", "--data", "x.csv")
    assert code == 2 and "--data: a Forecaster explains a window of the series" in err


def test_a_test_file_with_other_channels_is_refused_before_training(tmp_path, capsys):
    train = DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TRAIN.ts"  # one channel
    test = DATA / "BasicMotions" / "BasicMotions_TEST.ts"  # six
    if not (train.exists() and test.exists()):
        pytest.skip("the UCR/UEA files are not in ../shared/data")
    args = ("classify", "--train", train, "--test", test, "--epochs", 100000)
    code, _, err = run(capsys, *args, "--out", tmp_path / "r")
    assert code == 2
    assert "--test: expected sequences of 1 channel(s) like --train's, got 6" in err
    assert not (tmp_path / "r").exists()  # refused before the run directory, not after training


@pytest.mark.parametrize(
    ("command", "y_test", "message"),
    [
        ("classify", np.array(["a", "b", "zebra"]), "--test: expected labels seen in --train, "
         "got 1 unseen, e.g. 'zebra'"),
        ("regress", np.array([1.0, np.nan, 2.0]), "--test: expected finite targets y, got NaN"),
    ],
)  # fmt: skip
def test_test_targets_are_checked_before_training(tmp_path, capsys, command, y_test, message):
    rng = np.random.default_rng(0)
    y_train = np.array(["a", "b"] * 4) if command == "classify" else rng.normal(size=8)
    np.savez(tmp_path / "train.npz", X=rng.normal(size=(8, 5, 1)), y=y_train)
    np.savez(tmp_path / "test.npz", X=rng.normal(size=(3, 5, 1)), y=y_test)
    args = (command, "--train", tmp_path / "train.npz", "--test", tmp_path / "test.npz")
    code, _, err = run(capsys, *args, "--epochs", 100000, "--out", tmp_path / "r")
    assert code == 2 and message in err, err
    assert not (tmp_path / "r").exists()  # before the run directory, not after training


def test_a_season_longer_than_the_training_part_is_refused_before_training(tmp_path, capsys):
    code, _, err = run(capsys, "forecast", "--data", "airline", "--season", 1000, "--epochs",
                       100000, "--out", tmp_path / "r")  # fmt: skip
    assert code == 2 and "--season 1000: expected at most the 132 training steps" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("hidden", "message"),
    [
        (",", "expected an integer, got ''"),
        ("", "expected an integer, got ''"),
        ("64,,128", "expected an integer, got ''"),
        ("abc", "expected an integer, got 'abc'"),
        ("-5", "expected 1 ≤ n ≤ 4096, got -5"),
        ("100000", "expected 1 ≤ n ≤ 4096, got 100000"),
        ("9" * 23, "expected 1 ≤ n ≤ 4096"),
    ],
)
def test_bench_sizes_are_checked(capsys, hidden, message):
    code, out, err = run(capsys, "bench", "--hidden", hidden, "--rounds", 1, "--steps", 2)
    assert code == 2 and f"--hidden: expected integers separated by commas, got {hidden!r}" in err
    assert message in err and not out


def test_bench_refuses_activations_over_the_memory_budget(capsys):
    code, _, err = run(capsys, "bench", "--hidden", 64, "--steps", 100000, "--batch", 100000)
    assert code == 2 and "over the memory budget" in err


def test_a_refused_run_leaves_no_folder_and_an_earlier_run_as_it_was(tmp_path, capsys):
    """Oracle: the file system before the refused command. A network over the memory
    budget is refused when the fit builds it, after the run folder was opened."""
    huge = ["--hidden-size", "100000", "--quiet"]
    assert main(["forecast", "--data", "airline", *huge, "--out", str(tmp_path / "a" / "b")]) == 2
    assert not (tmp_path / "a").exists()
    done = tmp_path / "done"
    small = ["--epochs", "1", "--hidden-size", "4", "--quiet", "--out", str(done)]
    assert main(["forecast", "--data", "airline", *small]) == 0
    before = {p.name: p.read_bytes() for p in done.iterdir() if p.is_file()}
    assert main(["forecast", "--data", "airline", *huge, "--out", str(done)]) == 2
    assert {p.name: p.read_bytes() for p in done.iterdir() if p.is_file()} == before
    (tmp_path / "file").write_text("")
    assert main(["forecast", "--data", "airline", "--out", str(tmp_path / "file" / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"lstmkit: error: --out {tmp_path / 'file' / 'sub'}: expected a directory that can be "
        f"made, got not a directory ({tmp_path / 'file' / 'sub'})"
    )


def test_a_target_error_names_a_few_columns_of_a_wide_file(tmp_path, capsys):
    """A 100,000-column file made a 789 kB error line listing every column."""
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1000)) + "\n" + "1," * 999 + "1\n")
    code, _, err = run(capsys, "forecast", "--data", path, "--out", tmp_path / "r")
    assert code == 2
    assert "--target: expected one of the columns c0, c1, c2, c3, c4, c5, c6, c7, ... (992 more)" \
        in err and len(err) < 300  # fmt: skip
    code, _, err = run(capsys, "forecast", "--data", path, "--target", "x", "--out", tmp_path / "r")
    assert code == 2 and "available: 'c0', 'c1'" in err and "(992 more)" in err and len(err) < 300
