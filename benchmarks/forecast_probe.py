"""A quick probe of the global Forecaster on one M3 or Tourism subset — not a benchmark (no
peers; see forecast_competitions.py), the tool that chose the panel defaults
(docs/forecasting.md):

    python forecast_probe.py m3-quarterly
    python forecast_probe.py m3-quarterly --options "{'lr': 3e-3}" --steps 1000 --validation 0.2
    python forecast_probe.py tourism-monthly --options "{'deseasonalize': False}"
    python forecast_probe.py m3-yearly --no-window-scale
    python forecast_probe.py m3-yearly --recent 1.5       # N-BEATS' L_H: recent origins only
    python forecast_probe.py m3-yearly --log              # fit log(y), forecast exp
    python forecast_probe.py m3-yearly --damping          # damped increments, val vs test

``--steps`` fixes the optimizer steps (else the default budget rule), ``--no-window-scale``
turns off the per-window spread normalisation. ``--damping`` scores the median forecast
with its increments damped, m'_k = y_T + Σ_{j≤k} φ^{j-1} (m_j − m_{j-1}) (m_0 = y_T), for
a grid of φ, on the test and on a validation tail (a second fit without each series' last
H points; series shorter than H + 3 are fitted whole and not scored). Prints one JSON line:
MASE and sMAPE of the median, the 80 % interval's coverage, and the naive forecast's MASE
and sMAPE beside them.
"""

import argparse
import ast
import json
import time

import numpy as np
import torch
from forecast_competitions import SUBSETS, load_subset

import lstmkit.tasks.global_forecast as global_forecast
from lstmkit.tasks import Forecaster
from lstmkit.train.forecast_metrics import panel_metrics


def recent_windows(share: float, base):
    """PanelWindows whose training origins are the last ``share`` × H of each series' (N-BEATS'
    L_H): windows cut at the first ``ends - share·H`` origins are left out."""

    class Recent(base):
        def __init__(self, series, ends, lookback, horizon, *args, **kwargs):
            super().__init__(series, ends, lookback, horizon, *args, **kwargs)
            self.first = np.maximum(self.ends - round(share * horizon), 1)
            self.counts = np.maximum(self.ends - self.first, 0)
            self.cumulative = np.cumsum(self.counts)

        def locate(self, index):
            series = np.searchsorted(self.cumulative, index, side="right")
            origin = self.first[series] + index - (self.cumulative[series] - self.counts[series])
            return series, origin

    return Recent


DAMPING = (1.0, 0.97, 0.94, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5)


def damped(path: np.ndarray, last: float, phi: float) -> np.ndarray:
    """The forecast ``path`` with its step-to-step increments damped by φ^(k-1)."""
    steps = np.diff(np.concatenate([[last], path]))
    return last + np.cumsum(steps * phi ** np.arange(len(steps)))


def damping_scores(actuals, medians, insamples, season: int) -> dict[float, float]:
    """MASE of the damped medians for each φ of :data:`DAMPING`."""
    return {
        phi: round(
            panel_metrics(
                actuals,
                [damped(p, x[-1], phi) for p, x in zip(medians, insamples, strict=True)],
                insamples,
                season,
            )["mase"],
            4,
        )
        for phi in DAMPING
    }


def validation_damping(train, horizon: int, season: int, options: dict) -> dict[float, float]:
    """:func:`damping_scores` on each series' last ``horizon`` points of the training part."""
    scored = [i for i, x in enumerate(train) if len(x) >= horizon + 3]
    cut = [x[:-horizon] if len(x) >= horizon + 3 else x for x in train]
    model = Forecaster(horizon=horizon, season=season, progress=False, **options).fit(cut)
    medians = [a[:, 1] for a in model.predict(quantiles=(0.1, 0.5, 0.9))]
    return damping_scores(
        [train[i][-horizon:] for i in scored],
        [medians[i] for i in scored],
        [cut[i] for i in scored],
        season,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("subset", choices=tuple(SUBSETS))
    parser.add_argument("--series", type=int, help="the first N series only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--options", default="{}", help="Forecaster keywords, a dict literal")
    parser.add_argument("--validation", type=float, default=0.0)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--no-window-scale", action="store_true")
    parser.add_argument(
        "--recent", type=float, help="train only on origins within the last RECENT × H points"
    )
    parser.add_argument(
        "--log", action="store_true", help="fit on log(y) (positive series), forecast exp(·)"
    )
    parser.add_argument("--damping", action="store_true", help="damped medians, val and test")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.steps:
        global_forecast.MIN_STEPS = global_forecast.MAX_STEPS = args.steps
    global_forecast.WINDOW_SCALE = not args.no_window_scale
    if args.recent:
        global_forecast.PanelWindows = recent_windows(args.recent, global_forecast.PanelWindows)
    options = ast.literal_eval(args.options)
    data = load_subset(args.subset, args.series)
    h, m = data["horizon"], data["season"]
    train, test = data["insamples"], data["actuals"]
    began, cpu = time.perf_counter(), time.process_time()
    model = Forecaster(horizon=h, season=m, progress=False, **options)
    model.fit([np.log(x) for x in train] if args.log else train, validation=args.validation)
    q = model.predict(quantiles=(0.1, 0.5, 0.9))
    if args.log:  # quantiles commute with a monotone map
        q = [np.exp(a) for a in q]
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    scores = panel_metrics(
        test,
        [a[:, 1] for a in q],
        train,
        m,
        lower=[a[:, 0] for a in q],
        upper=[a[:, 2] for a in q],
    )
    naive = panel_metrics(test, [np.repeat(x[-1], h) for x in train], train, m)
    row = {
        "subset": args.subset,
        "series": len(train),
        "options": options,
        "validation": args.validation,
        "steps": args.steps,
        "window_scale": not args.no_window_scale,
        "recent": args.recent,
        "log": args.log,
        "epochs": len(model.history_.epochs),
        "mase": round(scores["mase"], 3),
        "smape": round(scores["smape"], 2),
        "coverage": round(scores["coverage"], 3),
        "naive_mase": round(naive["mase"], 3),
        "naive_smape": round(naive["smape"], 2),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
    }
    if args.damping:
        row["damping_test"] = damping_scores(test, [a[:, 1] for a in q], train, m)
        row["damping_validation"] = validation_damping(train, h, m, options)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
