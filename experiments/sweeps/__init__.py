"""Sweep definitions: each module here defines ``points()``, a list of Config overrides.

A module may also set ``BASE`` (overrides applied under every point, default none) and
``METRIC`` (the summary's sort key, default WordSim353 Spearman). ``grid`` and ``random_search``
build the lists.
"""

from __future__ import annotations

import importlib
import itertools
import math
import types
from collections.abc import Sequence
from typing import Any

import numpy as np


def grid(axes: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (each axis a setting's path, "optimizer.lr"), the
    last axis varying fastest."""
    names = list(axes)
    return [dict(zip(names, values)) for values in itertools.product(*axes.values())]


def random_search(space: dict[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` points drawn from ``space`` with a seeded generator: a list or tuple of values
    is a choice; ``("log", low, high)`` or ``("uniform", low, high)`` a float range."""
    rng = np.random.default_rng(seed)
    return [{name: _draw(name, spec, rng) for name, spec in space.items()} for _ in range(count)]


def _draw(name: str, spec: Any, rng: np.random.Generator) -> Any:
    if isinstance(spec, tuple) and spec and spec[0] in ("log", "uniform"):
        kind, low, high = spec
        if kind == "log":
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        return float(rng.uniform(low, high))
    if isinstance(spec, list | tuple) and spec:
        return spec[int(rng.integers(len(spec)))]
    raise ValueError(
        f"search space entry {name}={spec!r}: give a non-empty list of values or "
        f"('log' | 'uniform', low, high)"
    )


def load(name: str) -> types.ModuleType:
    """The sweep module ``experiments.sweeps.<name>``; an unknown name lists the known ones."""
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"no sweep named {name!r}; sweeps: {', '.join(available())}") from err
    if not callable(getattr(module, "points", None)):
        raise ValueError(f"sweep {name!r} defines no points() function")
    return module


def available() -> list[str]:
    import pkgutil

    return sorted(info.name for info in pkgutil.iter_modules(__path__))
