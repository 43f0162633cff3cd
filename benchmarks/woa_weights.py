"""Weight-space WOA (``lstmkit.woa.weights``): the population forward's speed, and WOA
against gradient training (Adam) on real data.

    python benchmarks/woa_weights.py                  # speed: one population's fitness, JSON
    python benchmarks/woa_weights.py --compare        # WOA vs Adam on Airline, ItalyPowerDemand
    python benchmarks/woa_weights.py --compare --seeds 0 --iterations 50   # a quick look
    python benchmarks/woa_weights.py --bound-sweep    # WOA's training loss vs the box size

Speed (default mode). One fitness evaluation of a population of ``--whales`` networks
(a BiLSTM of H units + linear head, D = 1 input feature, N sequences of T steps, float32,
no autograd), four ways, on the same weights and input:

- ``engine``: :func:`lstmkit.woa.weights.population_forward`, every whale on the engine's
  compiled loop (``lstm_population``: one call per direction, whales on threads);
- ``bmm``: the batched pass ``population_forward`` was before it moved to the engine, kept
  here as the reference it replaced: weights stacked (P, 4H, H+D+1), one ``bmm`` per step
  over all whales, hidden-major states, tanh as 2σ(2z) − 1;
- ``vmap``: ``torch.func.vmap`` over ``torch.func.functional_call`` of the real model
  (``RecurrentNet`` with ``lstmkit.LSTM(backend="reference")``: the per-step
  ``lstm_cell``; torch's fused LSTM kernel has no vmap rule);
- ``loop_torch_nn``: a Python loop over whales, each copying its weights into one
  ``torch.nn.LSTM`` + ``torch.nn.Linear`` and running it (torch's own fused CPU kernel);
- ``loop_functional``: a Python loop over whales, each ``functional_call`` of the same
  reference model (the single-network code path, ``lstm_cell`` per step).

Rounds are interleaved (every method once per round, in a seeded random order; the machine
is shared and noisy) and the median of the rounds is reported, with the ratios
t(method) / t(engine) taken in the same run; the outputs are checked against
``loop_torch_nn``. The last line is a JSON document.

Compare (``--compare``). The same small network (BiLSTM, H = 8, linear head on the final
states), the same training data and loss, two optimisers, fixed settings (chosen before
looking at any test figure, never tuned on the test set):

- Airline: monthly passengers 1949–1960; windows of the 12 previous months → the next
  month; the scaler (mean, std) is fitted on the first 120 months, the last 24 months are
  the test targets (one step ahead from the observed previous 12 months); RMSE on the
  original scale beside the seasonal-naive forecast y_t = y_{t-12} on the same targets.
- ItalyPowerDemand: the published split (67 train, 1029 test days of 24 hourly values,
  labels '1'/'2'), standardised with the training set's mean and std; test accuracy and
  macro F1 beside the majority class.

Methods: WOA (30 whales, ``--iterations`` 300, paper variant) in the box ±k/√H, k = 1
(PyTorch's initialisation box) and k = 4; the hybrid (WOA k = 4, then 300 Adam epochs);
Adam alone from PyTorch's initialisation for 300 epochs and for the compute-equal budget.
Budget unit: one network evaluation over the whole training set (a forward pass); an
Adam epoch is one full-batch forward + backward, counted as 3 forward-equivalents (the
usual estimate, backward ≈ 2 forwards), so the compute-equal Adam gets
whales × generations / 3 epochs. Wall time: the measured seconds of every run (noisy on a
shared machine) and an estimate from unit costs timed interleaved, median of 21 rounds —
one WOA generation (the population's fitness, one population forward), one Adam epoch —
times the number of generations and epochs. Adam: learning
rate 1e-2, full batch, keeps the lowest training loss seen, no early stopping (there is
no validation split in this comparison). Seeds ``--seeds`` (default 0 1 2): mean ± std.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time

import numpy as np
import torch
from torch.func import functional_call, vmap

from lstmkit.data import load_airline, load_dataset
from lstmkit.train.metrics import classification_metrics, regression_metrics
from lstmkit.woa.weights import (
    WeightLayout,
    fit_weights,
    fit_weights_adam,
    population_forward,
    population_loss,
    task_loss,
)

# (N, T, H): three sizes, then the training sets of the comparison (Airline, ItalyPowerDemand)
SPEED_CONFIGS = ((64, 24, 8), (128, 24, 16), (128, 50, 16), (108, 12, 8), (67, 24, 8))


# -- speed ----------------------------------------------------------------------------------


def bmm_population_forward(layout: WeightLayout, population: torch.Tensor, x: torch.Tensor):
    """The reference: every whale in one batched pass, one ``bmm`` per step over all whales
    (the population forward of lstmkit 0.x before it ran on the engine). Per direction
    w = [W_hh | W_ih | b] (P, 4H, H+D+1) with the g rows doubled, z = [h; x_t; 1]
    (P, H+D+1, N); i, f, σ(2g), o = σ(w z), C = f C + i (2σ(2g) − 1), h = o (2σ(2C) − 1)."""
    params = layout.unflatten(population)
    hidden, inputs = layout.hidden_size, layout.input_size
    x_steps = x.permute(1, 2, 0)  # (T, D, N)
    scale = x.new_ones(4 * hidden, 1)
    scale[2 * hidden : 3 * hidden] = 2.0
    finals = []
    for suffix, reverse in zip(layout.suffixes, (False, True), strict=False):
        bias = params[f"rnn.bias_ih{suffix}"] + params[f"rnn.bias_hh{suffix}"]
        w = torch.cat(
            [params[f"rnn.weight_hh{suffix}"], params[f"rnn.weight_ih{suffix}"], bias[..., None]],
            dim=2,
        ) * scale  # fmt: skip
        z = x.new_zeros(population.shape[0], hidden + inputs + 1, x.shape[0])
        z[:, hidden + inputs] = 1.0
        c = x.new_zeros(population.shape[0], hidden, x.shape[0])
        for t in range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1]):
            z[:, hidden : hidden + inputs] = x_steps[t]
            i, f, s_g, o = torch.sigmoid(torch.bmm(w, z)).split(hidden, dim=1)
            c = f * c + i * (2.0 * s_g - 1.0)
            h = o * (2.0 * torch.sigmoid(2.0 * c) - 1.0)
            z[:, :hidden] = h
        finals.append(h)
    features = torch.cat(finals, dim=1)  # (P, F, N)
    out = torch.baddbmm(params["head.bias"][..., None], params["head.weight"], features)
    return out.transpose(1, 2)


def _methods(layout: WeightLayout, population: torch.Tensor, x: torch.Tensor) -> dict:
    """The four ways to compute the (P, N, K) outputs of every whale."""
    params = layout.unflatten(population)
    reference = layout.build()
    reference.rnn.backend = "reference"
    batched_call = vmap(lambda p, x: functional_call(reference, p, (x,)), in_dims=(0, None))
    lstm = torch.nn.LSTM(
        layout.input_size, layout.hidden_size, batch_first=True, bidirectional=True
    )
    head = torch.nn.Linear(2 * layout.hidden_size, layout.output_size)
    modules = {"rnn": lstm, "head": head}

    def loop_torch_nn():
        outs = []
        for k in range(population.shape[0]):
            for name, tensor in params.items():
                module, attr = name.split(".")
                getattr(modules[module], attr).copy_(tensor[k])
            _, (h_n, _) = lstm(x)
            outs.append(head(torch.cat([h_n[0], h_n[1]], dim=-1)))
        return torch.stack(outs)

    def loop_functional():
        outs = []
        for k in range(population.shape[0]):
            whale = {name: tensor[k] for name, tensor in params.items()}
            outs.append(functional_call(reference, whale, (x,)))
        return torch.stack(outs)

    return {
        "engine": lambda: population_forward(layout, population, x),
        "bmm": lambda: bmm_population_forward(layout, population, x),
        "vmap": lambda: batched_call(params, x),
        "loop_torch_nn": loop_torch_nn,
        "loop_functional": loop_functional,
    }


@torch.no_grad()
def time_case(whales: int, n: int, steps: int, hidden: int, rounds: int, seed: int) -> dict:
    torch.manual_seed(seed)
    layout = WeightLayout(input_size=1, hidden_size=hidden, output_size=1)
    bounds = torch.as_tensor(layout.bounds(), dtype=torch.float32)
    population = bounds[:, 0] + (bounds[:, 1] - bounds[:, 0]) * torch.rand(whales, layout.size)
    x = torch.randn(n, steps, 1)
    methods = _methods(layout, population, x)
    oracle = methods["loop_torch_nn"]()
    max_err = {name: float((fn() - oracle).abs().max()) for name, fn in methods.items()}
    times = {name: [] for name in methods}
    order = list(methods)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "whales": whales,
        "N": n,
        "T": steps,
        "H": hidden,
        "params_per_whale": layout.size,
        "median_ms": {name: round(1e3 * t, 3) for name, t in median.items()},
        "ratio_to_engine": {
            name: round(t / median["engine"], 2) for name, t in median.items() if name != "engine"
        },
        "max_abs_err_vs_loop_torch_nn": max_err,
    }


def speed(args) -> dict:
    configs = (
        SPEED_CONFIGS
        if not args.configs
        else tuple(tuple(int(v) for v in item.split(",")) for item in args.configs.split(";"))
    )
    cases = []
    for n, steps, hidden in configs:
        case = time_case(args.whales, n, steps, hidden, args.rounds, args.seed)
        cases.append(case)
        ms, ratio = case["median_ms"], case["ratio_to_engine"]
        print(
            f"N={n:4d} T={steps:3d} H={hidden:3d}  engine {ms['engine']:8.2f} ms  "
            + "  ".join(f"{k} {ms[k]:8.2f} ms ({ratio[k]:.2f}x)" for k in ratio),
            file=sys.stderr,
        )
    return {
        "mode": "speed",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "rounds": args.rounds,
        "cases": cases,
    }


# -- compare --------------------------------------------------------------------------------


def airline_data() -> dict:
    """Windows of 12 months → the next one; scaler on the first 120 months; test = last 24."""
    _, series = load_airline()
    lookback, split = 12, len(series) - 24
    mean, std = series[:split].mean(), series[:split].std()
    scaled = (series - mean) / std

    def windows(targets: range) -> tuple[np.ndarray, np.ndarray]:
        X = np.stack([scaled[t - lookback : t] for t in targets])[..., None]  # (N, 12, 1)
        return X, scaled[list(targets)]

    X_train, y_train = windows(range(lookback, split))
    X_test, _ = windows(range(split, len(series)))
    test_truth = series[split:]
    seasonal_naive = series[split - 12 : len(series) - 12]  # y_t = y_{t-12}
    return {
        "task": "regression",
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "score": lambda pred: regression_metrics(test_truth, pred * std + mean)["rmse"],
        "baseline": ("seasonal naive", regression_metrics(test_truth, seasonal_naive)["rmse"]),
        "metric": "test RMSE (passengers, thousands)",
    }


def italy_data() -> dict:
    data = load_dataset("italy_power_demand")
    X_train, X_test = np.stack(data.X_train), np.stack(data.X_test)  # (N, 24, 1)
    mean, std = X_train.mean(), X_train.std()
    classes = np.unique(data.y_train)
    truth = np.searchsorted(classes, data.y_test)
    majority = classes[np.argmax([(data.y_train == c).sum() for c in classes])]

    def score(pred: np.ndarray) -> float:
        return classification_metrics(truth, np.searchsorted(classes, pred), classes)["accuracy"]

    return {
        "task": "classification",
        "X_train": (X_train - mean) / std,
        "y_train": data.y_train,
        "X_test": (X_test - mean) / std,
        "score": score,
        "f1": lambda pred: classification_metrics(truth, np.searchsorted(classes, pred), classes)[
            "f1"
        ],
        "baseline": ("majority class", float((data.y_test == majority).mean())),
        "metric": "test accuracy",
    }


def unit_costs(data: dict, args, rounds: int = 21) -> dict:
    """Median wall time, interleaved, of one WOA generation (the fitness of the whole
    population: one population forward), one Adam epoch (full-batch forward, backward and
    step) and one forward pass of a single network (no autograd)."""
    task = data["task"]
    x = torch.as_tensor(data["X_train"], dtype=torch.float32)
    if task == "regression":
        target = torch.as_tensor(data["y_train"], dtype=torch.float32).reshape(len(x), -1)
        outputs = target.shape[1]
    else:
        classes, index = np.unique(data["y_train"], return_inverse=True)
        target, outputs = torch.as_tensor(index), len(classes)
    layout = WeightLayout(x.shape[2], args.hidden, outputs)
    low, high = layout.bounds(4.0).T
    population = np.random.default_rng(0).uniform(low, high, (args.whales, layout.size))
    population = torch.as_tensor(population, dtype=torch.float32)
    torch.manual_seed(0)
    net = layout.build().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

    def generation():
        population_loss(layout, population, x, target, task)

    def epoch():
        optimizer.zero_grad()
        task_loss(net(x), target, task).backward()
        optimizer.step()

    def forward():
        with torch.no_grad():
            net(x)

    units = {"woa_generation_ms": generation, "adam_epoch_ms": epoch, "one_forward_ms": forward}
    times = {name: [] for name in units}
    order, rng = list(units), random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            units[name]()
            times[name].append(time.perf_counter() - start)
    return {name: round(1e3 * statistics.median(t), 3) for name, t in times.items()}


def compare_runs(data: dict, args, costs: dict) -> list[dict]:
    common = {"task": data["task"], "hidden_size": args.hidden}
    generations = args.iterations + 1
    equal_epochs = args.whales * generations // 3
    runs = {
        "WOA k=1": lambda s: fit_weights(
            data["X_train"],
            data["y_train"],
            **common,
            n_whales=args.whales,
            iterations=args.iterations,
            seed=s,
            bound_scale=1.0,
        ),
        "WOA k=4": lambda s: fit_weights(
            data["X_train"],
            data["y_train"],
            **common,
            n_whales=args.whales,
            iterations=args.iterations,
            seed=s,
            bound_scale=4.0,
        ),
        f"WOA k=4 + Adam {args.adam_epochs}": lambda s: fit_weights(
            data["X_train"],
            data["y_train"],
            **common,
            n_whales=args.whales,
            iterations=args.iterations,
            seed=s,
            bound_scale=4.0,
            hybrid_epochs=args.adam_epochs,
        ),
        f"Adam {args.adam_epochs}": lambda s: fit_weights_adam(
            data["X_train"], data["y_train"], **common, epochs=args.adam_epochs, seed=s
        ),
        f"Adam {equal_epochs} (compute-equal)": lambda s: fit_weights_adam(
            data["X_train"], data["y_train"], **common, epochs=equal_epochs, seed=s
        ),
    }
    rows = []
    for name, run in runs.items():
        fits = [run(seed) for seed in args.seeds]
        preds = [fit.predict(data["X_test"]) for fit in fits]
        row = {
            "method": name,
            "train_loss": [fit.loss for fit in fits],
            "test": [data["score"](p) for p in preds],
            "n_forward": fits[0].n_forward,
            "n_backward": fits[0].n_backward,
            "forward_equivalents": fits[0].n_forward + 2 * fits[0].n_backward,
            "seconds": [round(fit.seconds, 2) for fit in fits],
            "estimated_seconds": round(_estimated_seconds(fits[0], args.whales, costs), 2),
        }
        if "f1" in data:
            row["test_f1"] = [data["f1"](p) for p in preds]
        if fits[0].woa is not None:
            row["woa_initial_best_loss"] = [float(fit.woa.history[0]) for fit in fits]
        rows.append(row)
        print(_row_text(row), file=sys.stderr)
    return rows


def _estimated_seconds(fit, whales: int, costs: dict) -> float:
    """Generations × one generation's median time + Adam epochs × one epoch's."""
    generations = 0 if fit.woa is None else fit.woa.n_evals // whales
    return 1e-3 * (
        generations * costs["woa_generation_ms"] + fit.n_backward * costs["adam_epoch_ms"]
    )


def _mean_std(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _row_text(row: dict) -> str:
    return (
        f"| {row['method']} | {_mean_std(row['train_loss'], 4)} | {_mean_std(row['test'], 3)} "
        f"| {row['forward_equivalents']} | {row['estimated_seconds']:.2f} "
        f"| {_mean_std(row['seconds'], 1)} |"
    )


def compare(args) -> dict:
    out = {"mode": "compare", "torch": torch.__version__, "threads": torch.get_num_threads()}
    out["settings"] = {
        "hidden_size": args.hidden,
        "whales": args.whales,
        "iterations": args.iterations,
        "adam_epochs": args.adam_epochs,
        "adam_lr": 1e-2,
        "seeds": args.seeds,
    }
    for key, loader in (("airline", airline_data), ("italy_power_demand", italy_data)):
        data = loader()
        print(
            f"\n{key}: {data['metric']}; {data['baseline'][0]} {data['baseline'][1]:.3f}",
            file=sys.stderr,
        )
        costs = unit_costs(data, args)
        print(f"unit costs (median ms): {costs}", file=sys.stderr)
        print(
            "| method | train loss | test | forward-equivalents | est. s | measured s |",
            file=sys.stderr,
        )
        print("|---|---|---|---|---|---|", file=sys.stderr)
        out[key] = {
            "metric": data["metric"],
            "baseline": {"name": data["baseline"][0], "value": data["baseline"][1]},
            "unit_costs_ms": costs,
            "rows": compare_runs(data, args, costs),
        }
    return out


def bound_sweep(args) -> dict:
    """The training loss of pure WOA for box half-widths k/√H, k in ``--ks``: how the
    default ``bound_scale`` was chosen (training loss only; no test figure is computed)."""
    out = {"mode": "bound-sweep", "whales": args.whales, "iterations": args.iterations}
    for key, loader in (("airline", airline_data), ("italy_power_demand", italy_data)):
        data, rows = loader(), []
        for k in args.ks:
            losses = [
                fit_weights(
                    data["X_train"],
                    data["y_train"],
                    task=data["task"],
                    hidden_size=args.hidden,
                    n_whales=args.whales,
                    iterations=args.iterations,
                    seed=seed,
                    bound_scale=k,
                ).loss
                for seed in args.seeds
            ]
            rows.append({"k": k, "train_loss": losses})
            print(f"{key} k={k:g}: train loss {_mean_std(losses, 4)}", file=sys.stderr)
        out[key] = rows
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", action="store_true", help="WOA vs Adam on real data")
    parser.add_argument(
        "--bound-sweep", action="store_true", help="training loss of WOA for several box sizes"
    )
    parser.add_argument("--ks", type=float, nargs="+", default=[1, 2, 4, 8, 16], help="sweep")
    parser.add_argument("--whales", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=15, help="speed: interleaved rounds")
    parser.add_argument("--configs", default="", help='speed: "N,T,H;N,T,H" (default 5 cases)')
    parser.add_argument("--seed", type=int, default=0, help="speed: weights and input")
    parser.add_argument("--iterations", type=int, default=300, help="compare: WOA iterations")
    parser.add_argument("--adam-epochs", type=int, default=300, help="compare: Adam epochs")
    parser.add_argument("--hidden", type=int, default=8, help="compare: hidden units H")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="compare")
    args = parser.parse_args(argv)
    if args.compare and args.bound_sweep:
        parser.error("--compare and --bound-sweep: expected one mode, got both")
    if args.compare:
        result = compare(args)
    elif args.bound_sweep:
        result = bound_sweep(args)
    else:
        result = speed(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
