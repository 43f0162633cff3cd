"""Poem corpora in the chinese-poetry project's JSON layouts (or plain text, one poem per
line), for the character-level language model of :mod:`lstmkit.tasks.text`."""

import json
import os
from pathlib import Path

from lstmkit.messages import short_errors

_SKIP = set("□（）()[]《》_")


def _poems_from_json(data, source: str) -> list[str]:
    """Poems from the chinese-poetry layouts: a list of {"paragraphs": [...]}, or the
    唐诗三百首 file {"content": [{"type", "content": [{"paragraphs"}...]}...]}."""
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        groups = data["content"]
        if not all(isinstance(g, dict) and isinstance(g.get("content", []), list) for g in groups):
            raise ValueError(f"{source}: expected 'content' groups with a 'content' list of poems")
        items = [p for group in groups for p in group.get("content", [])]
    elif isinstance(data, list):
        items = data
    else:
        raise ValueError(
            f"{source}: expected a list of poems or a 'content' list, got {type(data).__name__}"
        )
    poems = []
    for item in items:
        lines = item.get("paragraphs") if isinstance(item, dict) else None
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ValueError(
                f"{source}: expected poems with a 'paragraphs' list of strings, got {item!r:.80}"
            )
        poems.append("".join(lines))
    return poems


@short_errors
def read_poems(path: str | os.PathLike) -> list[str]:
    """Poems from a JSON file, a directory of JSON files, or a UTF-8 text file (one per line).
    Poems with editorial marks (□, brackets) are left out, as in the classic exercise."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ValueError(f"{path}: expected .json poem files in the directory, found none")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"{path}: expected a poem file or directory, got no such path")
    poems: list[str] = []
    for file in files:
        try:
            text = file.read_text("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{file}: expected UTF-8 text, got undecodable bytes") from err
        if file.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as err:  # not JSON, or a number too long to convert
                raise ValueError(f"{file}: expected JSON, got {str(err)[:200]}") from None
            except RecursionError:
                raise ValueError(f"{file}: expected JSON, got values nested too deeply") from None
            poems.extend(_poems_from_json(data, str(file)))
        else:
            poems.extend(line.strip() for line in text.splitlines())
    poems = [p for p in poems if p and not (set(p) & _SKIP)]
    if not poems:
        raise ValueError(f"{path}: expected at least one poem, found none")
    return poems
