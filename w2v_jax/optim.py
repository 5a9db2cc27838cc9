"""The optimisers of the two tables: one interface, a registry keyed by ``Config.optimizer``.

An optimiser sees a step's gradient as the rows the batch touched: for each table, a list of
(ids [n], gradient rows [n, (runs,) embed]) with duplicate ids not yet summed. It owns its state
(``init`` from the parameters) and returns the new parameters and state (``update``).

- Dense ones (``DenseOptax``: the book's Adam, Adagrad, SGD) scatter the rows into a dense
  gradient, which is exactly what differentiating the loss through the table lookups gives,
  and let optax update every row.
- Row-sparse ones (``SparseSGD``) update only the touched rows, so a step costs the same
  whatever the vocabulary's size.

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


def _sparse_sgd(config: Config, total_steps: int, injectable: bool) -> Optimizer:
    if injectable:
        raise ValueError("optimizer='sparse_sgd' updates its tables in place; train its runs "
                         "one after another")
    return SparseSGD(config.lr, total_steps)


# Config.optimizer -> a builder from (config, the run's total steps, injectable).
REGISTRY: dict[str, Callable[[Config, int, bool], Optimizer]] = {
    "adam": _dense_optax(optax.adam, b1="adam_b1", b2="adam_b2"),
    "adagrad": _dense_optax(optax.adagrad),
    "sgd": _dense_optax(optax.sgd),
    "sparse_sgd": _sparse_sgd,
}


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


# Vocabulary ids are always in range, as model.lookup promises for the gathers.
_IN_RANGE = {"mode": "promise_in_bounds"}
