"""CBOW, word2vec's continuous bag of words as gensim's ``cbow_mean=1``: the mean of a center's
context vectors (``context`` table) scored against the center's vector (``center`` table,
label 1) and its noise words' (label 0), by the same masked sigmoid BCE.

Its rows (``w2v_jax.rows.RowLayout``): the center's contexts, then num_noise noise words for the
center (not for each context), each drawn again while it equals the center. A row's loss is the
BCE of its 1 + num_noise scored slots divided by their number (with shared noise: the center's
term plus num_noise / shared times its BCE against its group's noise words, over 1 + num_noise),
the batch's the mean over its real rows; ``per_slot`` weighs every scored slot of the batch the
same. The word vectors are the context table's: the vectors a center's contexts are read from,
as gensim's (its input vectors).
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
    reciprocal,
    row_weights,
    shared_noise_terms,
)
from w2v_jax.pairs import Pairs
from w2v_jax.tables import lookup


class CBOW(WordTables):
    """The CBOW objective (``w2v_jax.objectives.Objective``): its tables, its rows, its loss
    and the rows a step touched."""

    title = "CBOW"
    word_table = "context"
    # Rows a step holds per pair, against skip-gram's 1 (w2v_jax.training.memory): a pair's word is
    # gathered from both tables; XLA's peak held 1.04 to 1.97 times skip-gram's estimate over
    # the optimisers and shapes of tests/test_memory.py.
    gathers = 1.75

    def rows(self, pairs: Pairs, noise: jax.Array | None) -> tuple:
        """Each row's mean context vector (context table), the pairs' rows of the center
        table (read by the noise slots alone; None when the noise words are shared, so that
        rows hold none), the centers' rows, and the shared noise's (or None).

        The loss is differentiated with respect to the means, not the context rows: a center's
        one gradient row then serves each of its contexts (``touched``), as word2vec's CBOW
        updates them, with no gradient row per pair."""
        center = self.center[...]
        context_rows = lookup(self.context[...], pairs.words)
        num_contexts = pairs.num_contexts.astype(jnp.float32)
        return (
            _context_means(context_rows, _is_context(pairs), pairs.owner, num_contexts),
            None if noise is not None else lookup(center, pairs.words),
            lookup(center, pairs.centers),
            None if noise is None else lookup(center, noise),
        )

    def loss(self, rows: tuple, pairs: Pairs) -> tuple[jax.Array, Metrics]:
        return cbow_loss(*rows[:3], pairs, rows[3], self.num_noise, self.per_slot)

    def touched(self, pairs: Pairs, noise: jax.Array | None, grads: tuple) -> dict:
        """The real rows' centers and the noise slots' words (center table); each context
        slot's word with its row's gradient of the mean over its contexts (the mean's gradient
        / num_contexts), indexed (context table)."""
        center = [Touched(pairs.centers, grads[2], mask=pairs.num_live > 0)]
        if noise is None:
            center.append(Touched(pairs.words, grads[1], mask=pairs.mask & ~pairs.labels))
        else:
            center.append(Touched(noise, grads[3]))
        return {"center": center, "context": [_context_gradients(pairs, grads[0])]}


def _is_context(pairs: Pairs) -> jax.Array:
    return pairs.labels & pairs.mask


def _context_gradients(pairs: Pairs, mean_grads: jax.Array) -> Touched:
    """Each context slot's gradient as its row's one gradient row [batch, (runs,) embed],
    indexed by slot: the mean's gradient over the row's contexts; the other slots not read."""
    scale = reciprocal(pairs.num_contexts.astype(jnp.float32))
    per_row = mean_grads * scale.reshape(-1, *(1,) * (mean_grads.ndim - 1))
    return Touched(pairs.words, per_row, pairs.rows_of_pairs, mask=_is_context(pairs))


def cbow_loss(
    means: jax.Array,
    noise_word_rows: jax.Array | None,
    center_rows: jax.Array,
    pairs: Pairs,
    noise_rows: jax.Array | None = None,
    num_noise: int = 0,
    per_slot: bool = False,
) -> tuple[jax.Array, Metrics]:
    """The batch's CBOW loss as a function of its rows' context means and gathered rows.

    Args:
      means: [batch, (runs,) embed], each row's mean context vector (0 for a padding row).
      noise_word_rows: [pairs, (runs,) embed], the center table's rows of the noise slots
        (None with ``noise_rows``: the rows hold no noise words).
      center_rows: [batch, (runs,) embed], the center table's rows of ``pairs.centers``.
      pairs: ``owner``, ``labels``, ``mask``, ``num_contexts`` and ``num_live``
        (``w2v_jax.objectives.common``).
      noise_rows: with shared noise, [groups, shared, (runs,) embed] of the center table.
      num_noise: noise words each center stands for (used with ``noise_rows``).
      per_slot: weigh every scored slot of the batch the same rather than every row.
    Returns:
      ``common.batch_loss``: the mean loss over the real rows and the metrics.
    """
    is_noise = pairs.mask & ~pairs.labels
    num_contexts = pairs.num_contexts.astype(jnp.float32)
    real = num_contexts > 0
    num_examples = real.sum().astype(jnp.float32)
    if noise_rows is None:
        noise_slots = pairs.num_live.astype(jnp.float32) - num_contexts
    else:
        noise_slots = jnp.full_like(num_contexts, num_noise)
    weight = row_weights(jnp.where(real, 1 + noise_slots, 0), num_examples, per_slot)
    center_logits = jnp.sum(means * center_rows, axis=-1)  # [batch, (runs)]
    center_terms = optax.sigmoid_binary_cross_entropy(center_logits, 1.0)
    loss_sum = jnp.sum(over_runs(weight, center_terms) * center_terms, axis=0)
    if noise_word_rows is not None:
        spread, logits = pair_logits(means, noise_word_rows, pairs.owner)  # [pairs, (runs)]
        pair_weight = jnp.where(is_noise, spread(weight), 0.0)
        noise_terms = optax.sigmoid_binary_cross_entropy(logits, 0.0)
        loss_sum += jnp.sum(over_runs(pair_weight, logits) * noise_terms, axis=0)
    if noise_rows is not None:
        shared_terms = shared_noise_terms(means, noise_rows)  # [batch, (runs)]
        shared_weight = num_noise / noise_rows.shape[1] * weight
        loss_sum += jnp.sum(over_runs(shared_weight, shared_terms) * shared_terms, axis=0)
    return batch_loss(loss_sum, num_examples)


def _context_means(
    context_rows: jax.Array, is_context: jax.Array, owner: jax.Array | None, num_contexts
) -> jax.Array:
    """Each row's mean context vector [batch, (runs,) embed] (0 for a padding row)."""
    batch = num_contexts.shape[0]
    weights = is_context.astype(jnp.float32)
    if owner is None:  # whole rows of equal length
        rows = context_rows.reshape(batch, -1, *context_rows.shape[1:])
        sums = jnp.einsum("bl,bl...->b...", weights.reshape(batch, -1), rows)
    else:
        weighted = context_rows * weights.reshape(-1, *(1,) * (context_rows.ndim - 1))
        sums = jax.ops.segment_sum(weighted, owner, num_segments=batch)
    scale = reciprocal(num_contexts)
    return sums * scale.reshape(-1, *(1,) * (sums.ndim - 1))
