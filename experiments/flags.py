"""argparse with one-line errors and the types the commands share; no JAX, so that any
command (and a benchmark's gensim process) may import it."""

from __future__ import annotations

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors on one line (its own prints the usage first)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def at_least_one(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
