"""The book's batches without their padding (layout="packed"): the same loss, less work.

A book row has L = 2 * max_window * (1 + num_noise) slots of which about 44% are live on PTB;
the padded layout gathers, multiplies and scatters the dead ones too. Here a batch's live
slots are laid end to end in one flat array of ``capacity`` (center, word) pairs, each knowing
its row (``owner``), and each pair's loss is weighted by 1 / (its row's live slots): summed,
that is the book's per-row normalised loss, so only the order of float additions changes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from w2v_jax.model import group_logits, lookup

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

CAPACITY_STEP = 256
"""Capacities are rounded up to a multiple of this, so that most epochs reuse one program."""


def capacity_for(num_live: np.ndarray, order: np.ndarray, at_least: int = 0) -> int:
    """Pairs a packed batch must hold for every batch of ``order`` (int32 [batches, batch],
    rows of ``num_live``, the index len(num_live) meaning the padding row): at least
    ``at_least``, or more, rounded up to CAPACITY_STEP."""
    live = np.append(num_live, 0)[order].sum(axis=1, dtype=np.int64)
    needed = max(int(live.max(initial=0)), at_least, 1)
    return -(-needed // CAPACITY_STEP) * CAPACITY_STEP


def gather_packed(examples: dict[str, jax.Array], rows: jax.Array, capacity: int) -> Batch:
    """The batch of ``rows`` of the device-resident examples (see ``train.gather_batch``),
    packed: ``contexts_negatives`` int32 [capacity] are the live words of the rows in order,
    ``owner`` [capacity] the position in the batch of each one's row, ``labels`` and ``mask``
    [capacity] whether it is a context word and whether it is live (the tail is not);
    ``centers`` [batch, 1], ``num_contexts`` and ``num_live`` [batch] as in the examples.
    The rows' live slots must fit in ``capacity`` (``capacity_for``)."""
    num_live = examples["num_live"][rows]
    num_contexts = examples["num_contexts"][rows]
    ends = jnp.cumsum(num_live)
    pair = jnp.arange(capacity, dtype=jnp.int32)
    # Pair p belongs to the first row whose live slots end after it.
    owner = jnp.minimum(jnp.searchsorted(ends, pair, side="right"), rows.shape[0] - 1)
    owner = owner.astype(jnp.int32)
    slot = pair - (ends - num_live)[owner]
    live = pair < ends[-1]
    table = jnp.asarray(examples["contexts_negatives"])
    words = table.at[rows[owner], jnp.where(live, slot, 0)].get(mode="promise_in_bounds")
    return {"centers": examples["centers"][rows], "contexts_negatives": jnp.where(live, words, 0),
            "owner": owner, "mask": live, "labels": live & (slot < num_contexts[owner]),
            "num_contexts": num_contexts, "num_live": num_live}


def rows_loss(rows: tuple[jax.Array, ...], batch: Batch,
              num_noise: int) -> tuple[jax.Array, Metrics]:
    """The batch's loss as a function of its gathered rows: center rows [batch, embed], the
    pairs' word rows [capacity, embed] and, with shared noise (noise_sharing="per_batch"),
    the noise rows [groups, shared, embed]; the same value as the padded layout's loss."""
    centers, words, *noise = rows
    logits = jnp.sum(centers[batch["owner"]] * words, axis=-1)
    num_contexts = batch["num_contexts"].astype(jnp.float32)
    if not noise:  # the book's rows: each normalised by its live slots
        labels, per_slot = batch["labels"].astype(jnp.float32), batch["num_live"]
    else:  # only contexts are packed; each row's noise term is weighted as in shared_noise_bce
        labels, per_slot = 1.0, num_contexts * (1 + num_noise)
    weight = _reciprocal(per_slot.astype(jnp.float32))
    loss_sum = jnp.sum(jnp.where(batch["mask"], weight[batch["owner"]], 0.0)
                       * optax.sigmoid_binary_cross_entropy(logits, labels))
    if noise:
        noise_terms = optax.sigmoid_binary_cross_entropy(group_logits(centers, noise[0]), 0.0)
        noise_weight = num_contexts * num_noise / noise[0].shape[1]
        loss_sum += jnp.sum(noise_weight * weight * noise_terms.sum(axis=-1))
    num_examples = (batch["num_live"] > 0).sum().astype(jnp.float32)
    return loss_sum / jnp.maximum(num_examples, 1.0), {"loss_sum": loss_sum,
                                                       "num_examples": num_examples}


def table_rows(params: dict, batch: Batch, noise: jax.Array | None = None) -> tuple:
    """The rows ``rows_loss`` reads, gathered from the parameters' tables."""
    center_table = params["center_embed"]["embedding"]
    context_table = params["context_embed"]["embedding"]
    rows = (lookup(center_table, batch["centers"][:, 0]),
            lookup(context_table, batch["contexts_negatives"]))
    return rows if noise is None else (*rows, lookup(context_table, noise))


def batch_loss(params: dict, apply_fn, batch: Batch) -> tuple[jax.Array, Metrics]:
    """``train.batch_loss`` for packed batches (``apply_fn`` unused: the tables are read
    directly, as the padded model reads them)."""
    del apply_fn
    return rows_loss(table_rows(params, batch), batch, 0)


def shared_noise_loss(params: dict, apply_fn, batch: Batch, noise: jax.Array,
                      num_noise: int) -> tuple[jax.Array, Metrics]:
    """``train.shared_noise_loss`` for packed batches."""
    del apply_fn
    return rows_loss(table_rows(params, batch, noise), batch, num_noise)


def _reciprocal(count: jax.Array) -> jax.Array:
    """1 / count, and 0 for an empty row (whose pairs are all dead anyway)."""
    return jnp.where(count > 0, 1.0 / jnp.where(count > 0, count, 1.0), 0.0)
