"""ONNX export and ``torch.export`` of the modules and the estimators.

Oracles: ONNX Runtime, an independent implementation of the ONNX ``LSTM``/``GRU``
operators, against lstmkit's own forward in PyTorch (and the estimators' own ``predict``,
``predict_proba``, ``backtest``), each graph run on two (sequence length, batch) shapes
since both are dynamic axes; ONNX Runtime's peephole LSTM against a NumPy implementation
written from the operator's equations; the eager module against its ``torch.export``
program on other shapes than the example's.
"""

import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import TOL

import lstmkit
from lstmkit.interop.onnx import export_onnx, export_program, onnx_weights, to_onnx
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)
from lstmkit.tasks.networks import RecurrentNet

# torch's own while-loop decomposition of aten.lstm/gru (torch.export) warns about itself
pytestmark = pytest.mark.filterwarnings("ignore:_check_is_size will be removed:FutureWarning")

IN, H = 3, 5
F32 = TOL[torch.float32]
SHAPES = [(7, 3), (2, 6)]  # (steps, batch): two shapes, neither special


def _session(model_or_path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model_or_path
    if isinstance(model_or_path, onnx.ModelProto):
        source = model_or_path.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _assert_close(got: np.ndarray, want, tol: float, what: str) -> None:
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    err = float(np.abs(got - want).max())
    assert err <= tol, f"{what}: max abs err {err:.3e} > {tol:.0e}"


def _assert_outputs(got: list, want: list, tol: float, where: str) -> None:
    """Compare ONNX Runtime's outputs with PyTorch's, named output, h_n (and c_n)."""
    assert len(got) == len(want), f"{len(got)} outputs != {len(want)}"
    for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=False):
        _assert_close(g, w, tol, f"{name} {where}")


def _recurrent_ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type in ("LSTM", "GRU", "Loop", "Scan")]


# -- modules ------------------------------------------------------------------------------

MODULES = [
    pytest.param(lstmkit.LSTM, {}, id="LSTM"),
    pytest.param(lstmkit.LSTM, {"num_layers": 2, "bias": False}, id="LSTM-L2-nobias"),
    pytest.param(lstmkit.GRU, {}, id="GRU"),
    pytest.param(lstmkit.GRU, {"num_layers": 2, "reset_after": False}, id="GRU-Cho-L2"),
    pytest.param(
        lstmkit.GRU, {"bidirectional": True, "reset_after": False, "bias": False}, id="BiGRU-Cho"
    ),
    pytest.param(lstmkit.LSTM, {"num_layers": 2, "bidirectional": True}, id="BiLSTM-L2-concat"),
    pytest.param(
        lstmkit.LSTM,
        {"num_layers": 2, "bidirectional": True, "merge_mode": "sum", "bias": False},
        id="BiLSTM-L2-sum-nobias",
    ),
    pytest.param(
        lstmkit.LSTM,
        {"bidirectional": True, "merge_mode": "mean", "batch_first": True},
        id="BiLSTM-mean-bf",
    ),
    pytest.param(
        lstmkit.GRU,
        {"num_layers": 2, "bidirectional": True, "merge_mode": "mul"},
        id="BiGRU-L2-mul",
    ),
    pytest.param(torch.nn.LSTM, {"num_layers": 2, "bidirectional": True}, id="torch.nn.LSTM"),
    pytest.param(torch.nn.GRU, {"bidirectional": True, "batch_first": True}, id="torch.nn.GRU"),
]


def _inputs(module, steps: int, batch: int, *, lengths: bool, states: bool):
    """Random feeds for ONNX Runtime and the matching forward arguments for PyTorch."""
    x = torch.randn((batch, steps, IN) if module.batch_first else (steps, batch, IN))
    feeds, hx, kwargs = {"input": x.numpy()}, None, {}
    if lengths:
        lens = torch.randint(1, steps + 1, (batch,))
        lens[0] = steps
        feeds["lengths"] = lens.numpy()
        kwargs["lengths"] = lens
    if states:
        count = module.num_layers * (2 if module.bidirectional else 1)
        h0, c0 = torch.randn(count, batch, H), torch.randn(count, batch, H)
        feeds["h_0"] = h0.numpy()
        hx = h0
        if module.mode == "LSTM":
            feeds["c_0"], hx = c0.numpy(), (h0, c0)
    return feeds, (x, hx), kwargs


