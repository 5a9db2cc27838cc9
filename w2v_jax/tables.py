"""The two embedding tables, by name: ``center`` (the book's v, the vectors of words as
centers) and ``context`` (u, their vectors as contexts). An objective says which rows of which
table a step reads (``w2v_jax.objectives``); the optimisers, the meshes and the checkpoints see
only this structure.

The tables are a plain dict, a pytree every library walks (optax, Orbax, ``jax.tree``). Flax
held them in a linen module that was only ever initialised; two lookup tables need no module
system, and an objective that needs real layers would bring its own (Flax NNX, whose state
splits into the same kind of pytree).
"""

from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp

Tables = dict[str, jax.Array]  # {"center": [vocab, (runs,) embed], "context": ...}
NAMES = ("center", "context")

# The names the tables were first saved under (a linen module's two nn.Embed): their keys seed
# the tables, so that every run keeps the values it always had, and checkpoints saved under
# them are still read (``w2v_jax.training.checkpoint``).
SAVED_NAMES = {"center": "center_embed", "context": "context_embed"}


def init_tables(key: jax.Array, vocab_size: int, embed_size: int) -> Tables:
    """Both tables Xavier-uniform, as the book's PyTorch code initialises them."""
    init = jax.nn.initializers.xavier_uniform()
    return {
        name: init(_table_key(key, SAVED_NAMES[name]), (vocab_size, embed_size), jnp.float32)
        for name in NAMES
    }


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
