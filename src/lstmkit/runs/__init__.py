"""The application layer: one function per command of the CLI, each a whole run in one call.

``lstmkit.runs.forecast(data="airline", horizon=12)`` does what ``lstmkit forecast --data
airline --horizon 12`` does: it resolves the data, makes the test split, fits, evaluates
beside every baseline, builds the predictions table and the report, writes the run
directory, and returns a :class:`RunResult` (metrics, predictions, model, report, figures).
The CLI parses options, calls one of these and prints; the options and the four run keywords
(``out``, ``resume``, ``quiet``, ``say``) are described in :mod:`lstmkit.runs.common`.

The data flows one way: CLI → runs → tasks (estimators) → nn → backends → recurrence →
kernels, and the results back through report.
"""

from lstmkit.runs.common import DEFAULTS, Interrupted, RunResult, Table
from lstmkit.runs.demo import demo
from lstmkit.runs.forecast import forecast
from lstmkit.runs.generate import generate
from lstmkit.runs.saved import evaluate, explain, predict
from lstmkit.runs.sequence import classify, regress, tag
from lstmkit.runs.tuning import compare, tune

__all__ = [
    "DEFAULTS",
    "Interrupted",
    "RunResult",
    "Table",
    "classify",
    "compare",
    "demo",
    "evaluate",
    "explain",
    "forecast",
    "generate",
    "predict",
    "regress",
    "tag",
    "tune",
]
