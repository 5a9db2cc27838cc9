"""Helpers shared by the experiment scripts: command-line flags for Config, run directories,
one-line errors and warnings, stopping on a signal, result files."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax

from w2v_jax.config import (
    LAYOUTS,
    NOISE_SHARING,
    OPTIMIZERS,
    PRESETS,
    SHUFFLES,
    SUBSAMPLE_FORMULAS,
    Config,
    preset,
)

RUNS = Path("runs")
"""Where a user's runs go unless told otherwise (ignored by git); the committed results/ are
written only when a command is pointed there (README: Refreshing the committed results)."""


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


def run_name(config: Config) -> str:
    """The directory name of ``config``'s run: the preset it is nearest to, then each field
    that changes the computation and differs from it (``book``, ``book,lr=0.002``, ``fast``).
    Equal for configs that train the same run, so the same command resumes its own run."""
    fields = config.resume_fields()

    def differences(name: str) -> list[str]:
        base = preset(name)
        return [
            f"{field}={getattr(config, field)}"
            for field in fields
            if getattr(config, field) != getattr(base, field)
        ]

    nearest = min(PRESETS, key=lambda name: (len(differences(name)), name != "book", name))
    return ",".join([nearest, *differences(nearest)])


class WorkdirError(RuntimeError):
    """A results directory cannot be written."""


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` and prove it writable now, before any work would be lost."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise WorkdirError(
            f"cannot write to the workdir {directory} ({err.strerror or err}): "
            f"choose another workdir"
        ) from err


# Library messages name arguments (restart=True, num_epochs=3); on the command line, flags.
_PHRASES = {
    "restart=True": "--restart",
    "the data_dir argument": "--data-dir",
    "the cache_dir argument": "--cache-dir",
    "another workdir": "another --workdir",
    "encoding_errors='replace'": "--encoding-errors replace",
}
_FIELD = re.compile(
    r"(?<![\w./-])(?:Config\.)?("
    + "|".join(f.name for f in dataclasses.fields(Config))
    + r")=(\S+?)(?=[\s,:;)]|$)"
)


def in_flags(message: str) -> str:
    """A library message as the command line speaks: Config fields and arguments as flags."""
    for phrase, flag in _PHRASES.items():
        message = message.replace(phrase, flag)

    def flag(match: re.Match) -> str:
        name, value = match.group(1).replace("_", "-"), match.group(2)
        if value in ("True", "False"):
            return f"--{name}" if value == "True" else f"--no-{name}"
        return f"--{name} {value.strip(chr(39))}"

    # Paths (run names hold "lr=0.002") stay as they are: only words without a "/" change.
    return "".join(
        part if "/" in part else _FIELD.sub(flag, part) for part in re.split(r"(\s+)", message)
    )


def one_line_warnings() -> None:
    """Show warnings as ``warning: message``, one line, without the source line."""
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"


class StopOnSignals:
    """While active, SIGINT (Ctrl-C) and SIGTERM ask the run to stop at the end of its
    current dispatch (calling the object says whether one was asked for); a second SIGINT
    interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnSignals:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


_CHOICES = {
    "noise_sharing": NOISE_SHARING,
    "optimizer": OPTIMIZERS,
    "layout": LAYOUTS,
    "subsample": SUBSAMPLE_FORMULAS,
    "shuffle": SHUFFLES,
}
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint", "gensim")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field (``--num-epochs 10``) and ``--preset NAME``; a flag given on
    the command line overrides the preset, which overrides the book's defaults."""
    parser.add_argument(
        "--preset",
        default="book",
        choices=sorted(PRESETS),
        help="named settings to start from (default book: the book's)",
    )
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"(default {field.default!r})"
        if field.name == "lr":
            help_text = "(default: the optimiser's own; see the README's Optimisers table)"
        if field.type in ("bool", bool):
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            kind = {"int": int, "float": float, "str": str}[str(field.type).removesuffix(" | None")]
            choices = _CHOICES.get(field.name)
            parser.add_argument(
                flag, type=kind, default=argparse.SUPPRESS, choices=choices, help=help_text
            )


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the flags describe; an invalid value exits with Config's message."""
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)
    }
    try:
        return preset(args.preset, **given)
    except ValueError as err:  # a usage error, reported as argparse reports its own
        print(f"error: {in_flags(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None


def command_line(module: str, argv: list[str] | None) -> str:
    """The command that ran ``module`` with ``argv`` (default: this process's arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *args])


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_description() -> str:
    device = jax.devices()[0]
    return f"{jax.device_count()} x {device.platform} ({device.device_kind})"


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write ``values`` as JSON, atomically (see ``write_text``)."""
    write_text(path, json.dumps(values, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a crash never leaves a half-written results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def results_header(module: str, argv: list[str] | None) -> dict[str, Any]:
    """What every results file starts with: the command as run, the device, the machine and
    the library versions."""
    return {
        "command": command_line(module, argv),
        "device": device_description(),
        "machine": machine_description(),
        "versions": library_versions(),
    }


def machine_description() -> str:
    """Cores and memory of this machine, for result files."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}"
