"""Devices as a mesh: both tables and their optimiser state split along the vocabulary, batches
split along the data axis, one or many processes.

A run's mesh is ``Config.mesh``, "data=N,vocab=M" (default: every device on ``data``). The
train step does not change with it: ``Placement`` derives each array's sharding from its shape
(a leading axis of the padded vocabulary's rows is split over "vocab", the batch axis of a
step's rows over "data", everything else is replicated) and the loop jits the step with them,
leaving XLA's SPMD partitioner to split the work and add the collectives.

The tables get zero rows up to a multiple of the vocab axis (``Placement.rows``) so that every
device holds an equal share; no id ever reaches them, so they and their optimiser state stay
zero, a checkpoint restores onto another mesh by padding or dropping them (Orbax), and
``trimmed`` gives the tables without them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from w2v_jax.sections import MESH_AXES, mesh_sizes

DATA, VOCAB = MESH_AXES


class MeshError(ValueError):
    """A mesh that cannot be built on this run's devices; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a run's arrays live: the mesh, and the sharding of each kind of array."""

    mesh: Mesh

    @classmethod
    def from_spec(cls, spec: str | None, devices: list | None = None) -> Placement:
        """The mesh of ``spec`` ("data=N,vocab=M") over ``devices`` (default: every device of
        every process). An axis left out takes the devices the other leaves: the default is
        every device on "data", vocab=1. A smaller mesh than the devices takes the first ones
        (one process only: every process must hold a part of the mesh)."""
        devices = list(jax.devices() if devices is None else devices)
        sizes = mesh_sizes(spec)
        vocab = sizes.get(VOCAB, 1)
        data = sizes.get(DATA, max(len(devices) // vocab, 1))
        needed = data * vocab
        if needed > len(devices) or (needed < len(devices) and jax.process_count() > 1):
            where = f"{len(devices)} {devices[0].platform} devices"
            if jax.process_count() > 1:
                where += f" over {jax.process_count()} processes"
            raise MeshError(
                f"mesh data={data},vocab={vocab} needs {needed} devices, this run "
                f"has {where}: choose --execution.mesh with data x vocab = {len(devices)}"
            )
        grid = np.asarray(devices[:needed]).reshape(data, vocab)
        # Auto axes: the partitioner decides the shardings inside the step (GSPMD).
        return cls(Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto, AxisType.Auto)))

    @classmethod
    def single(cls) -> Placement:
        """One device: the default device of this process."""
        return cls.from_spec(None, [jax.devices()[0]])

    @property
    def data_size(self) -> int:
        return self.mesh.shape[DATA]

    @property
    def vocab_size(self) -> int:
        return self.mesh.shape[VOCAB]

    @property
    def description(self) -> str:
        return f"data={self.data_size},vocab={self.vocab_size}"

    def rows(self, vocab_size: int) -> int:
        """The tables' rows: the vocabulary padded to a multiple of the vocab axis."""
        return -(-vocab_size // self.vocab_size) * self.vocab_size

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def data_rows(self) -> NamedSharding:
        """Examples split by rows along "data" (each shard replicated along "vocab")."""
        return NamedSharding(self.mesh, P(DATA))

    def local_data_shards(self) -> list[int]:
        """The data-axis positions of this process's devices."""
        mine = {device.id for device in jax.local_devices()}
        return [
            index
            for index in range(self.data_size)
            if any(device.id in mine for device in self.mesh.devices[index])
        ]

    @property
    def batch_rows(self) -> NamedSharding:
        """A dispatch's batch order [steps, batch]: each step's rows split along "data"."""
        return NamedSharding(self.mesh, P(None, DATA))

    def table_sharding(self, ndim: int) -> NamedSharding:
        """An array whose leading axis is the tables' rows, split along "vocab"."""
        return NamedSharding(self.mesh, P(VOCAB, *(None,) * (ndim - 1)))

    def state_shardings(self, abstract_state: Any, rows: int) -> Any:
        """The sharding of every leaf of a state (shapes from ``jax.eval_shape``): a leaf whose
        leading axis has the tables' ``rows`` rows (tables, their moments, per-row counts) is
        split along "vocab"; anything else (step counts, scalars) is replicated."""

        def sharding(leaf):
            if leaf.ndim >= 1 and leaf.shape[0] == rows:
                return self.table_sharding(leaf.ndim)
            return self.replicated

        return jax.tree.map(sharding, abstract_state)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.data_size:
            raise MeshError(
                f"batch_size={batch_size} must be a multiple of the mesh's data "
                f"axis ({self.data_size}): change --batch-size or --execution.mesh"
            )

    def shard_bytes(self, tree: Any) -> dict[int, int]:
        """Bytes each device of this process holds of the arrays of ``tree``, by device id."""
        held: dict[int, int] = {}
        for leaf in jax.tree.leaves(tree):
            for shard in leaf.addressable_shards:
                held[shard.device.id] = held.get(shard.device.id, 0) + shard.data.nbytes
        return held


def put(array: np.ndarray | jax.Array, sharding: jax.sharding.Sharding) -> jax.Array:
    """``array`` (the same on every process) laid out with ``sharding``: each process places
    the parts its own devices hold."""
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    host = np.asarray(array)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def trimmed(tree: Any, vocab_size: int) -> Any:
    """The arrays of ``tree`` without the padding rows past ``vocab_size`` (arrays of exactly
    ``vocab_size`` rows, as on one device, are returned as they are)."""

    def trim(leaf):
        if leaf.ndim >= 1 and leaf.shape[0] > vocab_size:
            return leaf[:vocab_size]
        return leaf

    return jax.tree.map(trim, tree)


def on_host(tree: Any) -> Any:
    """``tree``'s arrays whole, as numpy, on every process: a table sharded over several
    processes is gathered (so every process calls this at the same point)."""

    def fetch(leaf):
        if getattr(leaf, "is_fully_addressable", True):
            return np.asarray(leaf)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(fetch, tree)


def pad_rows(table: jax.Array, rows: int) -> jax.Array:
    """``table`` with zero rows appended up to ``rows``."""
    if table.shape[0] == rows:
        return table
    return jnp.concatenate(
        [table, jnp.zeros((rows - table.shape[0], *table.shape[1:]), table.dtype)]
    )


def initialize_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join a run of several processes (``jax.distributed.initialize``): with the coordinator's
    address, the number of processes and this one's id, or, all three left out, as JAX
    detects them on a SLURM or Open MPI job or a TPU pod. CPU processes exchange their
    collectives through gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )


def is_main_process() -> bool:
    """Whether this process prints and writes the run's files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Every process waits here until all have arrived (nothing to wait for alone)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """Whether ``flag`` holds on any process: every process asks at the same point (a signal
    that reaches one process stops them all at the same dispatch)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def main_process_first(work: Callable[[], Any]) -> Any:
    """``work()`` on process 0, then on the others (a corpus encoded into a shared cache once,
    then read from it)."""
    if is_main_process():
        result = work()
        barrier("main process first")
        return result
    barrier("main process first")
    return work()


def fake_cpu_devices(count: int) -> dict[str, str]:
    """The environment a child process needs to see ``count`` CPU devices (set before JAX
    starts): for tests and for trying meshes on a CPU."""
    flags = os.environ.get("XLA_FLAGS", "")
    flags = " ".join(
        flag
        for flag in flags.split()
        if not flag.startswith("--xla_force_host_platform_device_count")
    )
    return {
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={count}".strip(),
        "JAX_PLATFORMS": "cpu",
    }
