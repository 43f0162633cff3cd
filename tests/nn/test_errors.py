"""Bad input raises ValueError/TypeError whose message says what was expected and what came.

Oracle: the documented contract (``lstmkit.nn`` shape table and STYLE.md: "errors say
what was expected and what came"). Each ``match`` names both sides.
"""

import re

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit

T, N, IN, H = 5, 3, 4, 6


def lstm(**kwargs):
    return lstmkit.LSTM(IN, H, **kwargs)


def gru(**kwargs):
    return lstmkit.GRU(IN, H, **kwargs)


MODULES = [pytest.param(lstm, id="LSTM"), pytest.param(gru, id="GRU")]


# -- input ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize(
    ("shape", "batch_first", "got"),
    [
        ((T,), False, r"got 1 dims of shape \(5,\)"),
        ((T, N, IN, 2), False, r"got 4 dims of shape \(5, 3, 4, 2\)"),
        ((N, T, IN, 1), True, r"got 4 dims of shape \(3, 5, 4, 1\)"),
    ],
)
def test_wrong_ndim(make, shape, batch_first, got):
    module = make(batch_first=batch_first)
    layout = r"\(N, L, H_in\)" if batch_first else r"\(L, N, H_in\)"
    with pytest.raises(ValueError, match=rf"input: expected 3 dims {layout} or 2 dims .*{got}"):
        module(torch.randn(shape))


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize("shape", [(T, N, IN + 1), (T, IN - 1)], ids=["batched", "unbatched"])
def test_wrong_feature_size(make, shape):
    with pytest.raises(
        ValueError, match=rf"input: expected {IN} features \(input_size\).*got {shape[-1]}"
    ):
        make()(torch.randn(shape))


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_non_float_input(make, dtype):
    x = torch.zeros(T, N, IN, dtype=dtype)
    with pytest.raises(
        TypeError, match=rf"input: expected a floating-point tensor, got dtype {dtype}"
    ):
        make()(x)


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize(
    ("module_dtype", "input_dtype"),
    [
        (torch.float32, torch.float64),
        (torch.float64, torch.float32),
        (torch.float32, torch.float16),
    ],
)
def test_input_dtype_differs_from_parameters(make, module_dtype, input_dtype):
    module = make(dtype=module_dtype)
    with pytest.raises(
        TypeError,
        match=rf"input: expected dtype {module_dtype} \(the module's parameters\), "
        rf"got {input_dtype}",
    ):
        module(torch.randn(T, N, IN, dtype=input_dtype))


@pytest.mark.parametrize("make", MODULES)
def test_input_not_a_tensor(make):
    with pytest.raises(TypeError, match="input: expected a Tensor or PackedSequence, got list"):
        make()([[0.0] * IN] * T)


@pytest.mark.parametrize("make", MODULES)
def test_empty_sequence(make):
    with pytest.raises(
        ValueError, match="input: expected at least one time step, got sequence length 0"
    ):
        make()(torch.randn(0, N, IN))


@pytest.mark.parametrize("make", MODULES)
def test_input_on_another_device(make):
    module = make(device="meta")
    with pytest.raises(
        ValueError, match=r"input: expected device meta \(the module's parameters\), got cpu"
    ):
        module(torch.randn(T, N, IN))


# -- hx ---------------------------------------------------------------------------------


def test_lstm_hx_must_be_a_pair():
    with pytest.raises(
        TypeError, match=r"hx: expected a tuple \(h_0, c_0\) for an LSTM, got Tensor"
    ):
        lstm()(torch.randn(T, N, IN), torch.zeros(1, N, H))
    with pytest.raises(
        TypeError, match=r"hx: expected a tuple \(h_0, c_0\) for an LSTM, got tuple"
    ):
        lstm()(torch.randn(T, N, IN), (torch.zeros(1, N, H),))


def test_gru_hx_must_be_a_tensor():
    with pytest.raises(TypeError, match="hx: expected a Tensor h_0 for a GRU, got tuple"):
        gru()(torch.randn(T, N, IN), (torch.zeros(1, N, H), torch.zeros(1, N, H)))


