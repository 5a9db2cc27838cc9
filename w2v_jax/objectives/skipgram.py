"""Skip-gram (the book's objective, d2l 14.4): each center's vector (``center`` table) scored
against each of its context words' vectors (``context`` table, label 1) and their noise words'
(label 0), by the masked sigmoid BCE.

A row's loss is the book's: the BCE of its live slots, summed and divided by their number (with
shared noise, each context's noise term is weighted num_noise / shared and the divisor is the
book's num_contexts * (1 + num_noise)); the batch's loss is the mean over its real rows (rows
with a live slot). ``per_slot`` weighs every live slot the same instead
(``Config.loss_weighting``, word2vec's objective). The word vectors are the center table's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from w2v_jax.objectives.common import (
    Metrics,
    Touched,
    WordTables,
    batch_loss,
    over_runs,
    pair_logits,
    row_weights,
    shared_noise_terms,
)
from w2v_jax.pairs import Pairs
from w2v_jax.tables import lookup


class SkipGram(WordTables):
    """The skip-gram objective (``w2v_jax.objectives.Objective``): its tables, its rows, its
    loss and the rows a step touched."""

    title = "skip-gram"
    word_table = "center"
    gathers = 1  # rows a step holds per pair (w2v_jax.training.memory)

    def rows(self, pairs: Pairs, noise: jax.Array | None) -> tuple:
        """The pairs' center rows, their words' context rows, the shared noise's (or None)."""
        context = self.context[...]
        return (
            lookup(self.center[...], pairs.centers),
            lookup(context, pairs.words),
            None if noise is None else lookup(context, noise),
        )

    def loss(self, rows: tuple, pairs: Pairs) -> tuple[jax.Array, Metrics]:
        return sgns_loss(rows[0], rows[1], pairs, rows[2], self.num_noise, self.per_slot)

    def touched(self, pairs: Pairs, noise: jax.Array | None, grads: tuple) -> dict:
        """The real rows' centers, the live slots' words, the shared noise words."""
        context = [Touched(pairs.words, grads[1], mask=pairs.mask)]
        context += [] if noise is None else [Touched(noise, grads[2])]
        center = Touched(pairs.centers, grads[0], mask=pairs.num_live > 0)
        return {"center": [center], "context": context}


def sgns_loss(
    center_rows: jax.Array,
    word_rows: jax.Array,
    pairs: Pairs,
    noise_rows: jax.Array | None = None,
    num_noise: int = 0,
    per_slot: bool = False,
) -> tuple[jax.Array, Metrics]:
    """The batch's skip-gram loss as a function of its gathered rows.

    Args:
      center_rows: [batch, (runs,) embed], the rows of ``pairs.centers``.
      word_rows: [pairs, (runs,) embed], the rows of ``pairs.words``.
      pairs: ``owner``, ``labels``, ``mask``, ``num_contexts`` and ``num_live``
        (``w2v_jax.objectives.common``).
      noise_rows: with shared noise, [groups, shared, (runs,) embed]: group g's noise words,
        shared by the g-th batch / groups consecutive centers.
      num_noise: noise words each context stands for (used with ``noise_rows``).
      per_slot: weigh every live slot of the batch the same (word2vec's objective) rather
        than every row (the book's).
    Returns:
      ``common.batch_loss``: the mean loss over the real rows and the metrics.
    """
    spread, logits = pair_logits(center_rows, word_rows, pairs.owner)  # [pairs, (runs)]
    num_contexts = pairs.num_contexts.astype(jnp.float32)
    if noise_rows is None:  # the book's rows: each normalised by its live slots
        labels, slots = pairs.labels.astype(jnp.float32), pairs.num_live
    else:  # only contexts are pairs; each row's noise term is weighted as the book's
        labels = jnp.ones(logits.shape[:1], jnp.float32)
        slots = num_contexts * (1 + num_noise)
    num_examples = (pairs.num_live > 0).sum().astype(jnp.float32)
    weight = row_weights(slots, num_examples, per_slot)
    pair_weight = jnp.where(pairs.mask, spread(weight), 0.0)
    loss_sum = jnp.sum(
        over_runs(pair_weight, logits)
        * optax.sigmoid_binary_cross_entropy(logits, over_runs(labels, logits)),
        axis=0,
    )
    if noise_rows is not None:
        noise_terms = shared_noise_terms(center_rows, noise_rows)  # [batch, (runs)]
        noise_weight = num_contexts * num_noise / noise_rows.shape[1] * weight
        loss_sum += jnp.sum(over_runs(noise_weight, noise_terms) * noise_terms, axis=0)
    return batch_loss(loss_sum, num_examples)
