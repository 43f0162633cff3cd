"""``lstmkit.runs.generate``: train a character-level poem writer on a corpus (or load a
saved one) and write poems; the validation perplexity beside the unigram model's."""

from lstmkit.data import load_dataset, read_poems
from lstmkit.report import figures
from lstmkit.report.html import Report
from lstmkit.runs.common import Interrupted, RunResult, cell_options, start
from lstmkit.tasks import TextGenerator
from lstmkit.train.loop import interrupted


def generate(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit generate`` command in one call: ``generate(corpus="tang300", n_poems=3)``."""
    run = start("generate", options, out, None, quiet, say)
    p = run.options
    with run.opened():
        metrics = {}
        if p["model_dir"]:
            model = TextGenerator.load(p["model_dir"])
        else:
            poems = load_dataset("tang300") if p["corpus"] == "tang300" else read_poems(p["corpus"])
            model = TextGenerator(
                epochs=p["epochs"],
                seed=p["seed"],
                progress=False if quiet else None,
                cell_options=cell_options(p) or None,
            )
            model.fit(poems)
            if interrupted(model.history_):
                where = "memory" if run.dir is None else run.dir.path
                raise Interrupted(
                    f"interrupted after epoch {len(model.history_.epochs)}; nothing was written "
                    f"to {where} but its config.toml (generate keeps no checkpoint: run it again)"
                )
            pp = model.perplexity(model.validation_poems_)
            metrics = {name: {"perplexity": pp[name]} for name in ("model", "unigram")}
            run.say(f"validation perplexity {pp['model']:.1f} (unigram {pp['unigram']:.1f})")
        written = [
            model.generate(
                opening=p["opening"],
                acrostic=p["acrostic"],
                temperature=p["temperature"],
                top_k=p["top_k"],
                seed=p["seed"] + k,
            )
            for k in range(p["n_poems"])
        ]
        for poem in written:
            run.say(poem)
        report = Report(f"lstmkit generate: {p['model_dir'] or p['corpus']}")
        report.text("Poems", *written)
        figs = {}
        if metrics:
            report.metrics("Validation perplexity beside the unigram model", metrics)
            figs["learning_curves.png"] = figures.learning_curves(model.history_.epochs)
            report.figure("Learning curves", figs["learning_curves.png"])
        report.table("Model", ["option", "value"], list(model.describe().items()))
        return run.finished(
            metrics=metrics or None,
            models={"model": model} if metrics else {},
            draw=lambda: (report, figs),
            files={"poems.txt": "\n".join(written) + "\n"},
            payload={"metrics": metrics, "poems": written},
        )