def _torch_outputs(module, args, kwargs) -> list[torch.Tensor]:
    with torch.no_grad():
        out, state = module(*args, **kwargs)
    return [out, *(state if isinstance(state, tuple) else (state,))]


@pytest.mark.parametrize(("cls", "kwargs"), MODULES)
def test_module_matches_onnxruntime_on_dynamic_shapes(cls, kwargs, tmp_path):
    torch.manual_seed(0)
    module = cls(IN, H, **kwargs).eval()
    path = export_onnx(module, tmp_path / "m.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    # the standard operators, one node per layer, both directions in it
    assert _recurrent_ops(model) == [module.mode] * module.num_layers
    assert [i.name for i in model.graph.input] == ["input"]
    session = _session(path)
    for steps, batch in SHAPES:
        feeds, args, _ = _inputs(module, steps, batch, lengths=False, states=False)
        got = session.run(None, feeds)
        want = _torch_outputs(module, args, {})
        _assert_outputs(got, want, F32, f"at (T, N) = {(steps, batch)}")


@pytest.mark.parametrize(("cls", "kwargs"), MODULES)
def test_lengths_and_initial_states_match_onnxruntime(cls, kwargs):
    """sequence_lens: zero outputs past a length, final states at each sequence's last real
    step, the reverse direction starting there — as lstmkit (torch.nn: a PackedSequence)."""
    torch.manual_seed(1)
    module = cls(IN, H, **kwargs).eval()
    session = _session(to_onnx(module, lengths=True, initial_state=True))
    assert [i.name for i in session.get_inputs()] == ["input", "lengths", "h_0"] + (
        ["c_0"] if module.mode == "LSTM" else []
    )
    for steps, batch in SHAPES:
        feeds, (x, hx), kw = _inputs(module, steps, batch, lengths=True, states=True)
        got = session.run(None, feeds)
        if isinstance(module, lstmkit.LSTM | lstmkit.GRU):
            want = _torch_outputs(module, (x, hx), kw)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(
                x, kw["lengths"], batch_first=module.batch_first, enforce_sorted=False
            )
            out, *states = _torch_outputs(module, (packed, hx), {})
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(
                out, batch_first=module.batch_first, total_length=steps
            )
            want = [out, *states]
        _assert_outputs(got, want, F32, f"at (T, N) = {(steps, batch)}")


def test_weights_in_onnx_gate_order():
    """W, R, B blocks moved to ONNX's order (i, o, f, c; z, r, h), checked block by block."""
    torch.manual_seed(2)
    lstm = lstmkit.LSTM(IN, H, bidirectional=True)
    w = onnx_weights(lstm)[0]
    assert w["W"].shape == (2, 4 * H, IN) and w["B"].shape == (2, 8 * H)
    for onnx_block, torch_block in enumerate((0, 3, 1, 2)):  # i, o, f, c <- i, f, g, o
        rows = slice(torch_block * H, (torch_block + 1) * H)
        want = lstm.weight_hh_l0_reverse[rows].detach().numpy()
        np.testing.assert_array_equal(w["R"][1, onnx_block * H : (onnx_block + 1) * H], want)
        want_rb = lstm.bias_hh_l0[rows].detach().numpy()
        got_rb = w["B"][0, 4 * H + onnx_block * H : 4 * H + (onnx_block + 1) * H]
        np.testing.assert_array_equal(got_rb, want_rb)
    gru = lstmkit.GRU(IN, H, bias=False)
    w = onnx_weights(gru)[0]
    assert set(w) == {"W", "R"}
    for onnx_block, torch_block in enumerate((1, 0, 2)):  # z, r, h <- r, z, n
        want = gru.weight_ih_l0[torch_block * H : (torch_block + 1) * H].detach().numpy()
        np.testing.assert_array_equal(w["W"][0, onnx_block * H : (onnx_block + 1) * H], want)


def test_refusals_say_what_cannot_be_exported(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"proj_size=2 \(ONNX's LSTM has no projection\)"):
        export_onnx(lstmkit.LSTM(IN, H, proj_size=2), target)
    with pytest.raises(ValueError, match="no projection"):
        export_onnx(torch.nn.LSTM(IN, H, proj_size=2), target)
    with pytest.raises(TypeError, match=r"expected an lstmkit\.LSTM/GRU, .* got Linear"):
        export_onnx(torch.nn.Linear(2, 2), target)
    with pytest.raises(ValueError, match="not fitted yet"):
        export_onnx(SequenceClassifier(), target)
    with pytest.raises(ValueError, match="options of a module's export"):
        export_onnx(SequenceClassifier(), target, lengths=True)
    # a refused export leaves the old file alone, a written one leaves no temporary behind
    assert target.read_bytes() == b"old"
    export_onnx(lstmkit.GRU(IN, H), target)
    assert _recurrent_ops(onnx.load(target)) == ["GRU"]
    assert os.listdir(tmp_path) == ["m.onnx"]


# -- peepholes ----------------------------------------------------------------------------


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _onnx_lstm_spec(x, w, r, b, p, h0, c0, reverse):
    """One direction of ONNX's LSTM, from the operator's equations (f = σ, g = h = tanh):
    gates in the order i, o, f, c; P in the order i, o, f; o reads the new cell C_t."""
    hidden = r.shape[1]
    wb, rb = b[: 4 * hidden], b[4 * hidden :]
    pi, po, pf = np.split(p, 3)
    h, c, ys = h0, c0, [None] * len(x)
    for t in reversed(range(len(x))) if reverse else range(len(x)):
        a = x[t] @ w.T + h @ r.T + wb + rb
        ai, ao, af, ac = np.split(a, 4, axis=-1)
        i = _sigmoid(ai + pi * c)
        f = _sigmoid(af + pf * c)
        c = f * c + i * np.tanh(ac)
        o = _sigmoid(ao + po * c)
        h = o * np.tanh(c)
        ys[t] = h
    return np.stack(ys), h, c


def test_onnxruntime_peephole_lstm_follows_the_onnx_equations():
    """The runtime is the oracle of the peephole test below: first check it against the
    operator's equations written out in NumPy, P included, both directions."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    steps, batch = 6, 4
    arrays = {
        "W": rng.normal(size=(2, 4 * H, IN)),
        "R": rng.normal(size=(2, 4 * H, H)) * 0.5,
        "B": rng.normal(size=(2, 8 * H)),
        "P": rng.normal(size=(2, 3 * H)),
    }
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    node = helper.make_node(
        "LSTM",
        ["x", "W", "R", "B", "", "h0", "c0", "P"],
        ["y", "y_h", "y_c"],
        hidden_size=H,
        direction="bidirectional",
    )
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "peephole",
        [
            helper.make_tensor_value_info("x", f, ["T", "N", IN]),
            helper.make_tensor_value_info("h0", f, [2, "N", H]),
            helper.make_tensor_value_info("c0", f, [2, "N", H]),
        ],
        [
            helper.make_tensor_value_info("y", f, ["T", 2, "N", H]),
            helper.make_tensor_value_info("y_h", f, [2, "N", H]),
            helper.make_tensor_value_info("y_c", f, [2, "N", H]),
        ],
        initializer=[numpy_helper.from_array(v, k) for k, v in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    x = rng.normal(size=(steps, batch, IN)).astype(np.float32)
    h0, c0 = (rng.normal(size=(2, batch, H)).astype(np.float32) for _ in range(2))
    y, y_h, y_c = _session(model).run(None, {"x": x, "h0": h0, "c0": c0})
    for d in range(2):
        want = _onnx_lstm_spec(
            x.astype(np.float64), *(arrays[k][d].astype(np.float64) for k in "WRBP"),
            h0[d].astype(np.float64), c0[d].astype(np.float64), reverse=d == 1,
        )  # fmt: skip
        for name, g, w in zip(("y", "y_h", "y_c"), (y[:, d], y_h[d], y_c[d]), want, strict=True):
            _assert_close(g, w, F32, f"{name} direction {d}")


def test_peephole_lstm_matches_onnxruntime_lstm_with_p():
    """lstmkit's peephole cell against ONNX Runtime's LSTM with P: an independent
    implementation of the same equations (the check above ties it to the spec)."""
    torch.manual_seed(4)
    module = lstmkit.LSTM(IN, H, peephole=True, num_layers=2, bidirectional=True).eval()
    model = to_onnx(module, lengths=True, initial_state=True)
    lstm_nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
    assert len(lstm_nodes) == 2 and all(len(n.input) == 8 and n.input[7] for n in lstm_nodes)
    session = _session(model)
    for steps, batch in SHAPES:
        feeds, args, kw = _inputs(module, steps, batch, lengths=True, states=True)
        got = session.run(None, feeds)
        want = _torch_outputs(module, args, kw)
        _assert_outputs(got, want, F32, f"at (T, N) = {(steps, batch)}")


def test_recurrent_dropout_exports_as_the_plain_cell():
    """Recurrent dropout is training-only: the inference graph is the standard LSTM."""
    torch.manual_seed(5)
    module = lstmkit.LSTM(IN, H, recurrent_dropout=0.3).eval()
    feeds, args, _ = _inputs(module, 5, 2, lengths=False, states=False)
    got = _session(to_onnx(module)).run(None, feeds)
    _assert_outputs(got, _torch_outputs(module, args, {}), F32, "")


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (lstmkit.LSTM, {"layer_norm": True}, "layer_norm=True"),
        (lstmkit.GRU, {"layer_norm": True}, "layer_norm=True"),
        (lstmkit.LSTM, {"zoneout_cell": 0.1}, "zoneout"),
        (lstmkit.GRU, {"zoneout": 0.1}, "zoneout"),
    ],
    ids=["LSTM-layer_norm", "GRU-layer_norm", "LSTM-zoneout_cell", "GRU-zoneout"],
)
def test_variants_without_an_onnx_operator_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"cannot export {cls.__name__} to ONNX: {message}"):
        to_onnx(cls(IN, H, **kwargs))


# -- estimators ---------------------------------------------------------------------------


def _sequences(rng, lengths, channels=2):
    return [rng.normal(size=(n, channels)) for n in lengths]


def _padded(seqs, rng):
    """Raw values padded with junk (the graph must never read past a length)."""
    steps = max(len(s) for s in seqs)
    x = rng.normal(size=(len(seqs), steps, seqs[0].shape[1])).astype(np.float32) * 100
    for n, s in enumerate(seqs):
        x[n, : len(s)] = s
    return {"x": x, "lengths": np.array([len(s) for s in seqs], dtype=np.int64)}


NEW_LENGTHS = [[6, 2, 9], [3, 4, 1, 4, 2]]  # two batch sizes and two padded lengths


def _fit_kwargs(**kwargs):
    return {"hidden_size": 4, "epochs": 2, "progress": False, **kwargs}


def test_classifier_matches_predict_proba():
    rng = np.random.default_rng(6)
    X = _sequences(rng, rng.integers(3, 9, 24))
    y = np.array(["up" if s[:, 0].sum() > 0 else "down" for s in X])
    model = SequenceClassifier(**_fit_kwargs(pooling="last+max+mean")).fit(X, y)
    onnx_model = to_onnx(model)
    assert _recurrent_ops(onnx_model) == ["LSTM"]  # one bidirectional node
    meta = {p.key: p.value for p in onnx_model.metadata_props}
    assert json.loads(meta["lstmkit.classes"]) == model.classes_.tolist()
    session = _session(onnx_model)
    for lengths in NEW_LENGTHS:
        seqs = _sequences(rng, lengths)
        logits, probs = session.run(None, _padded(seqs, rng))
        _assert_close(probs, model.predict_proba(seqs), F32, f"probabilities, lengths {lengths}")
        assert model.classes_[probs.argmax(1)].tolist() == model.predict(seqs).tolist()
        _assert_close(logits, torch.stack(model._raw(seqs)), F32, "logits")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rnn_steps": 3, "conv_steps": 2},
        {"rnn_steps": 2, "conv_steps": 4, "normalize": "sequence", "n_models": 2},
        {"conv_filters": (), "rnn_steps": None, "n_models": 3, "cell": "gru"},
    ],
    ids=["patches-conv", "sequence-norm-ensemble", "no-conv-gru-ensemble"],
)
def test_classifier_recipe_exports(kwargs):
    """The LSTM-FCN recipe: patches of several steps for both branches (strides 2-3 on
    lengths 3-9, last patches partial), the convolutions with their batch norms folded,
    per-sequence standardisation, ensembles (the log of the members' mean softmax)."""
    rng = np.random.default_rng(8)
    X = _sequences(rng, rng.integers(3, 10, 30))
    y = np.array(["up" if s[:, 0].sum() > 0 else "down" for s in X])
    model = SequenceClassifier(**_fit_kwargs(**kwargs)).fit(X, y)
    assert model._fitted["rnn_stride"] > 1 or kwargs.get("rnn_steps") is None
    session = _session(to_onnx(model))
    for lengths in NEW_LENGTHS:
        seqs = _sequences(rng, lengths)
        seqs[0] = seqs[0] * 1e-4  # far quieter than the rest: per sequence, σ at its floor
        logits, probs = session.run(None, _padded(seqs, rng))
        _assert_close(probs, model.predict_proba(seqs), F32, f"probabilities, lengths {lengths}")
        _assert_close(logits, torch.stack(model._raw(seqs)), F32, "logits")


@pytest.mark.parametrize(
    ("kwargs", "targets"),
    [({"cell": "gru", "num_layers": 2, "pooling": "mean"}, 2), ({"output": "sequence"}, 1)],
    ids=["last-gru-L2-mean", "sequence-bilstm"],
)
def test_regressor_matches_predict(kwargs, targets):
    rng = np.random.default_rng(7)
    X = _sequences(rng, rng.integers(3, 9, 24))
    if kwargs.get("output") == "sequence":
        y = [np.cumsum(s[:, 0]) for s in X]
    else:
        y = np.stack([[s.sum(), s[:, 1].max()] for s in X])
    model = SequenceRegressor(**_fit_kwargs(**kwargs)).fit(X, y)
    session = _session(to_onnx(model))
    for lengths in NEW_LENGTHS:
        seqs = _sequences(rng, lengths)
        (pred,) = session.run(None, _padded(seqs, rng))
        want = model.predict(seqs)
        if kwargs.get("output") == "sequence":  # per step, rows past a length are not read
            assert pred.shape == (len(lengths), max(lengths), targets)
            for n, (p, w) in enumerate(zip(pred, want, strict=True)):
                _assert_close(p[: lengths[n], 0], w, F32, f"sequence {n}")
        else:
            _assert_close(pred, want, F32, f"predictions, lengths {lengths}")


def test_tagger_matches_its_network_and_labels():
    rng = np.random.default_rng(8)
    X = _sequences(rng, rng.integers(3, 9, 24))
    tags = [np.where(s[:, 0] > 0, "pos", "neg") for s in X]
    model = SequenceTagger(**_fit_kwargs(cell="gru")).fit(X, tags)
    session = _session(to_onnx(model))
    for lengths in NEW_LENGTHS:
        seqs = _sequences(rng, lengths)
        logits, probs = session.run(None, _padded(seqs, rng))
        for n, (raw, labels) in enumerate(zip(model._raw(seqs), model.predict(seqs), strict=True)):
            _assert_close(logits[n, : lengths[n]], raw, F32, f"logits of sequence {n}")
            assert model.classes_[probs[n, : lengths[n]].argmax(-1)].tolist() == labels.tolist()


def _windows(series, cov, fut, origins, lookback, horizon):
    feeds = {"series": np.stack([series[o - lookback : o] for o in origins])}
    if cov is not None:
        feeds["covariates"] = np.stack([cov[o - lookback : o] for o in origins])
    if fut is not None:
        feeds["future_covariates"] = np.stack([fut[o - lookback : o + horizon] for o in origins])
    return {k: v.astype(np.float32) for k, v in feeds.items()}


@pytest.mark.parametrize(
    ("kwargs", "covariates"),
    [({"horizon": 3, "num_layers": 2}, True), ({"strategy": "recursive", "cell": "gru"}, False)],
    ids=["direct-covariates", "recursive-gru"],
)
def test_forecaster_matches_backtest(kwargs, covariates):
    """One forecast per window: the graph holds the scaling and the level-relative inputs,
    so its output is the forecast on the series' scale, as backtest's."""
    rng = np.random.default_rng(9)
    steps = 90
    t = np.arange(steps)
    series = np.stack([np.sin(t / 4), np.cos(t / 7)], axis=1) + rng.normal(0, 0.1, (steps, 2))
    cov = rng.normal(size=(steps, 1)) if covariates else None
    fut = np.stack([np.sin(t / 3), t % 5], axis=1).astype(float) if covariates else None
    model = Forecaster(lookback=6, bidirectional=True, **_fit_kwargs(**kwargs))
    model.fit(series[:60], covariates=cov if cov is None else cov[:60],
              future_covariates=fut if fut is None else fut[:60])  # fmt: skip
    horizon = model._step_horizon
    session = _session(to_onnx(model))
    for start, every in ((60, 7), (62, 3)):  # two batch sizes
        report = model.backtest(
            series, covariates=cov, future_covariates=fut, start=start, every=every,
            steps=horizon,
        )  # fmt: skip
        feeds = _windows(series, cov, fut, report["origins"], 6, horizon)
        (forecast,) = session.run(None, feeds)
        _assert_close(forecast, report["predictions"], F32, f"forecasts from {start} every {every}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_text_generator_matches_its_network(cell):
    poems = ["春眠不覺曉，處處聞啼鳥。", "床前明月光，疑是地上霜。", "白日依山盡，黃河入海流。"]
    model = TextGenerator(
        cell=cell, num_layers=2, hidden_size=H, embedding_size=4, min_count=1,
        epochs=2, validation=0, progress=False,
    ).fit(poems)  # fmt: skip
    onnx_model = to_onnx(model)
    assert _recurrent_ops(onnx_model) == [cell.upper()] * 2
    meta = {p.key: p.value for p in onnx_model.metadata_props}
    assert json.loads(meta["lstmkit.vocab"]) == model._vocab
    session = _session(onnx_model)
    net = model.net_.eval()
    torch.manual_seed(10)
    for steps, batch in SHAPES:
        tokens = torch.randint(0, len(model._vocab), (batch, steps))
        lengths = torch.randint(1, steps + 1, (batch,))
        h0 = torch.randn(2, batch, H)
        state = (h0, torch.randn(2, batch, H)) if cell == "lstm" else h0
        feeds = {"tokens": tokens.numpy(), "lengths": lengths.numpy(), "h_0": h0.numpy()}
        if cell == "lstm":
            feeds["c_0"] = state[1].numpy()
        got = session.run(None, feeds)
        with torch.no_grad():
            logits, final = net(tokens, lengths, state)
        # logits past a length are the head applied to zeros: compare the real steps
        real = torch.arange(steps)[None] < lengths[:, None]
        got[0], logits = got[0][real.numpy()], logits[real]
        want = [logits, *(final if cell == "lstm" else (final,))]
        _assert_outputs(got, want, F32, f"at (T, N) = {(steps, batch)}")


def test_recurrent_net_alone_with_extra_features():
    torch.manual_seed(11)
    net = RecurrentNet(IN, 2, hidden_size=H, bidirectional=True, pooling="last+mean", extra_size=3)
    net.eval()
    session = _session(to_onnx(net))
    for steps, batch in SHAPES:
        x, extra = torch.randn(batch, steps, IN), torch.randn(batch, 3)
        lengths = torch.randint(1, steps + 1, (batch,))
        feeds = {"x": x.numpy(), "lengths": lengths.numpy(), "extra": extra.numpy()}
        (got,) = session.run(None, feeds)
        with torch.no_grad():
            want = net(x, lengths, extra)
        _assert_close(got, want, F32, f"(T, N) = {(steps, batch)}")


# -- torch.export -------------------------------------------------------------------------


def _flat(result) -> list[torch.Tensor]:
    out, state = result
    return [t.detach() for t in (out, *(state if isinstance(state, tuple) else (state,)))]


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (lstmkit.LSTM, {"num_layers": 2, "bidirectional": True}),
        (lstmkit.GRU, {"batch_first": True}),
        (lstmkit.GRU, {"bidirectional": True, "merge_mode": "sum"}),
        (lstmkit.GRU, {"num_layers": 2, "bidirectional": True}),
    ],
    ids=["BiLSTM-L2", "GRU-bf", "BiGRU-sum", "BiGRU-L2"],
)
def test_torch_export_with_dynamic_batch_and_length(cls, kwargs):
    """Traced twice: first from an empty compile cache, as the first export in a fresh
    process (``torch.compiler.reset``), then again with the cache the first export left,
    so the result cannot depend on which tests ran before in the same worker. The example
    (4, 3, H_in) puts N = 3 on the batch axis of the time-major modules: the reverse h_0
    then sits at storage offset N·H = 3H, the GRU's gate rows, which duck sizing used to
    unify, fixing the batch to 3 on a fresh cache."""
    torch.manual_seed(12)
    module = cls(IN, H, **kwargs)
    example = torch.randn(4, 3, IN)
    torch.compiler.reset()
    programs = {"fresh": export_program(module, example), "warm": export_program(module, example)}
    assert module.training  # the module's own mode is left as it was
    module.eval()
    for cache, program in programs.items():
        for steps, batch in [*SHAPES, (1, 1)]:
            x = torch.randn((batch, steps, IN) if module.batch_first else (steps, batch, IN))
            got = [t.numpy() for t in _flat(program.module()(x))]
            want = _torch_outputs(module, (x,), {})
            _assert_outputs(got, want, F32, f"{cache} cache, at (T, N) = {(steps, batch)}")


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (lstmkit.GRU, {"reset_after": False}),
        (lstmkit.LSTM, {"peephole": True, "layer_norm": True, "zoneout": 0.1}),
    ],
    ids=["GRU-Cho", "LSTM-variants"],
)
def test_torch_export_of_a_python_loop_has_a_fixed_length(cls, kwargs):
    """Configurations only the fused/reference backends run: a Python loop over time."""
    torch.manual_seed(13)
    module = cls(IN, H, **kwargs).eval()
    example = torch.randn(4, 3, IN)
    with pytest.raises(ValueError, match=r"needs the native backend, .* runs 'compiled'"):
        export_program(module, example)
    program = export_program(module, example, dynamic_steps=False)
    for batch in (3, 7):  # the batch stays dynamic
        x = torch.randn(4, batch, IN)
        got = _flat(program.module()(x))
        _assert_outputs([t.numpy() for t in got], _torch_outputs(module, (x,), {}), F32, "")
    with pytest.raises((AssertionError, RuntimeError), match="size"):
        program.module()(torch.randn(5, 3, IN))


def test_torch_export_needs_an_example_of_size_two_on_dynamic_axes():
    module = lstmkit.LSTM(IN, H)
    with pytest.raises(ValueError, match=r"batch >= 2 on axis 1 .* got shape \(4, 1, 3\)"):
        export_program(module, torch.randn(4, 1, IN))
    with pytest.raises(ValueError, match=r"steps >= 2 on axis 0"):
        export_program(module, torch.randn(1, 3, IN))
    assert export_program(module, torch.randn(1, 3, IN), dynamic_steps=False) is not None


def test_a_panel_forecaster_is_refused_with_a_clear_error(short_panel_budget):
    rng = np.random.default_rng(0)
    panel = [10 + rng.normal(0, 1, n) for n in (20, 12)]
    model = Forecaster(horizon=2, hidden_size=4, progress=False).fit(panel)
    with pytest.raises(ValueError, match=r"a global model over a panel .* has no ONNX graph"):
        to_onnx(model)
