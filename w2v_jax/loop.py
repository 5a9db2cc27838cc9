"""The compiled multi-step loop over device-resident batches, and the epoch loop around it.

One loop for every run: one train step, any optimiser, either layout, and several runs trained
together as a run axis of the state."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import batches, parallel


def make_chunk_runner(
    step_fn: Callable,
    num_runs: int | None = None,
    capacity: int | None = None,
    shardings: tuple[Any, Any, Any] | None = None,
) -> Callable:
    """A jitted function running up to ``steps`` train steps in one dispatch.

    ``run(state, examples, order, num_steps) -> (state, loss_sums, num_examples)``: ``examples``
    is a dict of device arrays with one row per center plus a padding row (see
    ``w2v_jax.batches``), ``order`` int32 [steps, batch] picks each step's rows, and only the
    first ``num_steps`` steps run. The trip count is a traced value, so the short last dispatch
    of an epoch reuses the same program; a loop with a dynamic count (rather than a scan with a
    skip branch) spares a copy of the state per step. With ``num_runs``, ``step_fn`` trains
    that many stacked states at once and the loss sums and counts are [steps, num_runs]. With
    a ``capacity``, batches are packed rather than padded (``batches.gather``).

    ``shardings``, (state, examples, order) shardings (``parallel.Placement``), lays the
    program out on a mesh: the state where it lives, the order's rows along "data", the losses
    replicated.
    """

    def run(state, examples, order, num_steps):
        def body(step, carry):
            state, loss_sums, counts = carry
            state, metrics = step_fn(state, batches.gather(examples, order[step], capacity))
            return (
                state,
                loss_sums.at[step].set(metrics["loss_sum"]),
                counts.at[step].set(metrics["num_examples"]),
            )

        runs = () if num_runs is None else (num_runs,)
        zeros = jnp.zeros((order.shape[0], *runs), jnp.float32)
        return jax.lax.fori_loop(0, num_steps, body, (state, zeros, zeros))

    if shardings is None:
        return jax.jit(run, donate_argnums=0)
    state, examples, order = shardings
    replicated = jax.sharding.NamedSharding(order.mesh, jax.sharding.PartitionSpec())
    return jax.jit(
        run,
        donate_argnums=0,
        in_shardings=(state, examples, order, replicated),
        out_shardings=(state, replicated, replicated),
    )


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """An epoch's loss and throughput: its own counts over its own wall time."""

    epoch: int
    loss: float
    seconds: float
    centers: int
    pairs: int
    step: int = 0
    """The global step at the epoch's end (0 where unknown)."""
    feed_seconds: float = 0.0
    """Of ``seconds``, the time training waited for examples to be drawn and moved to the
    device (``stream.Stream.wait_seconds``)."""

    @property
    def centers_per_second(self) -> float:
        return self.centers / self.seconds

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds

    def to_dict(self) -> dict[str, float]:
        return {
            **dataclasses.asdict(self),
            "centers_per_second": self.centers_per_second,
            "pairs_per_second": self.pairs_per_second,
        }


