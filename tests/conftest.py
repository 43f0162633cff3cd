"""Fixtures and settings for the whole suite; the shared helpers are in helpers.py."""

import pytest
import torch
from helpers import FUSED_STEPS

from lstmkit.recurrence import kernels

# Two xdist workers on two cores: one intra-op thread each keeps them from fighting.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def variant_steps(request):
    """Runs a test whose ``backend`` or ``kernel_steps`` parameter names a step implementation
    under :func:`lstmkit.recurrence.kernels.use`."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    steps = params.get("kernel_steps") or FUSED_STEPS.get(params.get("backend"))
    if steps is None:
        yield None
        return
    with kernels.use(steps):
        yield steps


def pytest_configure(config):
    # torch.nn.LSTM with proj_size on CPU notes that oneDNN is not used; not our concern.
    config.addinivalue_line(
        "filterwarnings", "ignore:LSTM with projections is not supported with oneDNN:UserWarning"
    )


@pytest.fixture
def short_panel_budget(monkeypatch):
    """Global-forecaster fits of 40 optimizer steps on one thread (tests of panels)."""
    from lstmkit.tasks import global_forecast

    monkeypatch.setattr(global_forecast, "MIN_STEPS", 40)
    monkeypatch.setattr(global_forecast, "MAX_STEPS", 40)
    torch.set_num_threads(1)
