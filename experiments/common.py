"""Helpers shared by the experiment scripts: command-line flags for Config, result files."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

import jax

from w2v_jax.config import LAYOUTS, NOISE_SHARING, OPTIMIZERS, PRESETS, Config, preset

_CHOICES = {"noise_sharing": NOISE_SHARING, "optimizer": OPTIMIZERS, "layout": LAYOUTS}
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint", "gensim")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field (``--num-epochs 10``) and ``--preset NAME``; a flag given on
    the command line overrides the preset, which overrides the book's defaults."""
    parser.add_argument("--preset", default="book", choices=sorted(PRESETS),
                        help="named settings to start from (default book: the book's)")
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"(default {field.default!r})"
        if field.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}[str(field.type)]
            choices = _CHOICES.get(field.name)
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, choices=choices,
                                help=help_text)


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the flags describe; an invalid value exits with Config's message."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
             if hasattr(args, f.name)}
    try:
        return preset(args.preset, **given)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err


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
    """Write through a temporary file, so a crash never leaves a half-written results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(values, indent=2) + "\n")
    tmp.replace(path)


def machine_description() -> str:
    """Cores and memory of this machine, for result files."""
    import os

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}"
