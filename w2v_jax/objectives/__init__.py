"""The objectives: what a step computes from a batch's rows, each a Flax NNX module that owns
its tables (``nnx.Param``s: ``center`` and ``context``, and any of its own).

An objective owns four things, and nothing else in the feed, the draws, the layouts, the
meshes or the loop knows which one trains:

1. its tables, created by ``create`` (the state the step and the checkpoints hold is their
   pure dict, ``tables_of``; ``bind`` makes the module again from it);
2. the row its examples hold for a center (``w2v_jax.rows.RowLayout``: how many noise words a
   row holds and which words they avoid), which the numpy stage and the device draws emit;
3. the loss on the gathered rows (``rows`` gathers them from its tables, ``loss`` scores them);
4. which table rows a step touched (``touched``: each table's ``Touched`` ids and gradient
   rows, what the optimisers take).

``word_table`` names the table that holds its word vectors (``Embeddings`` reads it). Adding an
objective: docs/objectives.md.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

import jax
import numpy as np
from flax import nnx

from w2v_jax.objectives.cbow import CBOW
from w2v_jax.objectives.common import Metrics
from w2v_jax.objectives.skipgram import SkipGram
from w2v_jax.pairs import Pairs
from w2v_jax.tables import NAMES, Tables

if TYPE_CHECKING:
    from w2v_jax.config import Config


class Objective(Protocol):
    title: str  # as a plot's title names it
    word_table: str
    gathers: float

    def rows(self, pairs: Pairs, noise: jax.Array | None) -> tuple: ...

    def loss(self, rows: tuple, pairs: Pairs) -> tuple[jax.Array, Metrics]: ...

    def touched(self, pairs: Pairs, noise: jax.Array | None, grads: tuple) -> dict[str, Any]: ...


REGISTRY: dict[str, type] = {"skipgram": SkipGram, "cbow": CBOW}
"""``Config.objective`` -> its class."""


def create(config: Config, vocab_size: int, key: jax.Array, runs: int | None = None) -> Objective:
    """``config``'s objective with fresh tables for a vocabulary of ``vocab_size`` (drawn from
    ``key``; with ``runs``, a run axis [vocab, runs, embed]), its noise words' count and its
    slots' weighting."""
    return REGISTRY[config.objective](
        vocab_size,
        config.embed_size,
        key=key,
        num_noise=config.noise.count,
        per_slot=config.loss_weighting == "per_slot",
        runs=runs,
    )


def tables_of(objective: Objective) -> Tables:
    """The objective's tables by name: its NNX state as a pure dict, what the step holds."""
    return nnx.to_pure_dict(nnx.state(objective))


def bind(config: Config, tables: Tables) -> Objective:
    """``config``'s objective over ``tables`` (its state, of any vocabulary, run axis or
    padding), without copying them: in the compiled step, at trace time."""
    per_slot = config.loss_weighting == "per_slot"
    return nnx.merge(_graph(REGISTRY[config.objective], config.noise.count, per_slot), tables)


@functools.cache
def _graph(cls: type, num_noise: int, per_slot: bool) -> nnx.GraphDef:
    """The structure of objective ``cls`` (its tables' names and its settings), from an
    abstract module: no table is drawn."""
    abstract = nnx.eval_shape(
        lambda: cls(1, 1, key=jax.random.key(0), num_noise=num_noise, per_slot=per_slot)
    )
    return nnx.split(abstract)[0]


def table_loss(
    objective: Objective, pairs: Pairs, noise: jax.Array | None = None
) -> tuple[jax.Array, Metrics]:
    """The objective's loss of its tables themselves (for tests and profiles: the step
    differentiates with respect to the gathered rows instead)."""
    return objective.loss(objective.rows(pairs, noise), pairs)


TABLES = ("words", "center", "context", "sum")
"""Which vectors a run's ``Embeddings`` are (``table_names``)."""


def table_names(table: str, objective: str) -> tuple[str, ...]:
    """The tables whose sum are the vectors ``table`` names: "words", ``objective``'s word
    vectors (skip-gram's center table, the book's choice; CBOW's context table, gensim's
    choice), "center", "context", or "sum" of the two."""
    if table not in TABLES:
        raise ValueError(f"table={table!r}: choose one of {list(TABLES)}")
    if table == "words":
        return (REGISTRY[objective].word_table,)
    return NAMES if table == "sum" else (table,)


def vectors_of(params: dict, table: str, objective: str, rows: int) -> np.ndarray:
    """The vectors ``table`` names of the first ``rows`` rows of ``params`` (the tables); one
    table's are its own rows, not a copy (a large vocabulary's vectors are held once)."""
    vectors = [
        np.asarray(params[name][:rows], np.float32) for name in table_names(table, objective)
    ]
    return vectors[0] if len(vectors) == 1 else sum(vectors)
