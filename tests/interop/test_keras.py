"""Keras LSTM/GRU weights ↔ lstmkit (lstmkit.interop.keras).

Two oracles:

* a NumPy implementation of Keras 3's formulas (written from
  ``keras/src/layers/rnn/lstm.py``, ``gru.py`` and ``bidirectional.py``: Keras's layout,
  gate orders i, f, c, o and z, r, h, its bias handling, ``go_backwards`` and the flip
  of the backward outputs), run on random Keras-layout weights;
* real Keras 3 on its torch backend: layers built in float64, their outputs and final
  states compared with lstmkit's after the conversion, both ways.
"""

import inspect
import os

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is imported anywhere

import keras
import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.interop.keras import (
    from_keras,
    keras_to_torch,
    load_keras_weights,
    to_keras,
    torch_to_keras,
)

# Keras's own conversions to NumPy (inside get_weights and convert_to_numpy) warn on NumPy 2
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

T, N, IN, U = 6, 3, 5, 4
TOL = 1e-10  # float64 throughout
MERGES = {  # Keras merge_mode → (lstmkit merge_mode, Keras's merge of y, y_rev)
    "concat": ("concat", lambda y, b: np.concatenate([y, b], -1)),
    "sum": ("sum", lambda y, b: y + b),
    "mul": ("mul", lambda y, b: y * b),
    "ave": ("mean", lambda y, b: (y + b) / 2),
}
CELLS = [("LSTM", True), ("GRU", True), ("GRU", False)]  # (mode, reset_after)
CELL_IDS = ["lstm", "gru-reset_after", "gru-cho"]


# -- the oracle: Keras's formulas in NumPy -------------------------------------------------


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def keras_lstm(x, weights, state, go_backwards=False):
    """keras.layers.LSTM, return_sequences and return_state: x (N, T, F) → (N, T, U), [h, c]."""
    kernel, recurrent = weights[:2]
    bias = weights[2] if len(weights) == 3 else 0.0
    h, c = state
    outputs = []
    for t in reversed(range(x.shape[1])) if go_backwards else range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=1)
        c = _sigmoid(z_f) * c + _sigmoid(z_i) * np.tanh(z_c)
        h = _sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1), [h, c]


def keras_gru(x, weights, state, reset_after, go_backwards=False):
    """keras.layers.GRU, return_sequences and return_state: x (N, T, F) → (N, T, U), [h]."""
    kernel, recurrent = weights[:2]
    units = recurrent.shape[0]
    input_bias, recurrent_bias = 0.0, 0.0
    if len(weights) == 3:
        if reset_after:
            input_bias, recurrent_bias = weights[2][0], weights[2][1]
        else:
            input_bias = weights[2]
    (h,) = state
    outputs = []
    for t in reversed(range(x.shape[1])) if go_backwards else range(x.shape[1]):
        x_z, x_r, x_h = np.split(x[:, t] @ kernel + input_bias, 3, axis=1)
        if reset_after:
            inner = h @ recurrent + recurrent_bias
            r_z, r_r, r_h = inner[:, :units], inner[:, units : 2 * units], inner[:, 2 * units :]
            z, r = _sigmoid(x_z + r_z), _sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h)
        else:
            inner = h @ recurrent[:, : 2 * units]
            z, r = _sigmoid(x_z + inner[:, :units]), _sigmoid(x_r + inner[:, units:])
            hh = np.tanh(x_h + (r * h) @ recurrent[:, 2 * units :])
        h = z * h + (1 - z) * hh
        outputs.append(h)
    return np.stack(outputs, 1), [h]


def keras_stack(mode, reset_after, x, layers, states, keras_merge):
    """Keras layers called one after another; ``keras_merge`` None = unidirectional.

    ``states`` holds one [h(, c)] per layer and direction, forward before backward.
    Returns the last output and the final states in the same order.
    """

    def run(x, weights, state, go_backwards=False):
        if mode == "LSTM":
            return keras_lstm(x, weights, state, go_backwards)
        return keras_gru(x, weights, state, reset_after, go_backwards)

    finals = []
    for k, weights in enumerate(layers):
        if keras_merge is None:
            x, final = run(x, weights, states[k])
            finals.append(final)
            continue
        half = len(weights) // 2
        y, forward = run(x, weights[:half], states[2 * k])
        y_rev, backward = run(x, weights[half:], states[2 * k + 1], go_backwards=True)
        x = MERGES[keras_merge][1](y, y_rev[:, ::-1])  # Bidirectional flips y_rev back
        finals += [forward, backward]
    return x, finals


