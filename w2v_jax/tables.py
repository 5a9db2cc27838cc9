"""Embedding tables: how one is drawn (``table``) and read (``lookup``), and the state the
optimisers, the meshes and the checkpoints see: a dict of the tables by name (``Tables``), the
pure state of an objective's Flax NNX module (``w2v_jax.objectives``), which declares them:
``center`` (the book's v, the vectors of words as centers) and ``context`` (u, their vectors as
contexts) for skip-gram and CBOW, and any table of its own for another objective.
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp

from w2v_jax.compat import LINEN_NAMES

Tables = dict[str, jax.Array]  # {"center": [vocab, (runs,) embed], "context": ...}
NAMES = ("center", "context")
"""The word tables every objective has; a run's vectors are one of them or their sum."""

# A table's draw is folded with the name a linen module first gave it, so that every run keeps
# the values it always had; another objective's table with its own name.
DRAW_NAMES = LINEN_NAMES


def table(
    key: jax.Array, name: str, vocab_size: int, embed_size: int, runs: int | None = None
) -> jax.Array:
    """Table ``name`` Xavier-uniform [vocab, embed], as the book's PyTorch code initialises its
    tables, from ``key`` folded with the name (each table's own draw, the one it always had);
    with ``runs``, repeated over a run axis [vocab, runs, embed]: runs trained together start
    from the same tables."""
    init = jax.nn.initializers.xavier_uniform()
    key = _table_key(key, DRAW_NAMES.get(name, name))
    values = init(key, (vocab_size, embed_size), jnp.float32)
    return values if runs is None else jnp.repeat(values[:, None], runs, axis=1)


def _table_key(key: jax.Array, saved_name: str) -> jax.Array:
    """The key linen gave the table's module: ``key`` folded with the SHA-1 of its name and
    the module's first draw (flax.core.scope's static fold-in, its default separator)."""
    digest = hashlib.sha1(saved_name.encode() + (1).to_bytes(1, "big")).digest()
    return jax.random.fold_in(key, jnp.uint32(int.from_bytes(digest[:4], "big")))


def lookup(table: jax.Array, ids: jax.Array) -> jax.Array:
    """Rows of ``table``. Ids come from the vocabulary, so they are in range: promising it spares
    XLA the bounds handling of a default take, in the gather and in its gradient."""
    return table.at[ids].get(mode="promise_in_bounds")
