"""The optimisers of the two tables: one interface, a registry keyed by ``Config.optimizer.name``.

An optimiser sees a step's gradient as the rows the batch touched: for each table, a list of
``Touched`` (ids and their gradient rows, a row per id or shared rows picked by an index, and
which ids the step read) with duplicate ids not yet summed; an id not read is neither moved nor
counted (``Touched.read_ids`` puts it out of range, and every scatter here drops it). It owns
its state (``init`` from the parameters) and returns the new parameters and state
(``update``).

- The dense one (``DenseOptax``: the book's Adam) scatters the rows into a dense gradient,
  which is exactly what differentiating the loss through the table lookups gives, and lets
  optax update every row.
- Row-sparse ones (``SparseSGD``, ``RowwiseAdagrad``, ``LazyAdam``) update only the touched
  rows, so a step costs the same whatever the vocabulary's size; the adaptive ones keep their
  state per row, which is what large batches need (a row's gradient is a sum over the batch).

Each optimiser owns its hyperparameters (``Entry``: which Config fields it reads and its own
default learning rate). A hyperparameter is a float, or a [runs, 1] array for several runs
trained together, which broadcasts over tables [vocab, runs, embed]. Every optimiser takes its
rate times the run's schedule (``schedule``: a linear warm-up, then constant or a linear decay
to a floor, word2vec's), a function of the step number alone, so a resumed run continues it.

A new optimiser is one class with ``init`` and ``update``, an entry in ``REGISTRY``, and its test.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import jax
import jax.numpy as jnp
import optax

from w2v_jax.objectives.common import Touched

if TYPE_CHECKING:
    from w2v_jax.config import Config

Params = dict[
    str, jax.Array
]  # the tables by name (w2v_jax.tables): {"center": [vocab, embed], ...}
RowGrads = dict[str, list[Touched]]
Hyper = float | jax.Array  # a hyperparameter: one run's, or [runs, 1] for runs trained together

FINAL_LR_FRACTION = 1e-4
"""A decaying rate ends at lr times this (word2vec's floor)."""

Schedule = Callable[[jax.Array], jax.Array] | None
"""Step -> the factor of the rate at that step; None: 1 throughout (the rate as it is)."""


class Optimizer(Protocol):
    def init(self, params: Params) -> Any: ...

    def update(
        self, params: Params, state: Any, grads: RowGrads, step: jax.Array
    ) -> tuple[Params, Any]: ...


@dataclasses.dataclass(frozen=True)
class DenseOptax:
    """An optax optimiser applied to the whole tables (the book's Adam is this, exact)."""

    tx: optax.GradientTransformation

    def init(self, params: Params) -> Any:
        return self.tx.init(params)

    def update(
        self, params: Params, state: Any, grads: RowGrads, step: jax.Array
    ) -> tuple[Params, Any]:
        del step  # optax counts its own steps
        dense = {name: _dense(params[name], grads[name]) for name in params}
        updates, state = self.tx.update(dense, state, params)
        return optax.apply_updates(params, updates), state


@dataclasses.dataclass(frozen=True)
class SparseSGD:
    """SGD on the touched rows only, ``-rate * gradient`` scattered into the tables: the same
    update as dense SGD without a pass over every row. Unless its config says otherwise, the
    rate decays linearly from ``lr`` to ``lr * FINAL_LR_FRACTION`` over the run, as word2vec's
    does (``OptimizerConfig.rate_decays``)."""

    lr: Hyper
    schedule: Schedule = None

    def init(self, params: Params) -> Any:
        return optax.EmptyState()  # stateless; a named empty state, which checkpoints can hold

    def update(
        self, params: Params, state: Any, grads: RowGrads, step: jax.Array
    ) -> tuple[Params, Any]:
        rate = scheduled(self.lr, self.schedule, step)
        new = {}
        for name, table in params.items():
            ids, rows = _concatenated(grads[name], table.shape[0])
            new[name] = table.at[ids].add(-rate * rows, mode="drop")
        return new, state


class _AdaptiveRows:
    """Row-sparse optimisers with state per row: for each table, the touched ids are made
    distinct (their gradient rows summed), then ``row_step(ids, rows, table_state, rate)``
    gives each row's step and the table's new state (``rate``: lr times the schedule's
    factor at this step)."""

    def update(
        self, params: Params, state: Any, grads: RowGrads, step: jax.Array
    ) -> tuple[Params, Any]:
        rate = scheduled(self.lr, self.schedule, step)
        new_params, new_state = {}, {}
        for name in params:
            table = params[name]
            with jax.named_scope("sum_duplicates"):
                ids, rows = _summed(grads[name], table.shape[0])
            step_rows, new_state[name] = self.row_step(ids, rows, state[name], rate)
            # Each distinct row once, so adding its step is setting it to row + step, without
            # gathering the old rows first.
            new_params[name] = table.at[ids].add(step_rows, mode="drop")
        return new_params, new_state


@dataclasses.dataclass(frozen=True)
class RowwiseAdagrad(_AdaptiveRows):
    """Adagrad with one accumulator per row (the mean of the row's squared gradient, summed
    over steps), updating only the touched rows: a row's step is
    ``-lr * g / sqrt(acc + eps)``. Duplicate ids are summed first. Its state is a [vocab]
    vector per table, so it costs the same whatever the vocabulary's size, and it adapts each
    row's step to how much that row is trained (frequent words get smaller steps).

    The accumulator starts at 0, so a row's first step has length about ``lr`` per coordinate
    whatever the gradient's scale (a row's gradient of the batch-mean loss shrinks as the batch
    grows; a start of 0.1, as optax's dense Adagrad has, would dwarf it and make this SGD)."""

    lr: Hyper
    schedule: Schedule = None
    initial_accumulator: float = 0.0
    eps: float = 1e-10

    def init(self, params: Params) -> Any:
        return {
            name: jnp.full(params[name].shape[:-1], self.initial_accumulator, jnp.float32)
            for name in params
        }

    def row_step(self, ids: jax.Array, rows: jax.Array, acc: jax.Array, rate: Hyper):
        acc_rows = _get(acc, ids) + jnp.mean(jnp.square(rows), axis=-1)  # [n, (runs)]
        step = -rate * rows / jnp.sqrt(acc_rows + self.eps)[..., None]
        return step, _set(acc, ids, acc_rows)


@dataclasses.dataclass(frozen=True)
class LazyAdam(_AdaptiveRows):
    """Adam on the touched rows only (duplicate ids summed first). It differs from the dense
    Adam of the book in two ways: a row that a step does not touch keeps its moments and does
    not move (dense Adam decays its moments and keeps moving it along its momentum), and each
    row corrects its moments' bias by its own count of updates, not the global step. Its state
    is two moment tables and a [vocab] count per table, updated in the touched rows only, so a
    step costs the same whatever the vocabulary's size."""

    lr: Hyper
    b1: Hyper = 0.9
    b2: Hyper = 0.999
    schedule: Schedule = None
    eps: float = 1e-8

    def init(self, params: Params) -> Any:
        return {
            name: {
                "mu": jnp.zeros_like(params[name]),
                "nu": jnp.zeros_like(params[name]),
                "count": jnp.zeros(params[name].shape[:1], jnp.int32),
            }
            for name in params
        }

    def row_step(self, ids: jax.Array, rows: jax.Array, moments: dict, rate: Hyper):
        count = _get(moments["count"], ids) + 1
        mu = self.b1 * _get(moments["mu"], ids) + (1 - self.b1) * rows
        nu = self.b2 * _get(moments["nu"], ids) + (1 - self.b2) * jnp.square(rows)
        t = count.astype(jnp.float32).reshape(-1, *(1,) * (rows.ndim - 1))  # [n, (1,) 1]
        mu_hat, nu_hat = mu / (1 - self.b1**t), nu / (1 - self.b2**t)
        return (
            -rate * mu_hat / (jnp.sqrt(nu_hat) + self.eps),
            {
                "mu": _set(moments["mu"], ids, mu),
                "nu": _set(moments["nu"], ids, nu),
                "count": _set(moments["count"], ids, count),
            },
        )


def schedule(config: Config, total_steps: int) -> Schedule:
    """The factor of ``config``'s rate at each step of a run of ``total_steps``: up linearly
    from 1/warm-up over its first ``optimizer.warmup_steps`` steps, then 1 ("constant") or down
    linearly to ``FINAL_LR_FRACTION`` at ``total_steps`` ("linear"); None when it is 1
    throughout, so that the book's Adam takes its rate as it is."""
    decays = config.optimizer.rate_decays
    warmup = config.optimizer.warmup_steps
    if not decays and not warmup:
        return None

    def factor(step: jax.Array) -> jax.Array:
        step = step.astype(jnp.float32)
        value = jnp.float32(1.0)
        if decays:
            value = jnp.maximum(1.0 - step / max(total_steps, 1), FINAL_LR_FRACTION)
        if warmup:
            value = value * jnp.minimum((step + 1.0) / warmup, 1.0)
        return value

    return factor


def scheduled(lr: Hyper, factor: Schedule, step: jax.Array) -> Hyper:
    """The rate at ``step``: ``lr`` times the schedule's factor."""
    return lr if factor is None else lr * factor(step)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered optimiser: how to build it from its hyperparameters and the run's total
    steps, and the learning rate a run gets when its config leaves ``lr`` unset. Each
    optimiser's learning rate has its own scale (a step of Adam is about ``lr`` whatever the
    gradient; one of SGD is ``lr`` times a gradient that is a mean over the batch), so none
    shares another's default."""

    build: Callable[[dict[str, Hyper], Schedule], Optimizer]
    default_lr: float
    hyperparameters: tuple[str, ...] = ("lr",)
    """The OptimizerConfig fields it reads (each may differ between runs trained together)."""


