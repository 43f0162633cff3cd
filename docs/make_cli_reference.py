"""Regenerate docs/cli.md from the commands' --help: python docs/make_cli_reference.py"""

from pathlib import Path

from click.testing import CliRunner

from lstmkit.cli import cli

INTRO = """# Command-line reference

Generated from `lstmkit <command> --help` by `python docs/make_cli_reference.py` (a test
checks that every command and option is here). Exit codes: 0 success; 2 bad usage or bad
input (bad input: one line naming the problem; bad usage: click's usage line, a hint and the
error; no traceback unless `--debug`); 1 internal error; 130 interrupted (training runs
print how to `--resume`).

Options of a command can also come from a TOML file, `--config run.toml`, whose keys are the
long option names (`hidden-size = 32`) or the saved names (`hidden_size`); flags given on the
command line override it. Every run saves its resolved options as `config.toml` in its run
directory, and `--resume DIR` continues an interrupted training run with them.
"""


def render() -> str:
    runner = CliRunner()
    parts = [INTRO]
    for args, title in [([], "lstmkit")] + [([n], f"lstmkit {n}") for n in sorted(cli.commands)]:
        text = runner.invoke(cli, [*args, "--help"], prog_name="lstmkit", terminal_width=100)
        parts += [f"## {title}", "", "```text", text.output.rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(render())