# -- helpers ------------------------------------------------------------------------------


def _random_keras_weights(rng, mode, reset_after, bias, in_dim, units):
    """One direction in Keras's layout, every entry random (biases included)."""
    gates = 4 if mode == "LSTM" else 3
    weights = [
        rng.normal(0, 0.5, (in_dim, gates * units)),
        rng.normal(0, 0.5, (units, gates * units)),
    ]
    if bias:
        shape = (2, 3 * units) if mode == "GRU" and reset_after else (gates * units,)
        weights.append(rng.normal(0, 0.5, shape))
    return weights


def _layer_sizes(num_layers, lstmkit_merge, bidirectional):
    wide = bidirectional and lstmkit_merge == "concat"
    return [IN if k == 0 else (2 * U if wide else U) for k in range(num_layers)]


def _module(mode, reset_after, num_layers, bias, keras_merge):
    merge = MERGES[keras_merge][0] if keras_merge else "concat"
    options = {
        "num_layers": num_layers,
        "bias": bias,
        "batch_first": True,
        "bidirectional": keras_merge is not None,
        "merge_mode": merge,
        "dtype": torch.float64,
    }
    if mode == "GRU":
        options["reset_after"] = reset_after
    return (lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU)(IN, U, **options)


def _states(rng, mode, count):
    size = 2 if mode == "LSTM" else 1
    return [[rng.normal(0, 0.5, (N, U)) for _ in range(size)] for _ in range(count)]


def _lstmkit_hx(mode, states):
    h = torch.tensor(np.stack([s[0] for s in states]))
    return (h, torch.tensor(np.stack([s[1] for s in states]))) if mode == "LSTM" else h


def _lstmkit_run(module, x, states):
    with torch.no_grad():
        out, hidden = module(torch.tensor(x), _lstmkit_hx(module.mode, states))
    h_n, c_n = hidden if module.mode == "LSTM" else (hidden, None)
    finals = [[h_n[j].numpy()] + ([] if c_n is None else [c_n[j].numpy()]) for j in range(len(h_n))]
    return out.numpy(), finals


def _assert_same_run(got, want, what, tol=TOL):
    (out, finals), (out_want, finals_want) = got, want
    assert out.shape == out_want.shape, f"{what}: output shape {out.shape} != {out_want.shape}"
    err = np.abs(out - out_want).max()
    assert err <= tol, f"{what}: output max abs err {err:.3e} > {tol:.0e}"
    assert len(finals) == len(finals_want)
    for j, (state, state_want) in enumerate(zip(finals, finals_want, strict=True)):
        assert len(state) == len(state_want), f"{what}: final state {j} has a wrong count"
        for name, a, b in zip("hc", state, state_want, strict=False):
            err = np.abs(a - b).max()
            assert err <= tol, f"{what}: final {name}[{j}] max abs err {err:.3e} > {tol:.0e}"


# -- the NumPy oracle, every option --------------------------------------------------------


@pytest.mark.parametrize("keras_merge", [None, *MERGES], ids=["uni", *MERGES])
@pytest.mark.parametrize("num_layers", [1, 2], ids=["L1", "L2"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("mode", "reset_after"), CELLS, ids=CELL_IDS)
def test_keras_weights_into_lstmkit_match_keras_formulas(
    mode, reset_after, bias, num_layers, keras_merge
):
    rng = np.random.default_rng(7)
    module = _module(mode, reset_after, num_layers, bias, keras_merge)
    directions = 1 if keras_merge is None else 2
    sizes = _layer_sizes(num_layers, module.merge_mode, keras_merge is not None)
    layers = []
    for size in sizes:  # Bidirectional.get_weights(): forward arrays, then backward
        layers.append([])
        for _ in range(directions):
            layers[-1] += _random_keras_weights(rng, mode, reset_after, bias, size, U)
    x = rng.normal(size=(N, T, IN))
    states = _states(rng, mode, num_layers * directions)

    load_keras_weights(module, layers)
    want = keras_stack(mode, reset_after, x, layers, states, keras_merge)
    _assert_same_run(_lstmkit_run(module, x, states), want, "keras → lstmkit")

    # and back: the same arrays, bit for bit
    back = to_keras(module)
    for k, (got, sent) in enumerate(zip(back, layers, strict=True)):
        assert [a.shape for a in got] == [a.shape for a in sent], f"layer {k}"
        for j, (a, b) in enumerate(zip(got, sent, strict=True)):
            assert np.array_equal(a, b), f"layer {k} array {j} changed on the round trip"


@pytest.mark.parametrize("keras_merge", [None, "concat", "ave"], ids=["uni", "concat", "ave"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize(("mode", "reset_after"), CELLS, ids=CELL_IDS)
def test_lstmkit_weights_to_keras_match_keras_formulas(mode, reset_after, bias, keras_merge):
    torch.manual_seed(3)
    module = _module(mode, reset_after, 2, bias, keras_merge)  # both biases random
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, T, IN))
    directions = 1 if keras_merge is None else 2
    states = _states(rng, mode, 2 * directions)

    layers = to_keras(module)
    want = keras_stack(mode, reset_after, x, layers, states, keras_merge)
    _assert_same_run(_lstmkit_run(module, x, states), want, "lstmkit → keras")


def test_torch_nn_lstm_to_keras_and_back():
    """torch.nn.LSTM has the same parameter names: the converters serve it too."""
    torch.manual_seed(0)
    ref = torch.nn.LSTM(IN, U, num_layers=2, bidirectional=True, batch_first=True)
    ref = ref.double()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, T, IN))
    states = _states(rng, "LSTM", 4)
    layers = to_keras(ref)
    want = keras_stack("LSTM", True, x, layers, states, "concat")
    _assert_same_run(_lstmkit_run(ref, x, states), want, "torch.nn → keras")

    copy = torch.nn.LSTM(IN, U, num_layers=2, bidirectional=True, batch_first=True).double()
    load_keras_weights(copy, layers)
    _assert_same_run(_lstmkit_run(copy, x, states), want, "keras → torch.nn")


