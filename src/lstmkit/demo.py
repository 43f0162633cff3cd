"""The main job, for now: a BiLSTM forecaster on the built-in Airline series.

This is the placeholder demo of the engine issue; the full ``lstmkit demo`` (tasks, WOA,
report) replaces it when the CLI lands. It does real work:

1. checks that the fused backend (our BPTT) and torch's native kernels give the same
   output and gradients on the model it is about to train;
2. trains a bidirectional ``lstmkit.LSTM`` + linear head to forecast the next month's
   year-over-year change in log passengers from the last 13 months (level removed, scale
   fitted on the training months only); the forecast is that change applied to the
   value of the same month last year;
3. reports one-step-ahead RMSE on the last 24 months beside the seasonal-naive baseline
   (same month last year), in passengers (thousands).
"""

import sys
import time

import numpy as np
import torch
from torch import nn

from lstmkit import LSTM
from lstmkit.data import load_airline

WINDOW, TEST_MONTHS, SEASON = 12, 24, 12


class _Forecaster(nn.Module):
    def __init__(self, hidden: int, backend: str) -> None:
        super().__init__()
        self.rnn = LSTM(1, hidden, batch_first=True, bidirectional=True, backend=backend)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def _windows(logs: np.ndarray, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each target month t in [start, stop): the last 13 months of log values minus the
    log value of month t-12 (level removed), and the target log y_t - log y_{t-12}: the
    model learns the year-over-year change on top of the seasonal-naive forecast."""
    idx = np.arange(max(start, WINDOW + 1), stop)
    x = np.stack([logs[t - WINDOW - 1 : t] - logs[t - SEASON] for t in idx])[..., None]
    y = logs[idx] - logs[idx - SEASON]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def _backend_check(model: _Forecaster, x: torch.Tensor) -> float:
    """Max abs difference of output and input-gradient between fused and native."""
    results = []
    for backend in ("fused", "native"):
        model.rnn.backend = backend
        xx = x.clone().requires_grad_()
        out = model(xx)
        (grad,) = torch.autograd.grad(out.sum(), xx)
        results.append((out.detach(), grad))
    model.rnn.backend = "auto"
    return max(float((a - b).abs().max()) for a, b in zip(*results, strict=True))


def run(epochs: int, hidden: int, seed: int) -> dict:
    months, values = load_airline()
    torch.manual_seed(seed)
    logs = np.log(values)
    split = len(values) - TEST_MONTHS
    x_train, y_train = _windows(logs, 0, split)
    x_test, _ = _windows(logs, split, len(values))
    scale = float(y_train.std())  # fitted on the training months only
    x_train, y_train, x_test = x_train / scale, y_train / scale, x_test / scale

    model = _Forecaster(hidden, backend="auto")
    check = _backend_check(model, x_train)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = nn.functional.mse_loss(model(x_train), y_train)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        change = model(x_test).numpy().astype(np.float64) * scale
    naive = values[split - SEASON : len(values) - SEASON]
    pred = naive * np.exp(change)
    actual = values[split:]

    def rmse(a):
        return float(np.sqrt(np.mean((a - actual) ** 2)))

    return {
        "test_months": f"{months[split]}..{months[-1]}",
        "bilstm_rmse": rmse(pred),
        "seasonal_naive_rmse": rmse(naive),
        "final_train_mse_scaled": float(loss.detach()),
        "train_seconds": seconds,
        "epochs": epochs,
        "fused_vs_native_max_abs_diff": check,
        "backend_used_in_training": model.rnn.last_backend,
    }


def report(r: dict) -> str:
    """The demo's result as the lines it prints."""
    return "\n".join(
        [
            "lstmkit demo: BiLSTM forecaster, Airline passengers (built-in), one month ahead",
            f"  engine check   fused BPTT vs torch native, max abs diff: "
            f"{r['fused_vs_native_max_abs_diff']:.2e}",
            f"  training       {r['epochs']} epochs in {r['train_seconds']:.1f} s "
            f"(backend {r['backend_used_in_training']}), final MSE "
            f"{r['final_train_mse_scaled']:.4f}",
            f"  test {r['test_months']}: RMSE BiLSTM {r['bilstm_rmse']:.1f}  vs  "
            f"seasonal naive (m=12) {r['seasonal_naive_rmse']:.1f}  (thousands of passengers)",
        ]
    )


if __name__ == "__main__":
    from lstmkit.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