def _optax_entry(make: Callable, default_lr: float, **names: str) -> Entry:
    """A dense optax optimiser; ``names`` maps its keyword arguments to OptimizerConfig fields."""

    def build(hyper: dict[str, Hyper], factor: Schedule) -> Optimizer:
        lr = hyper["lr"]
        # optax counts its steps in its state, from 0 as TrainState.step does.
        rate = lr if factor is None else (lambda count: lr * factor(count))
        return DenseOptax(
            make(learning_rate=rate, **{arg: hyper[field] for arg, field in names.items()})
        )

    return Entry(build, default_lr, ("lr", *names.values()))


# Config.optimizer.name -> its entry. Adam's is the book's; rowwise_adagrad's and lazy_adam's come
# from the PTB sweeps of results/sweeps (see docs/optimisers.md). sparse_sgd's learns at every
# preset's batch size, 512 to 16,384, with either noise sharing (tests/test_presets.py): the
# sweeps' 2500, chosen at 2,048, diverges at 512.
REGISTRY: dict[str, Entry] = {
    "adam": _optax_entry(optax.adam, 0.01, b1="b1", b2="b2"),
    "sparse_sgd": Entry(lambda hyper, factor: SparseSGD(hyper["lr"], factor), 1250.0),
    "rowwise_adagrad": Entry(lambda hyper, factor: RowwiseAdagrad(hyper["lr"], factor), 0.2),
    "lazy_adam": Entry(
        lambda hyper, factor: LazyAdam(hyper["lr"], hyper["b1"], hyper["b2"], factor),
        0.01,
        ("lr", "b1", "b2"),
    ),
}


