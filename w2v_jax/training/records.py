"""The files a run and a benchmark leave behind, written atomically, and what they say about
where they ran: the command, the machine, the devices and the library versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax

from w2v_jax.training.workdir import WorkdirError

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint", "gensim")


def write_json(path: Path, values: dict[str, Any]) -> None:
    """Write ``values`` as JSON, atomically (see ``write_text``)."""
    write_text(path, json.dumps(values, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so a crash never leaves a half-written results file."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf8")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file of this process's own beside ``path`` (two writers of one file never
    share one) for the block to write, which then replaces ``path``: a crash never leaves half
    a file under the real name. A failure (a full disk) leaves ``path`` as it was, removes the
    temporary file and is a WorkdirError in one line."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(path)
    except OSError as err:
        raise WorkdirError(
            f"cannot write {path} ({err.strerror or err}): free some space and run the same "
            f"command again (what was written before is kept)"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


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
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    """``fig`` with its legend and grid as a PNG at ``path``, replacing it whole: a crash
    never leaves half a picture under the real name."""
    ax = fig.axes[0]
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_scores(epochs: Sequence, names: Sequence[str], title: str, path: Path) -> None:
    """Each score of ``names`` against the epoch (``epochs``: EpochStats whose ``scores`` are
    set), a line each; a score left unscored in every epoch is not drawn."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    numbers = [stats.epoch + 1 for stats in epochs]
    for name in names:
        values = [stats.scores.get(name) for stats in epochs]
        if any(value is not None for value in values):
            ax.plot(numbers, [math.nan if v is None else v for v in values], "o-", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("score at the epoch's end")
    ax.set_xticks(numbers)
    ax.set_title(title)
    _save(fig, path)