def test_direction_converters_swap_gru_blocks_and_sum_biases():
    """Hand-checkable layout: GRU blocks z, r, h ↔ r, z, n; one Keras bias ↔ bias_ih."""
    units = 2
    kernel = np.repeat(np.array([[1.0, 2.0, 3.0]]), units, axis=1)  # blocks z=1, r=2, h=3
    recurrent = np.repeat(np.array([[10.0, 20.0, 30.0]] * units), units, axis=1)
    bias = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    params = keras_to_torch("GRU", [kernel, recurrent, bias], reset_after=False)
    assert params["weight_ih"][:, 0].tolist() == [2, 2, 1, 1, 3, 3]  # rows r, z, n
    assert params["weight_hh"][:, 0].tolist() == [20, 20, 10, 10, 30, 30]
    assert params["bias_ih"].tolist() == [2, 2, 1, 1, 3, 3]
    assert params["bias_hh"].tolist() == [0] * 6
    params["bias_hh"] = np.full(6, 0.5)
    back = torch_to_keras("GRU", params, reset_after=False)
    assert back[2].tolist() == [1.5, 1.5, 2.5, 2.5, 3.5, 3.5]
    lstm = keras_to_torch("LSTM", [np.eye(2, 8), np.eye(2, 8)])
    assert np.array_equal(lstm["weight_ih"], np.eye(2, 8).T)
    assert "bias_ih" not in lstm


# -- real Keras 3 (torch backend) -----------------------------------------------------------

# Keras's torch backend runs LSTM and the reset_after=True GRU through torch ops in float64
# end to end. The reset_after=False GRU runs Keras's own cell, whose ``ops.matmul`` casts
# float64 products to float32 on every non-TensorFlow backend (``BIT64_TO_BIT32_DTYPE`` in
# keras/src/backend/common/dtypes.py), so there the real layer itself is only float32-exact
# (measured 9e-8 against the float64 formulas above); a wrong layout errs by ~1e-1.
F32_MATMUL = 1e-6
REAL = [  # (mode, reset_after, use_bias, keras merge_mode or None, num_layers, tolerance)
    pytest.param("LSTM", True, True, "ave", 2, TOL, id="bilstm-ave-L2"),
    pytest.param("LSTM", True, False, None, 1, TOL, id="lstm-nobias"),
    pytest.param("GRU", True, False, "concat", 2, TOL, id="bigru-concat-nobias-L2"),
    pytest.param("GRU", False, True, None, 2, F32_MATMUL, id="gru-cho-L2"),
    pytest.param("GRU", True, True, "mul", 1, TOL, id="bigru-mul"),
]


def _keras_layers(mode, reset_after, use_bias, keras_merge, num_layers):
    layers = []
    for _ in range(num_layers):
        options = {"return_sequences": True, "return_state": True, "dtype": "float64"}
        if mode == "LSTM":
            rnn = keras.layers.LSTM(U, use_bias=use_bias, **options)
        else:
            rnn = keras.layers.GRU(U, use_bias=use_bias, reset_after=reset_after, **options)
        if keras_merge is not None:
            rnn = keras.layers.Bidirectional(rnn, merge_mode=keras_merge, dtype="float64")
        layers.append(rnn)
    return layers


