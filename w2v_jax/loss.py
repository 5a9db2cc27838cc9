"""The one skip-gram negative-sampling loss, on gathered rows.

A batch reaches the loss as pairs (``w2v_jax.batches``): each pair is a center and a word, the
word a context (label 1) or a noise word (label 0), with the row of the batch it belongs to
(``owner``) and whether it is live. The book's padded rows are one way of filling the pairs
(every slot of every row, the dead ones masked), packed rows another (the live slots end to
end), noise words shared by groups of centers a third (the pairs hold contexts only; each
group's centers are scored against the group's noise rows).

A row's loss is the book's: the sigmoid BCE of its live slots, summed and divided by their
number (with shared noise, each context's noise term is weighted num_noise / shared and the
divisor is the book's num_contexts * (1 + num_noise)); the batch's loss is the mean over its
real rows (rows with a live slot). ``per_slot`` weighs every live slot the same instead
(``Config.loss_weighting``, word2vec's objective). Rows may carry a run axis before the
embedding axis (several runs trained together on the same pairs): the loss sums [runs] are then
returned per run.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Pairs = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def masked_sigmoid_bce(
    logits: jax.Array, labels: jax.Array, mask: jax.Array, normalize: bool = True
) -> jax.Array:
    """The book's loss of padded rows: per-example sigmoid binary cross-entropy over the
    masked slots, [batch, length] -> [batch]; the reference ``sgns_loss`` is tested against.

    ``normalize=True`` gives sum(bce * mask) / sum(mask), the loss the book trains on
    (``loss(pred, label, mask) / mask.sum(1) * L``); ``False`` gives the book's ``SigmoidBCELoss``,
    mean(bce * mask) over the length. A fully masked row gives 0 and a zero gradient.
    """
    mask = mask.astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)) * mask
    if not normalize:
        return bce.mean(axis=-1)
    live = mask.sum(axis=-1)
    # The safe denominator keeps both the value and the gradient of an empty row at 0, not NaN.
    return bce.sum(axis=-1) / jnp.where(live > 0, live, 1.0)


def sgns_loss(
    center_rows: jax.Array,
    word_rows: jax.Array,
    pairs: Pairs,
    noise_rows: jax.Array | None = None,
    num_noise: int = 0,
    per_slot: bool = False,
) -> tuple[jax.Array, Metrics]:
    """The batch's loss as a function of its gathered rows.

    Args:
      center_rows: [batch, (runs,) embed], the rows of ``pairs["centers"]``.
      word_rows: [pairs, (runs,) embed], the rows of ``pairs["words"]``.
      pairs: ``owner`` (None for whole rows of equal length), ``labels`` and ``mask``
        [pairs]; ``num_contexts`` and ``num_live`` [batch] (see ``w2v_jax.batches``).
      noise_rows: with shared noise, [groups, shared, (runs,) embed]: group g's noise words,
        shared by the g-th batch / groups consecutive centers.
      num_noise: noise words each context stands for (used with ``noise_rows``).
      per_slot: weigh every live slot of the batch the same (word2vec's objective) rather
        than every row (the book's): the loss is then the mean over the batch's live slots.
    Returns:
      The mean loss over the real rows (summed over runs), and the metrics ``loss_sum`` and
      ``num_examples`` (each [runs] with a run axis, else scalars).
    """
    spread, logits = _pair_logits(center_rows, word_rows, pairs["owner"])  # [pairs, (runs)]
    num_contexts = pairs["num_contexts"].astype(jnp.float32)
    if noise_rows is None:  # the book's rows: each normalised by its live slots
        labels, slots = pairs["labels"].astype(jnp.float32), pairs["num_live"]
    else:  # only contexts are pairs; each row's noise term is weighted as the book's
        labels = jnp.ones(logits.shape[:1], jnp.float32)
        slots = num_contexts * (1 + num_noise)
    num_examples = (pairs["num_live"] > 0).sum().astype(jnp.float32)
    slots = slots.astype(jnp.float32)
    if per_slot:  # one weight for every slot: divided by num_examples below, the slots' mean
        weight = jnp.where(slots > 0, num_examples / jnp.maximum(slots.sum(), 1.0), 0.0)
    else:
        weight = _reciprocal(slots)
    pair_weight = jnp.where(pairs["mask"], spread(weight), 0.0)
    loss_sum = jnp.sum(
        _over_runs(pair_weight, logits)
        * optax.sigmoid_binary_cross_entropy(logits, _over_runs(labels, logits)),
        axis=0,
    )
    if noise_rows is not None:
        noise_terms = _noise_terms(center_rows, noise_rows)  # [batch, (runs)]
        noise_weight = num_contexts * num_noise / noise_rows.shape[1] * weight
        loss_sum += jnp.sum(_over_runs(noise_weight, noise_terms) * noise_terms, axis=0)
    total = loss_sum if loss_sum.ndim == 0 else loss_sum.sum()
    return total / jnp.maximum(num_examples, 1.0), {
        "loss_sum": loss_sum,
        "num_examples": jnp.broadcast_to(num_examples, loss_sum.shape),
    }


def _pair_logits(
    center_rows: jax.Array, word_rows: jax.Array, owner: jax.Array | None
) -> tuple[Callable[[jax.Array], jax.Array], jax.Array]:
    """Each pair's center . word logit, and ``spread``: per-row values [batch] -> per-pair
    [pairs]. ``owner`` None means whole rows of equal length (the padded layout): then a
    batched product and a broadcast, with no gather per pair (the packed layout's gathers cost
    less than the padding they skip)."""
    if owner is not None:
        return (lambda per_row: per_row[owner]), jnp.sum(center_rows[owner] * word_rows, axis=-1)
    batch = center_rows.shape[0]
    words = word_rows.reshape(batch, -1, *word_rows.shape[1:])  # [batch, length, (runs,) e]
    logits = jnp.einsum("b...e,bl...e->bl...", center_rows, words)

    def spread(per_row: jax.Array) -> jax.Array:
        return jnp.broadcast_to(per_row[:, None], logits.shape[:2]).reshape(-1)

    return spread, logits.reshape(-1, *logits.shape[2:])


def _noise_terms(center_rows: jax.Array, noise_rows: jax.Array) -> jax.Array:
    """Each center's BCE against its group's shared noise words, summed: [batch, (runs)]."""
    groups = noise_rows.shape[0]
    grouped = center_rows.reshape(groups, -1, *center_rows.shape[1:])
    logits = jnp.einsum("gb...e,gs...e->gb...s", grouped, noise_rows)
    bce = optax.sigmoid_binary_cross_entropy(logits, 0.0).sum(axis=-1)
    return bce.reshape(center_rows.shape[0], *bce.shape[2:])


def _over_runs(per_item: jax.Array, like: jax.Array) -> jax.Array:
    """``per_item`` [n] shaped to broadcast against ``like`` [n, (runs)]."""
    return per_item.reshape(per_item.shape + (1,) * (like.ndim - 1))


def _reciprocal(count: jax.Array) -> jax.Array:
    """1 / count, and 0 for an empty row (whose pairs are all dead anyway)."""
    return jnp.where(count > 0, 1.0 / jnp.where(count > 0, count, 1.0), 0.0)
