"""argparse with one-line errors and the types the commands share; no JAX, so that any
command (and a benchmark's gensim process) may import it."""

from __future__ import annotations

import argparse
import difflib
import sys


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (its own prints the usage first), flags spelt out
    in full (an abbreviation is not taken for a flag it might mean), and a misspelt flag
    answered with the nearest ones, or a flag of an earlier version with its new name."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("prog", _command())
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.renamed: dict[str, str] = {}
        """Flags of earlier versions -> their names now."""

    def error(self, message: str):
        self.exit(2, f"error: {message}{self._did_you_mean(message)} (see --help)\n")

    def _did_you_mean(self, message: str) -> str:
        if not message.startswith("unrecognized arguments: "):
            return ""
        known = [flag for action in self._actions for flag in action.option_strings]
        given = [word.split("=")[0] for word in message.split(": ", 1)[1].split()]
        moved = [f"{word} is {self.renamed[word]} now" for word in given if word in self.renamed]
        if moved:
            return "; " + "; ".join(moved)
        near = [m for word in given for m in difflib.get_close_matches(word, known, n=1)]
        return f"; did you mean {' or '.join(dict.fromkeys(near))}?" if near else ""


def at_least_one(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def summary(doc: str) -> str:
    """A module docstring's first paragraph on one line: a command's --help description."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _command() -> str | None:
    """How the running command was started, ``python -m experiments.train`` (None: a script,
    which argparse names itself)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None else None
