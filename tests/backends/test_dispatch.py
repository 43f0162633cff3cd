"""Dispatch: the backend that ``auto`` names is the one that actually runs, and only it.

Oracle: a spy. Every entry of ``lstmkit.backends.BACKENDS`` is replaced by a wrapper
that records its name and delegates, so the test sees which run function was called;
the expectation comes from ``backends.auto_choice`` (the one rule) and, for the cases the
rule states outright, from the rule's own words.
"""

import contextlib

import pytest
import torch

import lstmkit
from lstmkit import backends
from lstmkit.recurrence import kernels

T, N, IN = 3, 2, 4


@pytest.fixture
def calls(monkeypatch):
    """Spy on every backend: the list of names called, in order."""
    seen: list[str] = []
    for name, run in list(backends.BACKENDS.items()):

        def spy(*args, _name=name, _run=run, **kwargs):
            seen.append(_name)
            return _run(*args, **kwargs)

        monkeypatch.setitem(backends.BACKENDS, name, spy)
    return seen


SCENARIOS = {
    "LSTM": lambda: lstmkit.LSTM(IN, 8),
    "LSTM-bi-2layers": lambda: lstmkit.LSTM(IN, 8, num_layers=2, bidirectional=True),
    "LSTM-proj": lambda: lstmkit.LSTM(IN, 8, proj_size=3),
    "LSTM-bi-2layers-sum": lambda: lstmkit.LSTM(
        IN, 8, num_layers=2, bidirectional=True, merge_mode="sum"
    ),
    "LSTM-bi-1layer-mul": lambda: lstmkit.LSTM(IN, 8, bidirectional=True, merge_mode="mul"),
    "GRU-reset_before": lambda: lstmkit.GRU(IN, 8, reset_after=False),
    "GRU-h32": lambda: lstmkit.GRU(IN, 32),
    "GRU-h512": lambda: lstmkit.GRU(IN, 512),
    "GRU-h-threshold": lambda: lstmkit.GRU(IN, backends.FUSED_GRU_MAX_HIDDEN_CPU),
    "GRU-h-threshold+1": lambda: lstmkit.GRU(IN, backends.FUSED_GRU_MAX_HIDDEN_CPU + 1),
}


@pytest.mark.parametrize("grad", [True, False], ids=["training-step", "no_grad"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_auto_runs_exactly_the_backend_it_names(calls, scenario, grad):
    torch.manual_seed(0)
    module = SCENARIOS[scenario]()
    assert module.last_backend is None
    x = torch.randn(T, N, IN)
    with contextlib.nullcontext() if grad else torch.no_grad():
        expected = backends.resolve("auto", module.cfg, x, grad)
        assert module.backend_for(x) == expected
        out, _ = module(x)
    assert calls == [expected]
    assert module.last_backend == expected
    assert out.requires_grad == grad


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("LSTM", "native"),  # the LSTM has oneDNN kernels on CPU: native whenever exact
        ("LSTM-bi-2layers", "native"),
        ("LSTM-bi-1layer-mul", "native"),  # one layer: native merges afterwards
        ("GRU-reset_before", "fused"),  # native cannot compute the Cho GRU
        ("LSTM-bi-2layers-sum", "fused"),  # torch's kernels concatenate between layers
    ],
)
@pytest.mark.parametrize("grad", [True, False], ids=["training-step", "no_grad"])
def test_auto_rule_fixed_cases(calls, scenario, expected, grad):
    module = SCENARIOS[scenario]()
    x = torch.randn(T, N, IN)
    assert backends.auto_choice(module.cfg, x, grad) == expected
    with contextlib.nullcontext() if grad else torch.no_grad():
        module(x)
    assert calls == [{"fused": "compiled"}.get(expected, expected)]  # fused: its compiled loops


@pytest.mark.parametrize("grad", [True, False], ids=["training-step", "no_grad"])
@pytest.mark.parametrize(
    "scenario", ["GRU-h32", "GRU-h512", "GRU-h-threshold", "GRU-h-threshold+1"]
)
def test_auto_gru_on_cpu_follows_the_hidden_size_threshold(calls, scenario, grad):
    """The rule: a GRU on CPU runs fused up to FUSED_GRU_MAX_HIDDEN_CPU, with or without
    gradients."""
    module = SCENARIOS[scenario]()
    x = torch.randn(T, N, IN)
    expected = "fused" if module.hidden_size <= backends.FUSED_GRU_MAX_HIDDEN_CPU else "native"
    with contextlib.nullcontext() if grad else torch.no_grad():
        out, _ = module(x)
    assert out.requires_grad == grad
    named = {"fused": "compiled", "native": "native"}[expected]
    assert calls == [named]
    assert module.last_backend == named


