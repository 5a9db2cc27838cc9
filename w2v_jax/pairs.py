"""A batch's pairs as the step reads them: one typed record, each field declared once with its
shape, made by the pair layouts (``feed.batches``) and read by the objectives; with the batch's
rows (``w2v_jax.rows.Rows``), so that every field a row has reaches the objective."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from w2v_jax.rows import Rows

# Rows cross the jit boundary as a pytree. Registered here, not in w2v_jax.rows, so that the
# numpy stage, which reads the declaration, loads no JAX.
jax.tree_util.register_dataclass(Rows)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Pairs:
    """The pairs of a batch of rows: each pair one slot of a row (a word of it and what the
    layout knows of the slot), with the batch's rows."""

    rows: Rows
    """The batch's rows, every field of ``Rows`` [batch, ...] (a padding row all 0s)."""
    words: jax.Array
    """int32 [pairs]: each pair's word, a context or a noise word (0 in a dead slot)."""
    mask: jax.Array
    """bool [pairs]: the slot is live (a context or a noise word)."""
    labels: jax.Array
    """bool [pairs]: the slot holds a context word."""
    slot: jax.Array
    """int32 [pairs]: the pair's slot in its row (its contexts first, left to right)."""
    offset: jax.Array
    """int32 [pairs]: a context's place relative to its center in the sentence as subsampled
    (-2: two words to its left; 1: the next word), 0 for a noise word or a dead slot."""
    owner: jax.Array | None = None
    """int32 [pairs]: the position in the batch of each pair's row; None for whole rows of
    equal length (the padded layout: pair p belongs to row p // L)."""

    @property
    def centers(self) -> jax.Array:
        """int32 [batch]: each row's center."""
        return self.rows.centers[:, 0]

    @property
    def num_contexts(self) -> jax.Array:
        """int32 [batch]: each row's contexts."""
        return self.rows.num_contexts

    @property
    def num_live(self) -> jax.Array:
        """int32 [batch]: each row's live slots."""
        return self.rows.num_live

    @property
    def rows_of_pairs(self) -> jax.Array:
        """int32 [pairs]: each pair's row in the batch (``owner``, or p // L for whole rows)."""
        if self.owner is not None:
            return self.owner
        pairs, batch = self.words.shape[0], self.rows.num_live.shape[0]
        return jnp.arange(pairs, dtype=jnp.int32) // (pairs // batch)

    def per_pair(self, per_row: jax.Array) -> jax.Array:
        """Values of the batch's rows [batch, ...] as values of their pairs [pairs, ...]."""
        if self.owner is not None:
            return per_row[self.owner]
        return jnp.repeat(per_row, self.words.shape[0] // per_row.shape[0], axis=0)

    @property
    def distance(self) -> jax.Array:
        """int32 [pairs]: a context's distance from its center (1 for a neighbour), 0 for
        other slots."""
        return jnp.abs(self.offset)
