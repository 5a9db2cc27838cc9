"""A batch's pairs, gathered on the device from the device-resident examples: the two layouts.

The examples are rows (``w2v_jax.rows.Rows``: ``centers`` [N, 1], ``contexts_negatives``
[N, L], the per-row counts [N]), plus a padding row (index N, no live slot). Both layouts give
the pairs the objectives read, one record (``w2v_jax.pairs.Pairs``): the batch's rows, and per
pair its ``words``, ``owner`` (the position in the batch of its row; None for the padded
layout's rows), ``labels`` (a context word), ``mask`` (live), ``slot`` (its slot in its row)
and ``offset`` (a context's place relative to its center).

- "padded", the book's rows as they are: batch * L pairs, the dead slots masked.
- "packed": a book row has L = 2 * max_window * (1 + num_noise) slots of which about 44% are
  live on PTB; here the batch's live slots are laid end to end in ``capacity`` pairs, skipping
  the padding the padded layout gathers, multiplies and scatters. The same loss: each pair is
  still weighted by 1 / (its row's live slots), only the order of float additions changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from w2v_jax.pairs import Pairs
from w2v_jax.rows import Rows

CAPACITY_STEP = 256
"""Capacities are rounded up to a multiple of this, so that most epochs reuse one program."""


def gather_padded(examples: Rows, rows: jax.Array) -> Pairs:
    """The pairs of ``rows`` in the book's padded layout: every slot of every row, in order;
    mask and labels are expanded here, on the device, which is cheaper than storing and moving
    two [N, L] arrays."""
    batch = _batch_rows(examples, rows)
    words = batch.contexts_negatives  # [batch, L]
    slot = jnp.arange(words.shape[1], dtype=jnp.int32)
    num_contexts = batch.num_contexts[:, None]
    return Pairs(
        rows=batch,
        words=words.ravel(),
        mask=(slot < batch.num_live[:, None]).ravel(),
        labels=(slot < num_contexts).ravel(),
        slot=jnp.broadcast_to(slot, words.shape).ravel(),
        offset=context_offset(slot, batch.num_left[:, None], num_contexts).ravel(),
        owner=None,  # whole rows: pair p belongs to row p // L
    )


def _batch_rows(examples: Rows, rows: jax.Array) -> Rows:
    """Every field of ``rows``; what the step reads of them is all it gathers (XLA drops the
    rest)."""
    return jax.tree.map(lambda field: field[rows], examples)


def context_offset(slot: jax.Array, num_left: jax.Array, num_contexts: jax.Array) -> jax.Array:
    """A slot's context's place relative to its center (``Pairs.offset``): a row's contexts
    are its ``num_left`` left of the center, nearest last, then those right of it."""
    return jnp.where(
        slot < num_left, slot - num_left, jnp.where(slot < num_contexts, slot - num_left + 1, 0)
    )


def rounded_capacity(most_live: int, at_least: int = 0) -> int:
    """Pairs a packed batch must hold for batches of at most ``most_live`` live slots: at
    least ``at_least``, rounded up to CAPACITY_STEP."""
    needed = max(most_live, at_least, 1)
    return -(-needed // CAPACITY_STEP) * CAPACITY_STEP


def gather_packed(examples: Rows, rows: jax.Array, capacity: int) -> Pairs:
    """The pairs of ``rows`` packed: the live words of the rows in order, then dead pairs up to
    ``capacity``, which the rows' live slots must fit (``Packed.fit``)."""
    batch = _batch_rows(examples, rows)
    ends = jnp.cumsum(batch.num_live)
    pair = jnp.arange(capacity, dtype=jnp.int32)
    # Pair p belongs to the first row whose live slots end after it: the number of rows ended
    # at or before p, counted by a cumulative sum over row ends marked in the pairs (one pass;
    # a binary search per pair took 5% of a CPU step).
    marks = jnp.zeros(capacity, jnp.int32).at[ends].add(1, mode="drop")
    owner = jnp.minimum(jnp.cumsum(marks), rows.shape[0] - 1)
    slot = pair - (ends - batch.num_live)[owner]
    live = pair < ends[-1]
    table = jnp.asarray(examples.contexts_negatives)
    words = table.at[rows[owner], jnp.where(live, slot, 0)].get(mode="promise_in_bounds")
    num_contexts = batch.num_contexts[owner]
    return Pairs(
        rows=batch,
        words=jnp.where(live, words, 0),
        mask=live,
        labels=live & (slot < num_contexts),
        slot=jnp.where(live, slot, 0),
        offset=jnp.where(live, context_offset(slot, batch.num_left[owner], num_contexts), 0),
        owner=owner,
    )


@dataclasses.dataclass(frozen=True)
class Padded:
    """The book's rows as they are: one program for every batch."""

    packed: ClassVar[bool] = False

    def gather(self, examples: Rows, rows: jax.Array) -> Pairs:
        return gather_padded(examples, rows)

    def fit(self, most_live: int, headroom: bool = False) -> Padded:
        return self

    def at_least(self, saved: PairLayout | None) -> Padded:
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"name": "padded"}


@dataclasses.dataclass(frozen=True)
class Packed:
    """The batch's live slots end to end in ``capacity`` pairs: a program per capacity."""

    capacity: int = CAPACITY_STEP
    packed: ClassVar[bool] = True

    def gather(self, examples: Rows, rows: jax.Array) -> Pairs:
        return gather_packed(examples, rows, self.capacity)

    def fit(self, most_live: int, headroom: bool = False) -> Packed:
        """Grown to hold ``most_live`` live slots, and 1/32 more with ``headroom`` (where
        later groups are not known yet: each new capacity costs a compile), rounded so that
        most groups reuse one program."""
        wanted = most_live + (most_live // 32 if headroom else 0)
        return Packed(rounded_capacity(wanted, self.capacity))

    def at_least(self, saved: PairLayout | None) -> Packed:
        """At least the capacity a checkpoint was saved with, so that a resumed run compiles
        the program an uninterrupted one runs (a GPU sums another capacity in another
        order)."""
        return self.fit(saved.capacity) if isinstance(saved, Packed) else self

    def to_dict(self) -> dict[str, Any]:
        return {"name": "packed", "capacity": self.capacity}


PairLayout = Padded | Packed
"""How a batch's pairs are laid out on the device; ``Program`` owns the run's, and its
checkpoints save it (``to_dict``)."""


def pair_layout(layout: str) -> PairLayout:
    """``Config.layout`` for this process's default device: "auto" is packed on a CPU and
    padded elsewhere."""
    if layout == "auto":
        layout = "packed" if jax.default_backend() == "cpu" else "padded"
    return Packed() if layout == "packed" else Padded()


def saved_layout(progress: dict[str, Any]) -> PairLayout | None:
    """The layout a checkpoint's progress records under "layout" (``to_dict``; None: not
    known, ``compat.progress_now``)."""
    saved = progress["layout"]
    if saved is None:
        return None
    return Packed(saved["capacity"]) if saved["name"] == "packed" else Padded()


def device_batch_order(num_examples: int, batch_size: int, key: jax.Array) -> jax.Array:
    """An epoch's batch order drawn on the device: int32 [num_batches, batch_size], a
    permutation of the rows, the last batch filled with ``num_examples`` (the padding row), as
    ``w2v_jax.data.examples.batch_order`` lays out its host-drawn one."""
    num_batches = -(-num_examples // batch_size)
    order = jax.random.permutation(key, num_examples).astype(jnp.int32)
    padding = jnp.full((num_batches * batch_size - num_examples,), num_examples, jnp.int32)
    return jnp.concatenate([order, padding]).reshape(num_batches, batch_size)