class Trainer:
    """Compiles the chunk runner and runs epochs of device-resident examples through it.

    Padded batches need one program. Packed ones (``capacity``) need one per pair capacity; an
    epoch whose batches need more pairs than the program holds compiles a larger one.
    ``deterministic`` compiles with XLA's deterministic ops (see Config.deterministic). With
    ``num_runs``, the state holds that many runs trained together (``step.create_train_state``):
    losses are per run, and a run whose loss stops being finite is marked in ``diverged`` while
    the others train on. The program is laid out on ``placement``'s mesh (default: one
    device): the state's shardings come from its shapes, the examples keep theirs (on every
    device, or split by rows along "data"), each step's rows are split along "data".
    """

    def __init__(
        self,
        steps_per_dispatch: int,
        step_fn: Callable,
        deterministic: bool = False,
        num_runs: int | None = None,
        placement: parallel.Placement | None = None,
    ) -> None:
        self.steps_per_dispatch = steps_per_dispatch
        self.placement = placement or parallel.Placement.single()
        self.num_runs = num_runs
        self._step_fn = step_fn
        self._compiler_options = compiler_options(deterministic)
        self._compiled = None
        self.capacity: int | None = None
        self.compile_seconds = 0.0
        self.diverged: list[str | None] = [None] * (num_runs or 1)

    def compile(
        self,
        state: Any,
        examples: dict[str, jax.Array],
        batch_size: int,
        capacity: int | None = None,
    ) -> None:
        """Compile ahead of time, so that compile time is measured apart from training time."""
        start = time.perf_counter()
        order = jax.ShapeDtypeStruct((self.steps_per_dispatch, batch_size), np.int32)
        placement = self.placement
        abstract_state = jax.eval_shape(lambda: state)
        rows = max(leaf.shape[0] for leaf in jax.tree.leaves(abstract_state.params))
        # Examples stay where they are: on every device, or split by rows along "data".
        shardings = (
            placement.state_shardings(abstract_state, rows),
            jax.tree.map(lambda x: getattr(x, "sharding", None) or placement.replicated, examples),
            placement.batch_rows,
        )
        runner = make_chunk_runner(self._step_fn, self.num_runs, capacity, shardings)
        self._compiled = runner.lower(abstract_state, examples, order, np.int32(0)).compile(
            self._compiler_options
        )
        self.capacity = capacity
        self.compile_seconds += time.perf_counter() - start

    def memory_analysis(self) -> Any:
        """XLA's memory figures of the compiled program (per device on a mesh)."""
        return self._compiled.memory_analysis()

    def run_epoch(
        self,
        state: Any,
        examples: dict[str, jax.Array],
        order: np.ndarray,
        epoch: int,
        on_dispatch: Callable[[Any, EpochProgress, Dispatch], None] | None = None,
        resume: EpochProgress | None = None,
        checkpoint_every: int = 0,
        capacity: int | None = None,
        offset: int = 0,
    ) -> tuple[Any, EpochProgress]:
        """Train on the batches of ``order`` (int32 [num_batches, batch]), the epoch's batches
        from ``offset`` on (a window of it); returns the state and the epoch's progress (its
        batches done and loss sums, per run with ``num_runs``).

        ``resume`` starts after the batches already done, carrying their loss. After every
        dispatch, ``on_dispatch(state, progress, dispatch)`` is called (the caller logs,
        checkpoints or stops there); with ``checkpoint_every``, dispatches end on
        the global steps that are its multiples. ``capacity``: pairs per packed batch (None:
        padded batches). Raises FloatingPointError when the loss of every run is non-finite.
        """
        if self._compiled is None or capacity != self.capacity:
            self.compile(state, examples, order.shape[1], capacity)
        done = resume or EpochProgress(offset)
        global_step = int(state.step)
        while done.batch - offset < len(order):
            first = done.batch - offset
            num_steps = min(self.steps_per_dispatch, len(order) - first)
            if checkpoint_every:  # end dispatches on checkpoint steps
                num_steps = min(num_steps, checkpoint_every - global_step % checkpoint_every)
            chunk = parallel.put(
                pad_steps(order[first : first + num_steps], self.steps_per_dispatch),
                self.placement.batch_rows,
            )
            began = time.perf_counter()
            state, losses, rows = self._compiled(state, examples, chunk, np.int32(num_steps))
            # One host sync per dispatch, not per step.
            losses = np.asarray(losses, np.float64)[:num_steps]
            self._check_finite(losses, epoch, done.batch)
            dispatch = Dispatch(
                num_steps,
                global_step + num_steps,
                losses.sum(axis=0),
                np.asarray(rows, np.float64)[:num_steps].sum(axis=0),
                time.perf_counter() - began,
            )
            done = EpochProgress(
                done.batch + num_steps,
                done.loss_sum + dispatch.loss_sum,
                done.num_examples + dispatch.num_examples,
            )
            global_step += num_steps
            if on_dispatch is not None:
                on_dispatch(state, done, dispatch)
        return state, done

    def _check_finite(self, losses: np.ndarray, epoch: int, first_batch: int) -> None:
        """Mark the runs whose loss turned non-finite; raise when none is left."""
        per_run = losses.reshape(len(losses), -1)
        for run in range(per_run.shape[1]):
            bad = np.flatnonzero(~np.isfinite(per_run[:, run]))
            if bad.size and self.diverged[run] is None:
                self.diverged[run] = (
                    f"non-finite loss {per_run[bad[0], run]} in epoch {epoch}"
                    f" at step {first_batch + int(bad[0]) + 1} of the epoch"
                )
        if all(self.diverged):
            raise FloatingPointError(
                f"{self.diverged[0]}: lower the learning rate or check the data"
            )


def compiler_options(deterministic: bool) -> dict[str, Any] | None:
    """XLA options for ``Config.deterministic``: GPU scatter-adds in a fixed order (they
    otherwise add in whatever order the threads finish, so runs differ in the last bits).
    CPU programs are deterministic already; XLA ignores the GPU option there."""
    return {"xla_gpu_deterministic_ops": True} if deterministic else None


@dataclasses.dataclass(frozen=True)
class Dispatch:
    """One compiled call: its steps, the global step after it, the loss summed over its real
    rows, those rows (centers) and its wall time (it ends with the host reading the losses)."""

    steps: int
    global_step: int
    loss_sum: Any
    """Summed over the dispatch's real rows: a float, or [runs] for runs trained together."""
    num_examples: Any
    seconds: float

    @property
    def mean_loss(self) -> Any:
        return self.loss_sum / np.maximum(self.num_examples, 1.0)


@dataclasses.dataclass(frozen=True)
class EpochProgress:
    """How far an epoch got: batches done and the loss summed over their real rows."""

    batch: int = 0
    loss_sum: Any = 0.0
    """A float, or [runs] for runs trained together (as ``num_examples``)."""
    num_examples: Any = 0.0

    @property
    def mean_loss(self) -> Any:
        return self.loss_sum / np.maximum(self.num_examples, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """As JSON holds it: floats, or lists of them."""
        return {
            "batch": self.batch,
            "loss_sum": np.asarray(self.loss_sum).tolist(),
            "num_examples": np.asarray(self.num_examples).tolist(),
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> EpochProgress:
        return cls(
            saved["batch"],
            np.asarray(saved["loss_sum"], np.float64),
            np.asarray(saved["num_examples"], np.float64),
        )


def pad_steps(order: np.ndarray | jax.Array, steps: int) -> np.ndarray | jax.Array:
    """``order`` grown to ``steps`` rows (the extra rows are never run), for a fixed shape; a
    device order stays on the device."""
    if len(order) == steps:
        return order
    xp = jnp if isinstance(order, jax.Array) else np
    return xp.concatenate([order, xp.zeros((steps - len(order), order.shape[1]), order.dtype)])