def learning_rate(config: Config) -> float:
    """The learning rate a run of ``config`` trains with: its own, else its optimiser's
    default."""
    own = config.optimizer
    return REGISTRY[own.name].default_lr if own.lr is None else own.lr


def make(configs: Config | Sequence[Config], total_steps: int = 0) -> Optimizer:
    """The optimiser of ``configs`` for a run of ``total_steps``. Several configs (runs
    trained together, differing only in their optimiser's hyperparameters) give one optimiser
    whose hyperparameters are [runs, 1] arrays: they broadcast over tables and rows laid out
    [..., runs, embed], so every run takes its own step. Its rate follows the configs'
    schedule (``schedule``) over ``total_steps``."""
    configs = list(configs) if isinstance(configs, (list, tuple)) else [configs]
    entry = REGISTRY[configs[0].optimizer.name]
    hyper = {}
    for field in entry.hyperparameters:
        values = [
            learning_rate(c) if field == "lr" else getattr(c.optimizer, field) for c in configs
        ]
        hyper[field] = values[0] if len(configs) == 1 else jnp.asarray(values, jnp.float32)[:, None]
    return entry.build(hyper, schedule(configs[0], total_steps))


def _dense(table: jax.Array, touched: list[Touched]) -> jax.Array:
    """The dense gradient of ``table`` from its touched rows (duplicates add up)."""
    total = None
    for part in touched:
        ids, rows = part.flat(table.shape[0])
        part = jnp.zeros_like(table).at[ids].add(rows, mode="drop")
        total = part if total is None else total + part
    return total


def _concatenated(touched: list[Touched], num_rows: int) -> tuple[jax.Array, jax.Array]:
    """All touched ids [n] and their rows [n, (runs,) embed], in one array each (ids not read
    out of range: ``Touched.read_ids``)."""
    flat = [part.flat(num_rows) for part in touched]
    return jnp.concatenate([ids for ids, _ in flat]), jnp.concatenate([rows for _, rows in flat])


def _summed(touched: list[Touched], num_rows: int) -> tuple[jax.Array, jax.Array]:
    """The distinct ids of the touched rows, [n] in the order of the parts, each at the
    position of its first occurrence (the other positions, and ids not read, hold
    ``num_rows``, which is out of range), and the sum of each one's rows there.

    Without a sort: a scatter-min into a [num_rows + 1] scratch array finds each id's first
    position. Each part's rows are added where they are, not copied into one array first.
    """
    ids = jnp.concatenate([part.read_ids(num_rows) for part in touched])
    position = jnp.arange(ids.shape[0], dtype=jnp.int32)
    first = jnp.full((num_rows + 1,), ids.shape[0], jnp.int32).at[ids].min(position)[ids]
    parts = [part.flat(num_rows)[1] for part in touched]
    summed = jnp.zeros((ids.shape[0], *parts[0].shape[1:]), parts[0].dtype)
    starts = itertools.accumulate((len(rows) for rows in parts), initial=0)
    for rows, start in zip(parts, starts):
        summed = summed.at[first[start : start + len(rows)]].add(rows, mode="promise_in_bounds")
    return jnp.where(first == position, ids, num_rows), summed


def _get(array: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of ``array`` at ``ids``; the padding id (out of range) reads zeros."""
    return array.at[ids].get(mode="fill", fill_value=0)


def _set(array: jax.Array, ids: jax.Array, values: jax.Array) -> jax.Array:
    """``array`` with the rows at ``ids`` replaced; the padding id (out of range) writes nothing."""
    return array.at[ids].set(values, mode="drop")
