"""The optimisers of the two tables: one interface, a registry keyed by ``Config.optimizer``.

An optimiser sees a step's gradient as the rows the batch touched: for each table, a list of
(ids [n], gradient rows [n, (runs,) embed]) with duplicate ids not yet summed. It owns its state
(``init`` from the parameters) and returns the new parameters and state (``update``).

- Dense ones (``DenseOptax``: the book's Adam, Adagrad, SGD) scatter the rows into a dense
  gradient, which is exactly what differentiating the loss through the table lookups gives,
  and let optax update every row.
- Row-sparse ones (``SparseSGD``, ``RowwiseAdagrad``, ``LazyAdam``) update only the touched
  rows, so a step costs the same whatever the vocabulary's size; the adaptive ones keep their
  state per row, which is what large batches need (a row's gradient is a sum over the batch).

A new optimiser is one class with ``init`` and ``update``, an entry in ``REGISTRY``, and its test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import jax
import jax.numpy as jnp
import optax

if TYPE_CHECKING:
    from w2v_jax.config import Config

Params = dict[str, dict[str, jax.Array]]  # {"center_embed": {"embedding": [vocab, embed]}, ...}
RowGrads = dict[str, list[tuple[jax.Array, jax.Array]]]

FINAL_LR_FRACTION = 1e-4


class Optimizer(Protocol):
    def init(self, params: Params) -> Any: ...

    def update(self, params: Params, state: Any, grads: RowGrads,
               step: jax.Array) -> tuple[Params, Any]: ...


@dataclasses.dataclass(frozen=True)
class DenseOptax:
    """An optax optimiser applied to the whole tables (the book's Adam is this, exact)."""

    tx: optax.GradientTransformation

    def init(self, params: Params) -> Any:
        return self.tx.init(params)

    def update(self, params: Params, state: Any, grads: RowGrads,
               step: jax.Array) -> tuple[Params, Any]:
        del step  # optax counts its own steps
        dense = {name: {"embedding": _dense(params[name]["embedding"], grads[name])}
                 for name in params}
        updates, state = self.tx.update(dense, state, params)
        return optax.apply_updates(params, updates), state


@dataclasses.dataclass(frozen=True)
class SparseSGD:
    """SGD on the touched rows only, ``-rate * gradient`` scattered into the tables: the same
    update as dense SGD without a pass over every row. The rate decays linearly from ``lr`` to
    ``lr * FINAL_LR_FRACTION`` over ``total_steps``, as word2vec's does."""

    lr: float
    total_steps: int

    def init(self, params: Params) -> Any:
        return optax.EmptyState()  # stateless; a named empty state, which checkpoints can hold

    def update(self, params: Params, state: Any, grads: RowGrads,
               step: jax.Array) -> tuple[Params, Any]:
        rate = linear_decay(self.lr, self.total_steps)(step)
        new = {}
        for name, table in ((name, params[name]["embedding"]) for name in params):
            ids, rows = _concatenated(grads[name])
            new[name] = {"embedding": table.at[ids].add(-rate * rows, **_IN_RANGE)}
        return new, state


class _AdaptiveRows:
    """Row-sparse optimisers with state per row: for each table, the touched ids are made
    distinct (their gradient rows summed), then ``row_step(ids, rows, table_state)`` gives
    each row's step and the table's new state."""

    def update(self, params: Params, state: Any, grads: RowGrads,
               step: jax.Array) -> tuple[Params, Any]:
        new_params, new_state = {}, {}
        for name in params:
            table = params[name]["embedding"]
            ids, rows = _summed(*_concatenated(grads[name]), table.shape[0])
            step_rows, new_state[name] = self.row_step(ids, rows, state[name])
            new_params[name] = {"embedding": _set(table, ids, _get(table, ids) + step_rows)}
        return new_params, new_state


@dataclasses.dataclass(frozen=True)
class RowwiseAdagrad(_AdaptiveRows):
    """Adagrad with one accumulator per row (the mean of the row's squared gradient, summed
    over steps), updating only the touched rows: a row's step is
    ``-lr * g / sqrt(acc + eps)``. Duplicate ids are summed first. Its state is a [vocab]
    vector per table, so it costs the same whatever the vocabulary's size, and it adapts each
    row's step to how much that row is trained (frequent words get smaller steps)."""

    lr: float
    initial_accumulator: float = 0.1
    eps: float = 1e-10

    def init(self, params: Params) -> Any:
        return {name: jnp.full(params[name]["embedding"].shape[:1], self.initial_accumulator,
                               jnp.float32) for name in params}

    def row_step(self, ids: jax.Array, rows: jax.Array, acc: jax.Array):
        acc_rows = _get(acc, ids) + jnp.mean(jnp.square(rows), axis=-1)
        return -self.lr * rows / jnp.sqrt(acc_rows + self.eps)[:, None], _set(acc, ids, acc_rows)


@dataclasses.dataclass(frozen=True)
class LazyAdam(_AdaptiveRows):
    """Adam on the touched rows only (duplicate ids summed first). It differs from the dense
    Adam of the book in two ways: a row that a step does not touch keeps its moments and does
    not move (dense Adam decays its moments and keeps moving it along its momentum), and each
    row corrects its moments' bias by its own count of updates, not the global step. Its state
    is two moment tables and a [vocab] count per table, updated in the touched rows only, so a
    step costs the same whatever the vocabulary's size."""

    lr: float
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def init(self, params: Params) -> Any:
        return {name: {"mu": jnp.zeros_like(params[name]["embedding"]),
                       "nu": jnp.zeros_like(params[name]["embedding"]),
                       "count": jnp.zeros(params[name]["embedding"].shape[:1], jnp.int32)}
                for name in params}

    def row_step(self, ids: jax.Array, rows: jax.Array, moments: dict):
        count = _get(moments["count"], ids) + 1
        mu = self.b1 * _get(moments["mu"], ids) + (1 - self.b1) * rows
        nu = self.b2 * _get(moments["nu"], ids) + (1 - self.b2) * jnp.square(rows)
        t = count.astype(jnp.float32)[:, None]
        mu_hat, nu_hat = mu / (1 - self.b1 ** t), nu / (1 - self.b2 ** t)
        return (-self.lr * mu_hat / (jnp.sqrt(nu_hat) + self.eps),
                {"mu": _set(moments["mu"], ids, mu), "nu": _set(moments["nu"], ids, nu),
                 "count": _set(moments["count"], ids, count)})


def linear_decay(lr: float, total_steps: int) -> Callable[[jax.Array], jax.Array]:
    """Step -> learning rate, from ``lr`` down to ``lr * FINAL_LR_FRACTION`` at ``total_steps``."""

    def rate(step: jax.Array) -> jax.Array:
        left = 1.0 - step.astype(jnp.float32) / max(total_steps, 1)
        return lr * jnp.maximum(left, FINAL_LR_FRACTION)

    return rate


def _dense_optax(make: Callable, **hyper: Any) -> Callable[[Config, int, bool], Optimizer]:
    def build(config: Config, total_steps: int, injectable: bool) -> Optimizer:
        values = {name: getattr(config, field) for name, field in hyper.items()}
        maker = optax.inject_hyperparams(make) if injectable else make
        return DenseOptax(maker(learning_rate=config.lr, **values))

    return build


def _row_sparse(build: Callable[[Config, int], Optimizer]
                ) -> Callable[[Config, int, bool], Optimizer]:
    def checked(config: Config, total_steps: int, injectable: bool) -> Optimizer:
        if injectable:
            raise ValueError(f"optimizer={config.optimizer!r} updates its tables in place; "
                             f"train its runs one after another")
        return build(config, total_steps)

    return checked


# Config.optimizer -> a builder from (config, the run's total steps, injectable).
REGISTRY: dict[str, Callable[[Config, int, bool], Optimizer]] = {
    "adam": _dense_optax(optax.adam, b1="adam_b1", b2="adam_b2"),
    "adagrad": _dense_optax(optax.adagrad),
    "sgd": _dense_optax(optax.sgd),
    "sparse_sgd": _row_sparse(lambda config, total: SparseSGD(config.lr, total)),
    "rowwise_adagrad": _row_sparse(lambda config, total: RowwiseAdagrad(config.lr)),
    "lazy_adam": _row_sparse(lambda config, total: LazyAdam(config.lr, config.adam_b1,
                                                            config.adam_b2)),
}
DENSE = ("adam", "adagrad", "sgd")
"""The optimisers whose runs can be trained together (``w2v_jax.vectorised``)."""


def make(config: Config, total_steps: int = 0, injectable: bool = False) -> Optimizer:
    """The optimiser of ``config`` for a run of ``total_steps``. ``injectable=True`` keeps a
    dense optimiser's float hyperparameters in its state (``optax.inject_hyperparams``), so
    that states with different learning rates can be stacked and trained together."""
    return REGISTRY[config.optimizer](config, total_steps, injectable)


def _dense(table: jax.Array, touched: list[tuple[jax.Array, jax.Array]]) -> jax.Array:
    """The dense gradient of ``table`` from its touched rows (duplicates add up)."""
    total = None
    for ids, rows in touched:
        part = jnp.zeros_like(table).at[ids].add(rows, **_IN_RANGE)
        total = part if total is None else total + part
    return total


def _concatenated(touched: list[tuple[jax.Array, jax.Array]]) -> tuple[jax.Array, jax.Array]:
    """All touched ids [n] and their rows [n, (runs,) embed], in one array each."""
    return (jnp.concatenate([ids.reshape(-1) for ids, _ in touched]),
            jnp.concatenate([rows.reshape(-1, *rows.shape[ids.ndim:]) for ids, rows in touched]))


def _summed(ids: jax.Array, rows: jax.Array, vocab_size: int) -> tuple[jax.Array, jax.Array]:
    """The distinct ids of ``ids`` [n] (sorted, then padded with ``vocab_size``, which is out of
    range) and the sum of each one's rows: O(n log n), whatever the vocabulary's size."""
    unique, inverse = jnp.unique(ids, size=ids.shape[0], fill_value=vocab_size,
                                 return_inverse=True)
    summed = jnp.zeros_like(rows).at[inverse.reshape(-1)].add(rows)
    return unique, summed


def _get(array: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of ``array`` at ``ids``; the padding id (out of range) reads zeros."""
    return array.at[ids].get(mode="fill", fill_value=0)


def _set(array: jax.Array, ids: jax.Array, values: jax.Array) -> jax.Array:
    """``array`` with the rows at ``ids`` replaced; the padding id (out of range) writes nothing."""
    return array.at[ids].set(values, mode="drop")


# Vocabulary ids are always in range, as model.lookup promises for the gathers.
_IN_RANGE = {"mode": "promise_in_bounds"}
