"""Every command the README and the docs show names a module that exists and flags it takes,
and the README's first screen holds the two set-up commands."""

from __future__ import annotations

import importlib
import re
import shlex

import pytest

from tests.helpers import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for every ``python -m experiments.X`` or ``benchmarks.X`` command in a
    code block or inline code, its continuation lines joined and its comment dropped."""
    found = []
    for page in PAGES:
        text = page.read_text().replace("\\\n", " ")
        for match in re.finditer(r"python -m ((?:experiments|benchmarks)\.\w+)([^`\n#]*)", text):
            found.append((page.name, f"{match.group(1)}{match.group(2)}".strip().rstrip('"')))
    return found


COMMANDS = shown_commands()


def test_the_first_screen_holds_the_two_set_up_commands():
    first = (REPO / "README.md").read_text().splitlines()[:8]
    assert any("pip install -e . && python -m experiments.ptb_skipgram" in line for line in first)
    assert any('pip install -e ".[test]" && pytest' in line for line in first)
    assert len((REPO / "README.md").read_text().splitlines()) < 250, "a guide, not a reference"


@pytest.mark.parametrize("page, command", COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_a_shown_command_parses(page, command):
    module_name, *argv = shlex.split(command)
    module = importlib.import_module(module_name)
    parse = getattr(module, "parse_args", None)
    assert parse is not None, f"{module_name} has no parse_args"
    argv = [arg for arg in argv if not arg.startswith("$") and arg not in ("&", "|", ";")]
    try:
        parse(argv)
    except SystemExit as exit_:
        assert exit_.code == 0 and "--help" in argv, f"{page}: {command} does not parse"
