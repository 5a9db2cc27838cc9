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

Tables = dict[str, jax.Array]  # {"center": [vocab, (runs,) embed], "context": ...}
NAMES = ("center", "context")
"""The word tables every objective has; a run's vectors are one of them or their sum."""

# The names the tables were first saved under (a linen module's two nn.Embed): their keys seed
# the tables, so that every run keeps the values it always had, and checkpoints saved under
# them are still read (``w2v_jax.training.checkpoint``).
SAVED_NAMES = {"center": "center_embed", "context": "context_embed"}


def table(
    key: jax.Array, name: str, vocab_size: int, embed_size: int, runs: int | None = None
) -> jax.Array:
    """Table ``name`` Xavier-uniform [vocab, embed], as the book's PyTorch code initialises its
    tables, from ``key`` folded with the name (each table's own draw, the one it always had);
    with ``runs``, repeated over a run axis [vocab, runs, embed]: runs trained together start
    from the same tables."""
    init = jax.nn.initializers.xavier_uniform()
    key = _table_key(key, SAVED_NAMES.get(name, name))
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


def from_saved(tree):
    """A tree restored from a checkpoint that named the tables by their first names (params
    {"center_embed": {"embedding": ...}, ...}, and optimiser state keyed alike) in the current
    structure; a current tree as it is."""
    current = {saved: name for name, saved in SAVED_NAMES.items()}

    def rename(node):
        if not _is_saved_tables(node):
            return node
        return {current[saved]: _unwrapped(value) for saved, value in node.items()}

    return jax.tree.map(rename, tree, is_leaf=_is_saved_tables)


def under_first_names(metadata) -> bool:
    """Whether a checkpoint step's item metadata (Orbax's) holds params under the first names."""
    params = metadata["params"]
    return _is_saved_tables(getattr(params, "tree", params))


def _is_saved_tables(node) -> bool:
    return isinstance(node, dict) and set(node) == set(SAVED_NAMES.values())


def _unwrapped(value):
    """A table under linen's "embedding" key, or a value as it is."""
    if isinstance(value, dict) and set(value) == {"embedding"}:
        return value["embedding"]
    return value