def _keras_run(layers, x, states):
    """Call the Keras layers in turn with initial states; output and final states."""
    per_direction = len(states) // len(layers)
    finals = []
    for k, layer in enumerate(layers):
        initial = [
            s for state in states[k * per_direction : (k + 1) * per_direction] for s in state
        ]
        result = [keras.ops.convert_to_numpy(a) for a in layer(x, initial_state=initial)]
        x, flat = result[0], result[1:]
        size = len(flat) // per_direction
        finals += [flat[j * size : (j + 1) * size] for j in range(per_direction)]
    return x, finals


@pytest.mark.parametrize(
    ("mode", "reset_after", "use_bias", "keras_merge", "num_layers", "tol"), REAL
)
def test_real_keras_both_ways(mode, reset_after, use_bias, keras_merge, num_layers, tol):
    rng = np.random.default_rng(11)
    layers = _keras_layers(mode, reset_after, use_bias, keras_merge, num_layers)
    directions = 1 if keras_merge is None else 2
    x = rng.normal(size=(N, T, IN))
    states = _states(rng, mode, num_layers * directions)
    _keras_run(layers, x, states)  # builds the layers
    for layer in layers:  # random biases too (Keras initialises them to 0 / 1)
        layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    keras_weights = [layer.get_weights() for layer in layers]

    # Keras → lstmkit
    module = from_keras(layers if num_layers > 1 else layers[0])
    assert module.mode == mode and module.num_layers == num_layers
    assert module.bias == use_bias and module.weight_ih_l0.dtype == torch.float64
    want = _keras_run(layers, x, states)
    _assert_same_run(_lstmkit_run(module, x, states), want, "keras → lstmkit", tol)

    # the round trip Keras → lstmkit → Keras gives the same arrays
    for k, (got, sent) in enumerate(zip(to_keras(module), keras_weights, strict=True)):
        for j, (a, b) in enumerate(zip(got, sent, strict=True)):
            assert a.shape == b.shape and np.array_equal(a, b), f"layer {k} array {j}"

    # lstmkit (fresh random weights, both biases non-zero) → Keras
    torch.manual_seed(4)
    for weight in module.parameters():
        torch.nn.init.uniform_(weight, -0.7, 0.7)
    for layer, weights in zip(layers, to_keras(module), strict=True):
        layer.set_weights(weights)
    want = _keras_run(layers, x, states)
    _assert_same_run(_lstmkit_run(module, x, states), want, "lstmkit → keras", tol)


# -- what does not convert ----------------------------------------------------------------


def test_keras_to_torch_errors_name_expected_and_got():
    lstm = [np.zeros((IN, 4 * U)), np.zeros((U, 4 * U)), np.zeros(4 * U)]
    with pytest.raises(ValueError, match=r"mode: expected 'LSTM' or 'GRU', got 'RNN'"):
        keras_to_torch("RNN", lstm)
    with pytest.raises(ValueError, match=r"kernel\): expected shape \(5, 12\).*got \(5, 16\)"):
        keras_to_torch("GRU", [np.zeros((IN, 4 * U)), np.zeros((U, 3 * U))])
    with pytest.raises(ValueError, match=r"recurrent_kernel\): expected shape \(4, 16\).*got"):
        keras_to_torch("LSTM", [lstm[0], np.zeros((U, 3 * U))])
    gru = [np.zeros((IN, 3 * U)), np.zeros((U, 3 * U))]
    with pytest.raises(ValueError, match=r"expected shape \(12,\) \(GRU reset_after=False"):
        keras_to_torch("GRU", [*gru, np.zeros((2, 3 * U))], reset_after=False)
    with pytest.raises(ValueError, match=r"expected shape \(2, 12\) \(GRU reset_after=True"):
        keras_to_torch("GRU", [*gru, np.zeros(3 * U)], reset_after=True)
    with pytest.raises(ValueError, match=r"expected 2 arrays .* got 4"):
        keras_to_torch("LSTM", [*lstm, lstm[2]])
    with pytest.raises(TypeError, match=r"floating-point array, got dtype int64"):
        keras_to_torch("LSTM", [np.zeros((IN, 4 * U), dtype=np.int64), lstm[1]])
    with pytest.raises(ValueError, match=r"both or neither of bias_ih, bias_hh"):
        torch_to_keras("LSTM", {"weight_ih": lstm[0].T, "weight_hh": lstm[1].T, "bias_ih": 0})


