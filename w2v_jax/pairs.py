"""A batch's pairs as the step reads them: one typed record, each field declared once with its
shape, made by the pair layouts (``feed.batches``) and read by the objectives."""

from __future__ import annotations

import dataclasses

import jax


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Pairs:
    """The pairs of a batch of rows: each pair one slot of a row (a word of it and what the
    layout knows of the slot), with per-row counts."""

    centers: jax.Array
    """int32 [batch]: each row's center."""
    words: jax.Array
    """int32 [pairs]: each pair's word, a context or a noise word (0 in a dead slot)."""
    mask: jax.Array
    """bool [pairs]: the slot is live (a context or a noise word)."""
    labels: jax.Array
    """bool [pairs]: the slot holds a context word."""
    slot: jax.Array
    """int32 [pairs]: the pair's slot in its row (its contexts first, left to right)."""
    num_contexts: jax.Array
    """int32 [batch]: each row's contexts."""
    num_live: jax.Array
    """int32 [batch]: each row's live slots."""
    owner: jax.Array | None = None
    """int32 [pairs]: the position in the batch of each pair's row; None for whole rows of
    equal length (the padded layout: pair p belongs to row p // L)."""
