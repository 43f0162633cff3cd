"""One self-contained HTML report: styles inline, figures embedded as PNG data URIs, no
script and nothing fetched from the network. Every user-supplied string (file and column
names, labels, parameters) goes through Jinja2's autoescaping.

Build it section by section — :meth:`Report.text`, :meth:`Report.equations`,
:meth:`Report.table`, :meth:`Report.metrics`, :meth:`Report.figure` — then
:meth:`Report.render`.
"""

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import jinja2

LSTM_EQUATIONS = """\
i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)        input gate
f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)        forget gate
g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)     candidate C̃_t
o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)        output gate
C_t = f_t ⊙ C_{t−1} + i_t ⊙ g_t                        cell state
h_t = o_t ⊙ tanh(C_t)                                  hidden state
BiLSTM: H_t = [h_t ; h′_t], h′ the same cell run from t = T back to 1"""

GRU_EQUATIONS = """\
r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)        reset gate
z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)        update gate
n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))   candidate (reset after)
h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}"""

_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; }
figure { margin: 0.5rem 0; } img { max-width: 100%; }
figcaption { font-size: 0.85rem; color: #555; }
</style></head>
<body>
<h1>{{ title }}</h1>
{% for s in sections %}<section>
<h2>{{ s.heading }}</h2>
{% if s.kind == "text" %}{% for p in s.body %}<p>{{ p }}</p>{% endfor %}
{% elif s.kind == "pre" %}<pre>{{ s.body }}</pre>
{% elif s.kind == "table" %}<table><thead><tr>
{% for c in s.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in s.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% elif s.kind == "figure" %}<figure>
<img alt="{{ s.heading }}" src="data:image/png;base64,{{ s.body }}">
{% if s.caption %}<figcaption>{{ s.caption }}</figcaption>{% endif %}</figure>
{% endif %}</section>
{% endfor %}
</body></html>
"""
)


def _cell(value) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


@dataclass
class _Section:
    kind: str
    heading: str
    body: object = None
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    caption: str = ""


@dataclass
class Report:
    """A report under construction; ``render()`` gives the HTML text."""

    title: str
    sections: list[_Section] = field(default_factory=list)

    def text(self, heading: str, *paragraphs: str) -> "Report":
        self.sections.append(_Section("text", heading, list(paragraphs)))
        return self

    def equations(self, heading: str, text: str) -> "Report":
        self.sections.append(_Section("pre", heading, text))
        return self

    def table(self, heading: str, columns: Sequence[str], rows: Sequence[Sequence]) -> "Report":
        cells = [[_cell(v) for v in row] for row in rows]
        self.sections.append(_Section("table", heading, columns=list(columns), rows=cells))
        return self

    def metrics(self, heading: str, metrics: Mapping[str, Mapping]) -> "Report":
        """A table of models (rows) × scalar metrics (columns): the model and its baselines."""
        names = [k for k, v in next(iter(metrics.values())).items() if isinstance(v, int | float)]
        rows = [[model, *(m.get(k, float("nan")) for k in names)] for model, m in metrics.items()]
        return self.table(heading, ["model", *names], rows)

    def figure(self, heading: str, png: bytes, caption: str = "") -> "Report":
        encoded = base64.b64encode(png).decode("ascii")
        self.sections.append(_Section("figure", heading, encoded, caption=caption))
        return self

    def render(self) -> str:
        return _TEMPLATE.render(title=self.title, sections=self.sections)
