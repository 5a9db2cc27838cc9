"""What every objective shares: the module that owns the two word tables (``WordTables``), the
book's masked sigmoid BCE (the reference), the weight of a row's slots, and logits of per-row
vectors against per-pair or shared rows.

A batch reaches an objective as ``w2v_jax.pairs.Pairs`` (made by ``w2v_jax.feed.batches``):
each pair one slot of a row, with the row it belongs to (``owner``; None for the padded
layout's whole rows of equal length), its ``slot`` in the row, ``labels`` (the row's context
slots), ``mask`` (live), and per row ``num_contexts`` and ``num_live``. Rows may carry a run
axis before the embedding axis (several runs trained together on the same pairs): a loss sum
is then per run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from w2v_jax import tables

Metrics = dict[str, jax.Array]


class WordTables(nnx.Module):
    """A Flax NNX module whose parameters are the word tables, ``center`` and ``context``
    (``nnx.Param``s [vocab, (runs,) embed], ``tables.table``), and the settings its loss reads:
    the base of skip-gram and CBOW. An objective with a table of its own declares it beside
    them in its ``__init__`` (docs/objectives.md).

    Its state (``nnx.state``, as a pure dict: ``w2v_jax.objectives.tables_of``) is what the
    step, the optimisers, the meshes and the checkpoints hold; the compiled step merges it back
    into the module while it traces (``w2v_jax.objectives.bind``), so no graph is walked per
    dispatch."""

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        *,
        key: jax.Array,
        num_noise: int = 0,
        per_slot: bool = False,
        runs: int | None = None,
    ) -> None:
        self.num_noise = num_noise
        """Noise words a context (skip-gram) or a center (CBOW) stands for, with shared noise."""
        self.per_slot = per_slot
        """Weigh every scored slot of a batch the same (word2vec's objective), not every row."""
        self.center = nnx.Param(tables.table(key, "center", vocab_size, embed_size, runs))
        self.context = nnx.Param(tables.table(key, "context", vocab_size, embed_size, runs))


class Touched(NamedTuple):
    """Rows of one table that a step touched, as the optimisers take them: ``ids`` [...] and
    their gradient rows, duplicates not yet summed.

    With ``index`` None, ``rows`` [..., (runs,) embed] holds a row for each id. Otherwise
    ``rows`` [m, (runs,) embed] holds shared rows and id j's gradient is ``rows[index[j]]``:
    CBOW's one gradient row per center serves each of its contexts without a copy per pair.

    ``mask`` [...] (None: all) says which ids the step read: an optimiser neither moves nor
    counts the others, whatever their id and row hold (a dead slot, a slot another table
    reads).
    """

    ids: jax.Array
    rows: jax.Array
    index: jax.Array | None = None
    mask: jax.Array | None = None

    def read_ids(self, num_rows: int) -> jax.Array:
        """The ids [n], each one not read replaced by ``num_rows``, out of the table's range:
        the optimisers' scatters drop it."""
        ids = self.ids.reshape(-1)
        return ids if self.mask is None else jnp.where(self.mask.reshape(-1), ids, num_rows)

    def flat(self, num_rows: int) -> tuple[jax.Array, jax.Array]:
        """The ids [n] (``read_ids``) and each one's gradient row [n, (runs,) embed]."""
        ids = self.read_ids(num_rows)
        if self.index is not None:
            return ids, self.rows[self.index.reshape(-1)]
        return ids, self.rows.reshape(-1, *self.rows.shape[self.ids.ndim :])


def masked_sigmoid_bce(
    logits: jax.Array, labels: jax.Array, mask: jax.Array, normalize: bool = True
) -> jax.Array:
    """The book's loss of padded rows: per-example sigmoid binary cross-entropy over the
    masked slots, [batch, length] -> [batch]; the reference the objectives are tested against.

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


def row_weights(slots: jax.Array, num_examples: jax.Array, per_slot: bool) -> jax.Array:
    """Each row's weight [batch] from its scored slots [batch] (0 for a padding row): 1 /
    slots, the book's mean over a row's slots; or with ``per_slot`` the same for every slot of
    the batch (word2vec's objective), so that the loss, divided by ``num_examples``, is the
    mean over the batch's slots."""
    slots = slots.astype(jnp.float32)
    if per_slot:
        return jnp.where(slots > 0, num_examples / jnp.maximum(slots.sum(), 1.0), 0.0)
    return reciprocal(slots)


def pair_logits(
    row_vectors: jax.Array, word_rows: jax.Array, owner: jax.Array | None
) -> tuple[Callable[[jax.Array], jax.Array], jax.Array]:
    """Each pair's logit, its row's vector . its word's row, and ``spread``: per-row values
    [batch] -> per-pair [pairs]. ``owner`` None means whole rows of equal length (the padded
    layout): then a batched product and a broadcast, with no gather per pair (the packed
    layout's gathers cost less than the padding they skip)."""
    if owner is not None:
        return (lambda per_row: per_row[owner]), jnp.sum(row_vectors[owner] * word_rows, axis=-1)
    batch = row_vectors.shape[0]
    words = word_rows.reshape(batch, -1, *word_rows.shape[1:])  # [batch, length, (runs,) e]
    logits = jnp.einsum("b...e,bl...e->bl...", row_vectors, words)

    def spread(per_row: jax.Array) -> jax.Array:
        return jnp.broadcast_to(per_row[:, None], logits.shape[:2]).reshape(-1)

    return spread, logits.reshape(-1, *logits.shape[2:])


def shared_noise_terms(row_vectors: jax.Array, noise_rows: jax.Array) -> jax.Array:
    """Each row's BCE against its group's shared noise words (label 0), summed: [batch,
    (runs)]. ``noise_rows`` [groups, shared, (runs,) embed] belong to batch / groups
    consecutive rows each."""
    groups = noise_rows.shape[0]
    grouped = row_vectors.reshape(groups, -1, *row_vectors.shape[1:])
    logits = jnp.einsum("gb...e,gs...e->gb...s", grouped, noise_rows)
    bce = optax.sigmoid_binary_cross_entropy(logits, 0.0).sum(axis=-1)
    return bce.reshape(row_vectors.shape[0], *bce.shape[2:])


def over_runs(per_item: jax.Array, like: jax.Array) -> jax.Array:
    """``per_item`` [n] shaped to broadcast against ``like`` [n, (runs)]."""
    return per_item.reshape(per_item.shape + (1,) * (like.ndim - 1))


def reciprocal(count: jax.Array) -> jax.Array:
    """1 / count, and 0 for an empty row (whose pairs are all dead anyway)."""
    return jnp.where(count > 0, 1.0 / jnp.where(count > 0, count, 1.0), 0.0)


def batch_loss(loss_sum: jax.Array, num_examples: jax.Array) -> tuple[jax.Array, Metrics]:
    """The mean loss over the real rows (summed over runs), and the metrics ``loss_sum`` and
    ``num_examples`` (each [runs] with a run axis, else scalars)."""
    total = loss_sum if loss_sum.ndim == 0 else loss_sum.sum()
    return total / jnp.maximum(num_examples, 1.0), {
        "loss_sum": loss_sum,
        "num_examples": jnp.broadcast_to(num_examples, loss_sum.shape),
    }
