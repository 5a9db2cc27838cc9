"""What a run will take in memory, said and checked before anything is allocated: the tables
and optimiser state (exact, from their shapes), the step's working space and the examples on
the device (estimates that stay above XLA's own figures), against what the device has free
(host RAM on a CPU, device memory on an accelerator). Too much is refused in one line naming
both and the flags that shrink it, rather than killed by the kernel half-way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from w2v_jax import objectives
from w2v_jax.config import Config
from w2v_jax.training import records
from w2v_jax.training.loop import state_bytes

# Copies of a batch's gathered rows ([pairs, embed] float32) a step holds at its peak, by
# optimiser: the rows and their gradients, and a row-sparse optimiser's gathered state rows;
# a dense optimiser adds a gradient of the tables' size. Measured with XLA's memory_analysis
# (tests/test_memory.py keeps the estimate above it, and within twice it).
_ROW_COPIES = {"sparse_sgd": 2.25, "rowwise_adagrad": 3.25, "lazy_adam": 5.5}
_DENSE_ROW_COPIES = 2.25
_FLOAT32 = 4


class NotEnoughMemory(RuntimeError):
    """The run would not fit in the device's free memory; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Needs:
    """Bytes a run will take on each device: ``tables``, ``optimiser`` state, the step's
    ``working`` space and the ``examples`` held there."""

    tables: int
    optimiser: int
    working: int
    examples: int
    mesh: str

    @property
    def total(self) -> int:
        return self.tables + self.optimiser + self.working + self.examples


def needs(config: Config, vocab_size: int, runs: int = 1, examples: int = 0) -> Needs:
    """What a run of ``config`` (``runs`` trained together) takes on each device of its mesh,
    ``examples`` bytes of examples included; nothing is allocated."""
    state = state_bytes(config, vocab_size)
    whole = state["tables"] + state["optimiser"]
    # Each device's share of the state (per_device counts the step counters too: one device
    # holds it all).
    share = min(state["per_device"] / whole, 1.0) if whole else 1.0
    tables = int(state["tables"] * runs * share)
    optimiser = int(state["optimiser"] * runs * share)
    # Padded: a packed batch holds no more. An objective may gather a pair's word from both
    # tables (CBOW: as a context and as a noise word); shared noise words leave one.
    gathers = 1 if config.noise.shared_by_batch else objectives.REGISTRY[config.objective].gathers
    pairs = config.batch_size * config.row_layout.max_len * gathers
    copies = _ROW_COPIES.get(config.optimizer.name, _DENSE_ROW_COPIES)
    rows_bytes = pairs * config.embed_size * _FLOAT32 * copies * runs / jax.device_count()
    gradient = 0 if config.optimizer.name in _ROW_COPIES else tables
    return Needs(
        int(tables),
        int(optimiser),
        int(rows_bytes + gradient),
        int(examples),
        state["mesh"],
    )


def free_bytes() -> tuple[int | None, str]:
    """The memory this process can still take on its first device, and who has it: an
    accelerator's free memory, or on a CPU the host's available RAM (within a container's
    limit). None when the device does not say."""
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        free = (
            stats["bytes_limit"] - stats.get("bytes_in_use", 0) if "bytes_limit" in stats else None
        )
        return free, f"the {device.device_kind} has {{}} free"
    room = [x for x in (_meminfo_available(), _cgroup_room()) if x is not None]
    return (min(room) if room else None), "this machine has {} of RAM available"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """A cgroup v2 memory limit less what the group uses (None: no limit)."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def check(config: Config, needed: Needs, free: int | None, who: str) -> None:
    """Refuse a run that needs more than ``free`` bytes (NotEnoughMemory), naming both and
    the settings that shrink it; ``who`` says where they are ("... has {} free")."""
    if free is None or needed.total <= free:
        return
    each = " on each device" if jax.device_count() > 1 else ""
    raise NotEnoughMemory(
        f"the run needs up to {_gib(needed.total)}{each} (tables {_gib(needed.tables)}, "
        f"{config.optimizer.name} state {_gib(needed.optimiser)}, step working space "
        f"{_gib(needed.working)}, examples {_gib(needed.examples)}) and "
        f"{who.format(_gib(free))}: lower embed_size={config.embed_size} or "
        f"batch_size={config.batch_size}, raise min_freq={config.min_freq}, or train on a "
        f"mesh (execution.mesh=...); go ahead anyway with check_memory=False"
    )


def line(config: Config, needed: Needs) -> str:
    """The memory a run will take, said before it is allocated."""
    on_mesh = "" if jax.device_count() == 1 else f" on each device of the mesh {needed.mesh}"
    return (
        f"memory: tables {needed.tables / 2**20:,.1f} MiB, {config.optimizer.name} state "
        f"{needed.optimiser / 2**20:,.1f} MiB, step working space up to "
        f"{needed.working / 2**20:,.1f} MiB on {records.device_description()}{on_mesh}"
    )


def _gib(count: float) -> str:
    return f"{count / 2**30:,.1f} GiB"