def test_lstm_hx_members_must_be_tensors():
    with pytest.raises(TypeError, match="c_0: expected a Tensor, got NoneType"):
        lstm()(torch.randn(T, N, IN), (torch.zeros(1, N, H), None))


@pytest.mark.parametrize(
    ("make", "hx", "name", "expected", "got"),
    [
        (lstm, (torch.zeros(2, N, H), torch.zeros(1, N, H)), "h_0", (1, N, H), (2, N, H)),
        (lstm, (torch.zeros(1, N, H), torch.zeros(1, N + 1, H)), "c_0", (1, N, H), (1, N + 1, H)),
        (lstm, (torch.zeros(1, N, H), torch.zeros(1, N, H - 1)), "c_0", (1, N, H), (1, N, H - 1)),
        (gru, torch.zeros(1, N, H + 1), "h_0", (1, N, H), (1, N, H + 1)),
        (gru, torch.zeros(N, H), "h_0", (1, N, H), (N, H)),
    ],
)
def test_hx_wrong_shape(make, hx, name, expected, got):
    with pytest.raises(
        ValueError,
        match=rf"{name}: expected shape {re.escape(str(expected))} .*got {re.escape(str(got))}",
    ):
        make()(torch.randn(T, N, IN), hx)


def test_lstm_projected_h0_has_proj_size():
    module = lstmkit.LSTM(IN, H, proj_size=2)
    with pytest.raises(ValueError, match=r"h_0: expected shape \(1, 3, 2\) .*got \(1, 3, 6\)"):
        module(torch.randn(T, N, IN), (torch.zeros(1, N, H), torch.zeros(1, N, H)))


def test_unbatched_hx_shape():
    with pytest.raises(ValueError, match=r"h_0: expected shape \(1, 6\) .*got \(1, 1, 6\)"):
        gru()(torch.randn(T, IN), torch.zeros(1, 1, H))


@pytest.mark.parametrize(
    ("make", "hx", "name"),
    [
        (lstm, (torch.zeros(1, N, H, dtype=torch.float64), torch.zeros(1, N, H)), "h_0"),
        (lstm, (torch.zeros(1, N, H), torch.zeros(1, N, H, dtype=torch.float16)), "c_0"),
        (gru, torch.zeros(1, N, H, dtype=torch.float64), "h_0"),
    ],
)
def test_hx_wrong_dtype(make, hx, name):
    with pytest.raises(
        TypeError, match=rf"{name}: expected dtype torch.float32 \(the input's\), got torch.float"
    ):
        make()(torch.randn(T, N, IN), hx)


def test_hx_on_another_device():
    with pytest.raises(ValueError, match=r"h_0: expected device cpu \(the input's\), got meta"):
        gru()(torch.randn(T, N, IN), torch.zeros(1, N, H, device="meta"))


# -- lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        ([5, 4], r"lengths: expected shape \(3,\) \(one length per sequence\), got \(2,\)"),
        ([5, 4, 3, 2], r"lengths: expected shape \(3,\) .*got \(4,\)"),
        (torch.tensor([[5, 4, 3]]), r"lengths: expected shape \(3,\) .*got \(1, 3\)"),
        (torch.tensor(5), r"lengths: expected shape \(3,\) .*got \(\)"),
        ([5, 0, 3], r"lengths: expected every length in \[1, 5\] .*got values in \[0, 5\]"),
        ([5, 6, 3], r"lengths: expected every length in \[1, 5\] .*got values in \[3, 6\]"),
        ([-1, 2, 3], r"lengths: expected every length in \[1, 5\] .*got values in \[-1, 3\]"),
    ],
)
def test_bad_lengths_values(make, lengths, match):
    with pytest.raises(ValueError, match=match):
        make()(torch.randn(T, N, IN), lengths=lengths)


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (
            torch.tensor([5.0, 4.0, 3.0]),
            "lengths: expected an integer tensor, got dtype torch.float32",
        ),
        ([5.0, 4.0, 3.0], "lengths: expected an integer tensor, got dtype torch.float"),
        (
            torch.tensor([True, True, True]),
            "lengths: expected an integer tensor, got dtype torch.bool",
        ),
        ("abc", "lengths: expected a 1-D sequence of ints, got str"),
    ],
)
def test_bad_lengths_type(make, lengths, match):
    with pytest.raises(TypeError, match=match):
        make()(torch.randn(T, N, IN), lengths=lengths)