@pytest.mark.parametrize("grad", [True, False], ids=["training-step", "no_grad"])
@pytest.mark.parametrize("hidden", [8, backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU + 1])
@pytest.mark.parametrize("lengths", ["unequal", "all-full", "none"])
def test_auto_lstm_runs_native_except_to_train_on_unequal_lengths(calls, hidden, grad, lengths):
    """The rule: an LSTM that native can compute runs native on CPU — except a training
    step on unequal lengths up to FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU, which runs the compiled
    loops; lengths that pad nothing count as none."""
    module = lstmkit.LSTM(IN, hidden, bidirectional=True, batch_first=True)
    x = torch.randn(N, 5, IN)
    given = {"unequal": torch.tensor([5, 2]), "all-full": torch.full((N,), 5), "none": None}
    compiled = (
        grad and lengths == "unequal" and hidden <= backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU
    )
    expected = "compiled" if compiled else "native"
    with contextlib.nullcontext() if grad else torch.no_grad():
        assert module.backend_for(x, lengths=given[lengths]) == expected
        module(x, lengths=given[lengths])
    assert calls == [expected]
    assert module.last_backend == expected


def test_auto_lstm_on_unequal_lengths_at_the_threshold_trains_compiled(calls):
    module = lstmkit.LSTM(IN, backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU)
    x = torch.randn(5, N, IN)
    module(x, lengths=torch.tensor([5, 3]))[0].sum().backward()
    assert calls == ["compiled"]
    assert module.weight_hh_l0.grad is not None


@pytest.mark.parametrize("grad", [True, False], ids=["training-step", "no_grad"])
@pytest.mark.parametrize(
    "hidden",
    [
        8,
        backends.FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU,
        backends.FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU + 1,
    ],
)
def test_auto_lstm_with_a_projection_runs_fused_to_train(calls, hidden, grad):
    """The rule: an LSTM with a projection on CPU (torch has no oneDNN kernel for it) runs
    fused in training, and in inference up to FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU."""
    module = lstmkit.LSTM(IN, hidden, proj_size=3, bidirectional=True)
    x = torch.randn(T, N, IN)
    fused = grad or hidden <= backends.FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU
    expected = "compiled" if fused else "native"
    with contextlib.nullcontext() if grad else torch.no_grad():
        assert module.backend_for(x) == expected
        module(x)
    assert calls == [expected]
    assert module.last_backend == expected


def test_needs_grad_follows_the_inputs_when_parameters_are_frozen(calls):
    """With frozen parameters only an input that requires grad makes it a training step."""
    module = lstmkit.GRU(IN, 32).requires_grad_(False)
    x = torch.randn(T, N, IN)
    module(x)
    module(x.requires_grad_())
    assert calls == [
        backends.resolve("auto", module.cfg, x, False),
        backends.resolve("auto", module.cfg, x, True),
    ]


@pytest.mark.parametrize("backend", ["reference", "fused", "native"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_explicit_backend_runs_only_itself(calls, mode, backend):
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(IN, 8, num_layers=2, bidirectional=True, backend=backend)
    x = torch.randn(T, N, IN)
    named = {"fused": "compiled"}.get(backend, backend)  # fused: its compiled loops here
    assert module.backend_for(x) == named
    module(x)
    module(x, lengths=[3, 1])
    assert calls == [named, named]
    assert module.last_backend == named


def test_lengths_that_pad_nothing_reach_no_backend(monkeypatch):
    """Full lengths are dropped before dispatch (no packing); the result is unchanged."""
    seen = []
    run = backends.BACKENDS["native"]

    def spy(cfg, x, h0, c0, weights, lengths, training):
        seen.append(lengths)
        return run(cfg, x, h0, c0, weights, lengths, training)

    monkeypatch.setitem(backends.BACKENDS, "native", spy)
    module = lstmkit.LSTM(IN, 8, bidirectional=True, backend="native")
    x = torch.randn(T, N, IN)
    full, _ = module(x, lengths=[T, T])
    plain, _ = module(x)
    short, _ = module(x, lengths=[T, 1])
    assert seen[:2] == [None, None] and seen[2].tolist() == [T, 1]
    torch.testing.assert_close(full, plain, rtol=0, atol=0)
    assert not torch.equal(short, plain)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        pytest.param(
            lambda: lstmkit.GRU(IN, 8, reset_after=False, backend="native"),
            r"backend='native' cannot run this configuration: .*reset_after",
            id="GRU-reset_before",
        ),
        pytest.param(
            lambda: lstmkit.LSTM(
                IN, 8, num_layers=2, bidirectional=True, merge_mode="sum", backend="native"
            ),
            r"backend='native' cannot run this configuration: .*concatenate the directions"
            r".*merge_mode='sum' with num_layers=2",
            id="LSTM-bi-2layers-sum",
        ),
        pytest.param(
            lambda: lstmkit.GRU(
                IN, 8, num_layers=2, bidirectional=True, merge_mode="mean", backend="native"
            ),
            r"backend='native' cannot run this configuration: "
            r".*merge_mode='mean' with num_layers=2",
            id="GRU-bi-2layers-mean",
        ),
    ],
)
def test_explicit_native_that_cannot_run_raises(calls, factory, match):
    module = factory()
    x = torch.randn(T, N, IN)
    with pytest.raises(ValueError, match=match):
        module.backend_for(x)
    with pytest.raises(ValueError, match=match):
        module(x)
    assert calls == []
    assert module.last_backend is None


