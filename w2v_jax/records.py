"""The files a run and a benchmark leave behind, written atomically, and what they say about
where they ran: the command, the machine, the devices and the library versions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax


class WorkdirError(RuntimeError):
    """A results directory cannot be written."""


LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint", "gensim")


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write ``values`` as JSON, atomically (see ``write_text``)."""
    write_text(path, json.dumps(values, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a crash never leaves a half-written results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def command() -> str:
    """The command line this process was started with."""
    return shlex.join(getattr(sys, "orig_argv", sys.argv))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_description() -> str:
    device = jax.devices()[0]
    return f"{jax.device_count()} x {device.platform} ({device.device_kind})"


def machine_description() -> str:
    """Cores and memory of this machine."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.machine()}"


def where_it_ran() -> dict[str, Any]:
    """What every results file records: the command as run, the devices, the machine and the
    library versions."""
    return {
        "command": command(),
        "device": device_description(),
        "machine": machine_description(),
        "versions": library_versions(),
    }


def plot_loss(curve: Sequence, epoch_ends: Sequence, title: str, path: Path) -> None:
    """The loss of every dispatch against the step (``curve``: [step, loss] pairs), each
    epoch's mean at its last step (``epoch_ends``: EpochStats). matplotlib's Figure directly,
    without pyplot, so that no backend is chosen for the caller's process."""
    from matplotlib.figure import Figure  # a second to import, needed only here

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    if curve:
        steps, losses = zip(*curve)
        ax.plot(steps, losses, lw=1, color="tab:blue", label="per dispatch")
    ends = [stats for stats in epoch_ends if stats.step]
    for stats in ends:
        ax.axvline(stats.step, color="grey", lw=0.5, ls=":")
    ax.plot(
        [s.step for s in ends], [s.loss for s in ends], "o", color="tab:orange", label="epoch mean"
    )
    ax.set_xlabel("step (dotted lines: epoch ends)")
    ax.set_ylabel("loss (masked sigmoid BCE)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)  # a crash never leaves half a picture under the real name


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
