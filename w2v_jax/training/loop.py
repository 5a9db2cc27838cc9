"""The compiled multi-step loop over device-resident batches, and the program that builds it.

One program for every run: one train step, any optimiser, either layout, and several runs
trained together as a run axis of the state."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import data, parallel
from w2v_jax.config import Config
from w2v_jax.feed import batches, draws
from w2v_jax.rows import Rows
from w2v_jax.training import optim, step

PADDED = batches.Padded()


def make_chunk_runner(
    step_fn: Callable,
    num_runs: int | None = None,
    layout: batches.PairLayout = PADDED,
    shardings: tuple[Any, Any, Any] | None = None,
    draw: Callable | None = None,
) -> Callable:
    """A jitted function running up to ``steps`` train steps in one dispatch.

    ``run(state, examples, order, num_steps) -> (state, loss_sums, num_examples)``: ``examples``
    is a dict of device arrays with one row per center plus a padding row (see
    ``w2v_jax.feed.batches``), ``order`` int32 [steps, batch] picks each step's rows, and only the
    first ``num_steps`` steps run. The trip count is a traced value, so the short last dispatch
    of an epoch reuses the same program; a loop with a dynamic count (rather than a scan with a
    skip branch) spares a copy of the state per step. With ``num_runs``, ``step_fn`` trains
    that many stacked states at once and the loss sums and counts are [steps, num_runs].
    ``layout`` gathers each batch's pairs (``batches.Padded`` or ``batches.Packed``).

    ``shardings``, (state, examples, order) shardings (``parallel.Placement``), lays the
    program out on a mesh: the state where it lives, the order's rows along "data", the losses
    replicated.

    ``draw(examples, rows) -> (rows' examples, rows of them)`` draws each step's rows from
    examples drawn on the device (``draws.batch_rows``); None: the examples are the rows.
    """

    def run(state, examples, order, num_steps):
        def body(step, carry):
            state, loss_sums, counts = carry
            with jax.named_scope("draws"):
                source, rows = (
                    (examples, order[step]) if draw is None else draw(examples, order[step])
                )
            with jax.named_scope("pairs"):
                pairs = layout.gather(source, rows)
            state, metrics = step_fn(state, pairs)
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


class Program:
    """A run's compiled program, built in this one place for every run and benchmark: the
    optimiser (a schedule spans ``total_steps``), the train step, the pair layout and the
    chunk runner compiled ahead of time (``make_chunk_runner``).

    ``configs`` is one run's config, or the configs of runs trained together (``stacked``):
    then the state holds that many runs ([vocab, runs, embed] tables) and losses are per run.
    A config's lr None trains at its optimiser's default rate, which ``configs`` names.
    ``layout`` (``batches.PairLayout``) is the run's: padded batches need one program, packed
    ones one per pair capacity: ``fit`` grows the capacity to a group's most live slots
    (rounded, so that most groups reuse one program), and the next dispatch compiles a larger
    program when it grew; checkpoints save it, ``resume`` takes it back. The program is laid out on
    ``placement``'s mesh (default: ``config.execution.mesh``): the state's shardings come from its
    shapes, the examples keep theirs, each step's rows are split along "data".
    """

    def __init__(
        self,
        configs: Config | Sequence[Config],
        vocab: data.vocab.Vocab,
        total_steps: int,
        stacked: bool = False,
        placement: parallel.Placement | None = None,
    ) -> None:
        configs = list(configs) if isinstance(configs, list | tuple) else [configs]
        self.configs = [
            config.replace(**{"optimizer.lr": optim.learning_rate(config)}) for config in configs
        ]
        self.config = config = self.configs[0]
        self.vocab_size = len(vocab)
        self.num_runs = len(configs) if stacked else None
        self.placement = placement or parallel.Placement.from_spec(config.execution.mesh)
        self.placement.check_batch(config.batch_size)
        self.optimizer = optim.make(self.configs if stacked else config, total_steps)
        noise = vocab.noise_table if config.noise.shared_by_batch else None
        self.step_fn = step.make_train_step(config, self.optimizer, noise)
        self.layout = batches.pair_layout(config.execution.layout)
        self.compile_seconds = 0.0
        self._compiled = None
        self._compiled_layout: batches.PairLayout | None = None

    def init_state(self) -> step.TrainState:
        """Fresh tables and optimiser state, created where they live."""
        return step.state_initializer(
            self.config,
            self.vocab_size,
            jax.random.key(self.config.seed),
            self.optimizer,
            self.num_runs,
            self.placement,
        )()

    def fit(self, most_live: int, headroom: bool = False) -> None:
        """Packed batches: grow the capacity to hold ``most_live`` live slots
        (``batches.Packed.fit``)."""
        self.layout = self.layout.fit(most_live, headroom)

    def resume(self, saved: batches.PairLayout | None) -> None:
        """The layout a checkpoint was saved with taken back: at least its capacity."""
        self.layout = self.layout.at_least(saved)

    def compile(self, state: Any, examples: Rows | draws.Expanded) -> None:
        """Compile ahead of time, so that compile time is measured apart from training time."""
        start = time.perf_counter()
        order = jax.ShapeDtypeStruct(
            (self.config.execution.steps_per_dispatch, self.config.batch_size), np.int32
        )
        placement = self.placement
        abstract_state = jax.eval_shape(lambda: state)
        rows = max(leaf.shape[0] for leaf in jax.tree.leaves(abstract_state.params))
        # Examples stay where they are: on every device, or split by rows along "data".
        shardings = (
            placement.state_shardings(abstract_state, rows),
            jax.tree.map(lambda x: getattr(x, "sharding", None) or placement.replicated, examples),
            placement.batch_rows,
        )
        runner = make_chunk_runner(
            self.step_fn, self.num_runs, self.layout, shardings, self.row_drawer(examples)
        )
        self._compiled = runner.lower(abstract_state, examples, order, np.int32(0)).compile(
            compiler_options(self.config.execution.deterministic)
        )
        self._compiled_layout = self.layout
        self.compile_seconds += time.perf_counter() - start

    def row_drawer(self, examples: Rows | draws.Expanded) -> Callable | None:
        """Each step's rows drawn from ``examples`` drawn on the device (``draws``), or None
        for the host's rows."""
        if isinstance(examples, Rows):
            return None
        return functools.partial(
            draws.batch_rows, seed=self.config.seed, layout=self.config.row_layout
        )

    def memory_analysis(self) -> Any:
        """XLA's memory figures of the compiled program (per device on a mesh)."""
        return self._compiled.memory_analysis()

    def __call__(
        self, state: Any, examples: Rows | draws.Expanded, order: np.ndarray | jax.Array
    ) -> tuple[Any, Dispatch]:
        """Train on the batches of ``order`` (int32 [steps, batch], at most
        steps_per_dispatch rows of ``examples``): one dispatch, one host sync."""
        if self._compiled is None or self._compiled_layout != self.layout:
            self.compile(state, examples)
        num_steps = len(order)
        chunk = parallel.put(
            pad_steps(order, self.config.execution.steps_per_dispatch), self.placement.batch_rows
        )
        began = time.perf_counter()
        first_step = int(state.step)
        state, losses, rows = self._compiled(state, examples, chunk, np.int32(num_steps))
        losses = np.asarray(losses, np.float64)[:num_steps]
        rows = np.asarray(rows, np.float64)[:num_steps]
        seconds = time.perf_counter() - began
        return state, Dispatch(first_step, losses, rows, seconds)


def compiler_options(deterministic: bool) -> dict[str, Any] | None:
    """XLA options for ``Config.deterministic``: GPU scatter-adds in a fixed order (they
    otherwise add in whatever order the threads finish, so runs differ in the last bits).
    CPU programs are deterministic already; XLA ignores the GPU option there."""
    return {"xla_gpu_deterministic_ops": True} if deterministic else None


@dataclasses.dataclass(frozen=True)
class Dispatch:
    """One compiled call: the global step before it, each step's loss summed over its real
    rows and those rows (centers), [steps] or [steps, runs], and its wall time (it ends with
    the host reading the losses)."""

    first_step: int
    losses: np.ndarray
    rows: np.ndarray
    seconds: float

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def global_step(self) -> int:
        """The global step after it."""
        return self.first_step + self.steps

    @property
    def loss_sum(self) -> Any:
        """Summed over the dispatch's real rows: a float, or [runs] for runs trained together."""
        return self.losses.sum(axis=0)

    @property
    def num_examples(self) -> Any:
        return self.rows.sum(axis=0)

    @property
    def mean_loss(self) -> Any:
        return self.loss_sum / np.maximum(self.num_examples, 1.0)


def pad_steps(order: np.ndarray | jax.Array, steps: int) -> np.ndarray | jax.Array:
    """``order`` grown to ``steps`` rows (the extra rows are never run), for a fixed shape; a
    device order stays on the device."""
    if len(order) == steps:
        return order
    xp = jnp if isinstance(order, jax.Array) else np
    return xp.concatenate([order, xp.zeros((steps - len(order), order.shape[1]), order.dtype)])


def state_bytes(config: Config, vocab_size: int) -> dict[str, Any]:
    """The bytes a run's tables and its optimiser's state will take, from their shapes alone
    (nothing is allocated): ``{"tables": ..., "optimiser": ...}`` in all (a mesh's padding
    rows included), ``"per_device"`` on each device of the run's mesh
    (``config.execution.mesh``, named in ``"mesh"``)."""
    optimizer = optim.make(
        config.replace(**{"optimizer.lr": optim.learning_rate(config)}), total_steps=1
    )
    placement = parallel.Placement.from_spec(config.execution.mesh)
    rows = placement.rows(vocab_size)
    shapes = jax.eval_shape(
        lambda key: step.state_initializer(
            config, vocab_size, key, optimizer, placement=placement
        )(),
        jax.random.key(0),
    )
    shardings = placement.state_shardings(shapes, rows)

    def size(tree) -> int:
        return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))

    per_device = sum(
        math.prod(sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
        for leaf, sharding in zip(jax.tree.leaves(shapes), jax.tree.leaves(shardings), strict=True)
    )
    return {
        "tables": size(shapes.params),
        "optimiser": size(shapes.opt_state),
        "per_device": per_device,
        "mesh": placement.description,
    }
