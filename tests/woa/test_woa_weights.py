"""Weight-space WOA (``lstmkit.woa.weights``): the population forward, on the compiled loops
and on the python steps, against a loop of ``torch.nn.LSTM`` with each whale's weights
copied (float64, every whale), the flat vector ↔ ``state_dict`` map, the fitness against a hand
computation, WOA and the hybrid on a tiny task, and the errors a user can cause."""

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.recurrence import kernels
from lstmkit.tasks.networks import RecurrentNet
from lstmkit.woa.weights import (
    WeightLayout,
    fit_weights,
    fit_weights_adam,
    population_forward,
    population_loss,
)

F64 = torch.float64
TIGHT = 1e-12
SHAPES = [(1, 4, 1), (3, 5, 2)]  # (D, H, K)


def random_population(layout: WeightLayout, whales: int, seed: int) -> torch.Tensor:
    """(P, d) float64, uniform in the box ±3/√H (wider than the initialisation, so the
    gates leave their linear range)."""
    low, high = layout.bounds(3.0).T
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.uniform(low, high, size=(whales, layout.size)))


def torch_nn_outputs(layout: WeightLayout, population: torch.Tensor, x: torch.Tensor):
    """The oracle: every whale's weights copied into one torch.nn.LSTM + torch.nn.Linear."""
    lstm = torch.nn.LSTM(
        layout.input_size,
        layout.hidden_size,
        batch_first=True,
        bidirectional=layout.bidirectional,
        dtype=F64,
    )
    head = torch.nn.Linear(layout.directions * layout.hidden_size, layout.output_size, dtype=F64)
    outs = []
    with torch.no_grad():
        for whale in population:
            state = layout.state_dict(whale.numpy(), F64)
            lstm.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("rnn.")})
            head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
            _, (h_n, _) = lstm(x)  # (D, N, H): h_T, then h'_1 for the reverse direction
            outs.append(head(torch.cat(list(h_n), dim=-1)))
    return torch.stack(outs)  # (P, N, K)


# ---------------------------------------------------------------- the population forward