@pytest.mark.parametrize("name", ["cudnn", "Native", "", "fast"])
@pytest.mark.parametrize("cls", [lstmkit.LSTM, lstmkit.GRU])
def test_invalid_backend_name_raises(cls, name):
    with pytest.raises(
        ValueError,
        match=rf"backend: expected one of auto, fused, reference, compiled, python-steps, "
        rf"native, got {name!r}",
    ):
        cls(IN, 8, backend=name)


def test_no_silent_fallback_when_the_chosen_backend_fails(monkeypatch, calls):
    """If the backend auto chose fails, the error surfaces; no other backend is tried."""
    module = lstmkit.LSTM(IN, 8)
    x = torch.randn(T, N, IN)
    chosen = module.backend_for(x)

    def broken(*args, **kwargs):
        calls.append(chosen)
        raise RuntimeError("kernel failed")

    monkeypatch.setitem(backends.BACKENDS, chosen, broken)
    with pytest.raises(RuntimeError, match="kernel failed"):
        module(x)
    assert calls == [chosen]
    assert module.last_backend is None


def test_gate_activations_do_not_change_last_backend(calls):
    """Introspection runs the reference cells and leaves the dispatch record alone."""
    module = lstmkit.LSTM(IN, 8)
    x = torch.randn(T, N, IN)
    module(x)
    module.gate_activations(x)
    assert calls == [module.last_backend]


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_fused_implementations_by_name(calls, mode):
    """compiled and python-steps can be named: each runs itself (the same numbers), fused
    follows LSTMKIT_KERNELS, and compiled refuses what its loops cannot run."""
    torch.manual_seed(0)
    cls = getattr(lstmkit, mode)
    x = torch.randn(T, N, IN, dtype=torch.float64)
    outs, weights = {}, cls(IN, 8, bidirectional=True, dtype=torch.float64).state_dict()
    for name in ("compiled", "python-steps"):
        module = cls(IN, 8, bidirectional=True, backend=name, dtype=torch.float64)
        module.load_state_dict(weights)
        assert module.backend_for(x) == name
        outs[name], _ = module(x, lengths=[T, 2])
        assert module.last_backend == name
    assert calls == ["compiled", "python-steps"]
    torch.testing.assert_close(outs["compiled"], outs["python-steps"], rtol=0, atol=1e-12)
    fused = cls(IN, 8, backend="fused")
    with kernels.use("python"):
        assert fused.backend_for(torch.randn(T, N, IN)) == "python-steps"
    assert fused.backend_for(torch.randn(T, N, IN)) == "compiled"
    with pytest.raises(ValueError, match="compiled loops are CPU kernels for float32 and float64"):
        cls(IN, 8, backend="compiled", dtype=torch.bfloat16)(torch.randn(T, N, IN).bfloat16())


def test_a_projection_runs_on_both_step_implementations(calls):
    """The LSTM with a projection runs the compiled loops under fused (and when named), and
    python-steps when named; the same numbers (their oracle, torch.nn, is in test_parity)."""
    torch.manual_seed(0)
    x = torch.randn(T, N, IN, dtype=torch.float64, requires_grad=True)
    weights = lstmkit.LSTM(IN, 8, proj_size=3, dtype=torch.float64).state_dict()
    results = {}
    for name in ("fused", "compiled", "python-steps"):
        module = lstmkit.LSTM(IN, 8, proj_size=3, backend=name, dtype=torch.float64)
        module.load_state_dict(weights)
        out, _ = module(x, lengths=[T, 2])
        results[name] = (out, *torch.autograd.grad(out.sin().sum(), [x, *module.parameters()]))
    assert calls == ["compiled", "compiled", "python-steps"]
    for a, b in zip(results["compiled"], results["python-steps"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