def test_load_keras_weights_errors():
    module = lstmkit.LSTM(IN, U, num_layers=2, bidirectional=True, dtype=torch.float64)
    one = [np.zeros((IN, 4 * U)), np.zeros((U, 4 * U)), np.zeros(4 * U)]
    second = [np.zeros((2 * U, 4 * U)), np.zeros((U, 4 * U)), np.zeros(4 * U)]
    with pytest.raises(ValueError, match=r"expected 2 entries \(one per layer"):
        load_keras_weights(module, [one * 2])
    with pytest.raises(TypeError, match=r"for one layer pass \[layer.get_weights\(\)\]"):
        load_keras_weights(lstmkit.LSTM(IN, U, dtype=torch.float64), one)
    with pytest.raises(ValueError, match=r"weights\[1\]: expected 6 arrays \(forward \+ backward"):
        load_keras_weights(module, [one * 2, second])
    with pytest.raises(ValueError, match=r"weights\[1\] \(backward\)\[0\] \(kernel\): expected"):
        load_keras_weights(module, [one * 2, second + one])  # layer 1 reads 2U features
    before = module.weight_ih_l0.detach().clone()
    ones = [np.ones_like(a) for a in one]
    with pytest.raises(ValueError):
        load_keras_weights(module, [ones * 2, second + one])
    assert torch.equal(module.weight_ih_l0, before), "nothing is written when a check fails"
    with pytest.raises(ValueError, match=r"proj_size=2 has no Keras equivalent"):
        to_keras(lstmkit.LSTM(IN, U, proj_size=2))
    with pytest.raises(TypeError, match=r"expected an lstmkit.LSTM/GRU or torch.nn.LSTM/GRU"):
        to_keras(torch.nn.RNN(IN, U))


@pytest.mark.parametrize("variant", ["layer_norm", "peephole"])
def test_cell_variants_are_refused(variant):
    accepts = variant in inspect.signature(lstmkit.LSTM).parameters
    module = lstmkit.LSTM(IN, U, **({variant: True} if accepts else {}))
    if not accepts:  # the variant is not in lstmkit.LSTM yet: present it as an attribute
        setattr(module, variant, True)
    with pytest.raises(ValueError, match=rf"{variant}=True changes the cell's formulas"):
        to_keras(module)


def test_from_keras_refuses_what_lstmkit_cannot_run():
    x = np.zeros((1, 2, IN))
    with pytest.raises(ValueError, match=r"recurrent_activation expected 'sigmoid'.*hard_sigm"):
        from_keras(keras.layers.LSTM(U, recurrent_activation="hard_sigmoid"))
    with pytest.raises(ValueError, match=r"activation expected 'tanh' .*got 'relu'"):
        from_keras(keras.layers.GRU(U, activation="relu"))
    with pytest.raises(ValueError, match=r"merge_mode expected one of concat, sum, mul, ave"):
        from_keras(keras.layers.Bidirectional(keras.layers.LSTM(U), merge_mode=None))
    with pytest.raises(ValueError, match=r"go_backwards=True outside Bidirectional"):
        from_keras(keras.layers.GRU(U, go_backwards=True))
    with pytest.raises(ValueError, match=r"expected a Keras LSTM or GRU layer"):
        from_keras(keras.layers.SimpleRNN(U))
    with pytest.raises(ValueError, match=r"has no weights yet"):
        from_keras(keras.layers.LSTM(U))
    first, second = keras.layers.LSTM(U, return_sequences=True), keras.layers.LSTM(U + 1)
    second(first(x))
    with pytest.raises(ValueError, match=r"layers\[1\]: expected the same kind, units"):
        from_keras([first, second])


def test_from_keras_reads_an_rnn_over_a_cell():
    """keras.layers.RNN(LSTMCell) has the same weights as keras.layers.LSTM.

    It runs Keras's cell, whose matmuls round to float32 (see F32_MATMUL).
    """
    rng = np.random.default_rng(2)
    layer = keras.layers.RNN(
        keras.layers.LSTMCell(U, dtype="float64"),
        return_sequences=True,
        return_state=True,
        dtype="float64",
    )
    x = rng.normal(size=(N, T, IN))
    states = _states(rng, "LSTM", 1)
    _keras_run([layer], x, states)
    layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    module = from_keras(layer)
    want = _keras_run([layer], x, states)
    _assert_same_run(_lstmkit_run(module, x, states), want, "RNN(LSTMCell) → lstmkit", F32_MATMUL)