@pytest.mark.parametrize("steps_run", ["compiled", "python"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("inputs", "hidden", "outputs"), SHAPES)
@pytest.mark.parametrize("steps", [1, 7])
def test_population_forward_equals_a_loop_of_torch_nn_lstm(
    steps_run, bidirectional, inputs, hidden, outputs, steps
):
    layout = WeightLayout(inputs, hidden, outputs, bidirectional)
    population = random_population(layout, whales=6, seed=steps)
    x = torch.randn(5, steps, inputs, dtype=F64, generator=torch.Generator().manual_seed(1))
    with kernels.use(steps_run):
        got = population_forward(layout, population, x)
    want = torch_nn_outputs(layout, population, x)
    assert got.shape == (6, 5, outputs)
    assert (got - want).abs().max().item() <= TIGHT


def test_population_forward_runs_one_compiled_population_call_per_direction(monkeypatch):
    """A spy on the engine's ops: the whole population goes through ``lstm_population``,
    once per direction (forward, then reverse), not through a loop over whales."""
    calls, real = [], kernels.ops_for

    class Spy:
        def __init__(self, ops):
            self.ops = ops

        def lstm_population(self, **arguments):
            calls.append((arguments["reverse"], tuple(arguments["w_ih"].shape)))
            return self.ops.lstm_population(**arguments)

    monkeypatch.setattr(kernels, "ops_for", lambda like: Spy(real(like)))
    layout = WeightLayout(2, 3, 1)
    with kernels.use("compiled"):
        population_forward(layout, random_population(layout, 5, 0), torch.randn(4, 6, 2, dtype=F64))
    assert calls == [(False, (5, 12, 2)), (True, (5, 12, 2))]


def test_population_forward_whales_are_independent():
    """Whale k's output does not depend on the other whales (a mixed-up batch axis would)."""
    layout = WeightLayout(2, 3, 1)
    population = random_population(layout, whales=5, seed=0)
    x = torch.randn(4, 6, 2, dtype=F64)
    full = population_forward(layout, population, x)
    for k in range(5):
        alone = population_forward(layout, population[k : k + 1], x)[0]
        assert (alone - full[k]).abs().max().item() <= TIGHT


def test_population_forward_float32_close_to_oracle():
    layout = WeightLayout(1, 8, 1)
    population = random_population(layout, whales=4, seed=3)
    x = torch.randn(6, 12, 1, dtype=F64)
    want = torch_nn_outputs(layout, population, x)
    got = population_forward(layout, population.float(), x.float())
    assert (got.double() - want).abs().max().item() <= 1e-5


# ---------------------------------------------------------------- the flat vector


@pytest.mark.parametrize("bidirectional", [True, False])
def test_layout_names_and_shapes_are_the_models(bidirectional):
    layout = WeightLayout(3, 5, 2, bidirectional)
    net = RecurrentNet(3, 2, hidden_size=5, bidirectional=bidirectional)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == list(layout.entries)
    torch_lstm = torch.nn.LSTM(3, 5, batch_first=True, bidirectional=bidirectional)
    rnn_entries = [(k[4:], s) for k, s in layout.entries if k.startswith("rnn.")]
    assert [(k, tuple(v.shape)) for k, v in torch_lstm.state_dict().items()] == rnn_entries
    assert layout.size == sum(v.numel() for v in net.state_dict().values())


def test_vector_state_dict_round_trip():
    layout = WeightLayout(2, 3, 2)
    vector = random_population(layout, 1, seed=0)[0].numpy()
    state = layout.state_dict(vector, F64)
    assert np.array_equal(layout.vector(state), vector)
    net = RecurrentNet(2, 2, hidden_size=3, bidirectional=True).double()
    again = layout.state_dict(layout.vector(net.state_dict()), F64)
    for name, tensor in net.state_dict().items():
        assert torch.equal(again[name], tensor)


def test_best_whale_loads_into_a_real_lstmkit_model():
    layout = WeightLayout(2, 4, 3)
    population = random_population(layout, whales=3, seed=5)
    x = torch.randn(7, 9, 2, dtype=F64)
    batched = population_forward(layout, population, x)
    for k in range(3):
        model = layout.build(population[k].numpy(), dtype=F64)
        assert isinstance(model.rnn, lstmkit.LSTM)
        assert model.rnn.bidirectional and model.rnn.batch_first
        with torch.no_grad():
            assert (model(x) - batched[k]).abs().max().item() <= TIGHT
        # and through load_state_dict into a fresh model, as a user would
        fresh = RecurrentNet(2, 3, hidden_size=4, bidirectional=True).double().eval()
        fresh.load_state_dict(layout.state_dict(population[k].numpy(), F64))
        with torch.no_grad():
            assert torch.equal(fresh(x), model(x))


def test_bounds_are_pytorchs_initialisation_box():
    layout = WeightLayout(1, 16, 1)
    box = layout.bounds()
    rnn = np.array(
        [name.startswith("rnn.") for name, s in layout.entries for _ in range(np.prod(s))]
    )
    assert np.allclose(box[rnn, 1], 1 / 4) and np.allclose(box[~rnn, 1], 1 / np.sqrt(32))
    assert np.array_equal(box[:, 0], -box[:, 1])
    assert np.allclose(layout.bounds(3.0), 3 * box)
    torch.manual_seed(0)
    fresh = layout.vector(RecurrentNet(1, 1, hidden_size=16, bidirectional=True).state_dict())
    assert np.all((box[:, 0] <= fresh) & (fresh <= box[:, 1]))


# ---------------------------------------------------------------- the fitness


def test_fitness_is_the_mse_by_hand():
    layout = WeightLayout(1, 3, 2)
    population = random_population(layout, whales=4, seed=1)
    x = torch.randn(6, 5, 1, dtype=F64)
    y = torch.randn(6, 2, dtype=F64)
    outputs = torch_nn_outputs(layout, population, x).numpy()
    by_hand = [np.mean((outputs[k] - y.numpy()) ** 2) for k in range(4)]
    got = population_loss(layout, population, x, y, "regression").numpy()
    assert np.abs(got - by_hand).max() <= TIGHT


def test_fitness_is_the_cross_entropy_by_hand():
    layout = WeightLayout(1, 3, 3)
    population = random_population(layout, whales=4, seed=2)
    x = torch.randn(8, 5, 1, dtype=F64)
    labels = np.array([0, 1, 2, 2, 1, 0, 0, 1])
    outputs = torch_nn_outputs(layout, population, x).numpy()
    by_hand = []
    for logits in outputs:  # −mean_n (z_{n,y_n} − log Σ_j e^{z_{n,j}})
        log_norm = np.log(np.exp(logits).sum(axis=1))
        by_hand.append(-np.mean(logits[np.arange(8), labels] - log_norm))
    got = population_loss(layout, population, x, torch.as_tensor(labels), "classification")
    assert np.abs(got.numpy() - by_hand).max() <= TIGHT


# ---------------------------------------------------------------- fitting


def tiny_regression(n=48, steps=6):
    """Standardised targets: the sum of each sequence."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, steps, 1))
    y = X[..., 0].sum(axis=1)
    return X, (y - y.mean()) / y.std()


WOA_ARGS = {"hidden_size": 4, "n_whales": 20, "iterations": 100, "seed": 0, "bound_scale": 2.0}


@pytest.fixture(scope="module")
def pure_woa():
    X, y = tiny_regression()
    return fit_weights(X, y, **WOA_ARGS)


def test_woa_reduces_the_training_loss(pure_woa):
    fit = pure_woa
    history = fit.woa.history
    assert len(history) == 101 and np.all(np.diff(history) <= 0)
    assert fit.woa.fun < 0.5 * history[0]  # well below the initial population's best
    assert abs(fit.loss - fit.woa.fun) <= 1e-5  # the returned model is the best whale
    assert fit.n_forward == 20 * 101 and fit.n_backward == 0
    assert isinstance(fit.model.rnn, lstmkit.LSTM)
    X, y = tiny_regression()
    pred = fit.predict(X)
    assert pred.shape == (48,)
    assert abs(np.mean((pred - y) ** 2) - fit.loss) <= 1e-5


def test_same_seed_same_fit(pure_woa):
    X, y = tiny_regression()
    again = fit_weights(X, y, **WOA_ARGS)
    assert np.array_equal(again.woa.x, pure_woa.woa.x) and again.loss == pure_woa.loss


def test_hybrid_is_no_worse_than_pure_woa(pure_woa):
    X, y = tiny_regression()
    hybrid = fit_weights(X, y, **WOA_ARGS, hybrid_epochs=40)
    assert np.array_equal(hybrid.woa.x, pure_woa.woa.x)  # the same WOA part
    assert hybrid.loss <= pure_woa.loss + 1e-6
    assert hybrid.loss < 0.9 * pure_woa.loss  # Adam does improve on the best whale here
    assert hybrid.adam_losses.shape == (40,)
    assert hybrid.n_forward == 20 * 101 + 40 and hybrid.n_backward == 40


def test_woa_classification_with_string_labels():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5, 1))
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    fit = fit_weights(
        X, y, task="classification", hidden_size=3, n_whales=16, iterations=40, bound_scale=4.0
    )
    assert fit.woa.fun < 0.7 * fit.woa.history[0]
    assert list(fit.classes) == ["down", "up"]
    pred = fit.predict(X)
    assert set(pred) <= {"down", "up"} and np.mean(pred == y) > 0.8


def test_adam_baseline_trains_and_leaves_the_global_rng_alone():
    X, y = tiny_regression()
    state = torch.get_rng_state()
    fit = fit_weights_adam(X, y, hidden_size=4, epochs=30, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert fit.woa is None and fit.n_forward == 30 and fit.n_backward == 30
    assert fit.loss < 0.8 * fit.adam_losses[0]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.zeros((10, 5))}, r"X: expected 3 dims \(N, T, D\).*got shape \(10, 5\)"),
        ({"X": np.full((10, 5, 1), np.nan)}, "X: expected finite values"),
        ({"y": np.zeros(9)}, r"y: expected 10 targets .*got shape \(9,\)"),
        ({"task": "forecast"}, "task: expected one of 'regression', 'classification'"),
        ({"task": "classification", "y": np.ones(10)}, "expected at least 2 classes, got"),
        ({"hidden_size": 0}, "hidden_size: expected an int >= 1, got 0"),
        ({"iterations": 0}, "iterations: expected an int >= 1, got 0"),
        ({"n_whales": 1}, "n_whales: expected an int >= 2, got 1"),
        ({"bound_scale": -1.0}, "bound_scale: expected a positive number, got -1.0"),
        ({"variant": "mealpy"}, "variant: expected one of"),
        ({"hybrid_epochs": -1}, "hybrid_epochs: expected an int >= 0, got -1"),
    ],
)
def test_fit_weights_errors(kwargs, match):
    args = {"X": np.zeros((10, 5, 1)), "y": np.zeros(10)} | kwargs
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        fit_weights(X, y, **args)


def test_layout_errors():
    layout = WeightLayout(1, 8, 1)
    with pytest.raises(ValueError, match=r"vector: expected shape \(721,\).*got \(720,\)"):
        layout.state_dict(np.zeros(720))
    state = layout.state_dict(np.zeros(721))
    with pytest.raises(ValueError, match=r"missing \['head.bias'\]"):
        layout.vector({k: v for k, v in state.items() if k != "head.bias"})
    with pytest.raises(ValueError, match=r"state_dict\['head.bias'\]: expected shape \(1,\), got"):
        layout.vector(state | {"head.bias": torch.zeros(2)})
    with pytest.raises(ValueError, match="hidden_size: expected an int >= 1, got 0"):
        WeightLayout(1, 0, 1)
    population = torch.zeros(3, 721)
    with pytest.raises(ValueError, match=r"population: expected shape \(P, 721\).*got \(3, 720\)"):
        population_forward(layout, population[:, :720], torch.zeros(2, 4, 1))
    with pytest.raises(ValueError, match=r"x: expected shape \(N, T, 1\).*got \(2, 4, 3\)"):
        population_forward(layout, population, torch.zeros(2, 4, 3))
    with pytest.raises(TypeError, match=r"x: expected dtype torch\.float32"):
        population_forward(layout, population, torch.zeros(2, 4, 1, dtype=F64))


def test_predict_checks_the_feature_count(pure_woa):
    with pytest.raises(ValueError, match=r"X: expected 1 features on the last axis"):
        pure_woa.predict(np.zeros((3, 6, 2)))