@pytest.mark.parametrize("make", MODULES)
def test_lengths_with_packed_sequence(make):
    packed = pack_padded_sequence(torch.randn(T, N, IN), [5, 4, 2])
    with pytest.raises(
        ValueError, match="lengths: a PackedSequence carries its own lengths; got both"
    ):
        make()(packed, lengths=[5, 4, 2])


@pytest.mark.parametrize("make", MODULES)
def test_lengths_with_unbatched_input(make):
    with pytest.raises(
        ValueError, match=r"lengths: expected None for an unbatched \(2-dim\) input"
    ):
        make()(torch.randn(T, IN), lengths=[T])


def test_errors_also_raised_by_gate_activations():
    with pytest.raises(ValueError, match=r"lengths: expected every length in \[1, 5\]"):
        lstm().gate_activations(torch.randn(T, N, IN), lengths=[5, 0, 3])
    with pytest.raises(TypeError, match=r"input: expected dtype torch\.float32"):
        gru().gate_activations(torch.randn(T, N, IN, dtype=torch.float64))


# -- constructor ------------------------------------------------------------------------

CLASSES = [pytest.param(lstmkit.LSTM, id="LSTM"), pytest.param(lstmkit.GRU, id="GRU")]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((IN, 0), {}, ValueError, "hidden_size: expected an int >= 1, got 0"),
        ((0, H), {}, ValueError, "input_size: expected an int >= 1, got 0"),
        ((IN, -3), {}, ValueError, "hidden_size: expected an int >= 1, got -3"),
        ((IN, 6.0), {}, TypeError, "hidden_size: expected an int >= 1, got float 6.0"),
        ((IN, True), {}, TypeError, "hidden_size: expected an int >= 1, got True"),
        ((IN, H), {"num_layers": 0}, ValueError, "num_layers: expected an int >= 1, got 0"),
        (
            (IN, H),
            {"merge_mode": "avg"},
            ValueError,
            "merge_mode: expected one of concat, sum, mean, mul, got 'avg'",
        ),
        ((IN, H), {"dropout": 1.5}, ValueError, r"dropout: expected a float in \[0, 1\], got 1.5"),
        (
            (IN, H),
            {"dropout": -0.1},
            ValueError,
            r"dropout: expected a float in \[0, 1\], got -0.1",
        ),
        ((IN, H), {"dropout": "0.5"}, TypeError, r"dropout: expected a float in \[0, 1\], got str"),
    ],
)
def test_constructor_errors(cls, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(*args, **kwargs)


@pytest.mark.parametrize("proj", [H, H + 1])
def test_proj_size_not_less_than_hidden(proj):
    with pytest.raises(
        ValueError, match=rf"proj_size: expected less than hidden_size \({H}\), got {proj}"
    ):
        lstmkit.LSTM(IN, H, proj_size=proj)


def test_negative_proj_size():
    with pytest.raises(ValueError, match="proj_size: expected an int >= 0, got -1"):
        lstmkit.LSTM(IN, H, proj_size=-1)


def test_gru_has_no_proj_size_and_lstm_no_reset_after():
    with pytest.raises(TypeError, match="proj_size"):
        lstmkit.GRU(IN, H, proj_size=2)
    with pytest.raises(TypeError, match="reset_after"):
        lstmkit.LSTM(IN, H, reset_after=False)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="dropout applies between layers"):
        lstmkit.LSTM(IN, H, dropout=0.5)
