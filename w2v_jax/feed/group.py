"""One group of blocks of an epoch on the device: its examples, its batch order (``order``,
shuffled on the host or the device) and what its batches hold (``Group.counts``). The streams
of ``w2v_jax.feed`` yield them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import data, parallel
from w2v_jax.config import Config
from w2v_jax.feed import batches
from w2v_jax.feed.draws import Expanded
from w2v_jax.feed.shards import ShardLayout
from w2v_jax.rows import Rows


def group_order(config: Config, num_rows: int, epoch: int, group: int) -> np.ndarray | jax.Array:
    """A group's batch order: int32 [batches, batch_size], rows of the group shuffled (on the
    host, or on the device with config.shuffle "device"), the last batch filled with the
    padding row ``num_rows``. Group 0's is the one a corpus of one group has always had."""
    if config.shuffle == "device":
        key = jax.random.fold_in(
            jax.random.fold_in(jax.random.key(config.seed), data.examples.SHUFFLE_STREAM), epoch
        )
        if group:
            key = jax.random.fold_in(key, group)
        return batches.device_batch_order(num_rows, config.batch_size, key)
    shuffle = data.examples.stream_rng(config.seed, data.examples.SHUFFLE_STREAM, epoch, group)
    return data.examples.batch_order(num_rows, config.batch_size, shuffle)


@dataclasses.dataclass
class Group:
    """One group of blocks of an epoch on the device: its examples (``layout`` says where each
    of its rows sits), its batch order as rows of them, and the global step of its first
    batch."""

    epoch: int
    index: int
    examples: Rows | Expanded
    """Its rows drawn on the host, or as the device draws them (``feed.draws``)."""
    layout: ShardLayout
    order: np.ndarray | jax.Array
    """int32 [batches, batch_size]: device rows of each batch."""
    first_step: int

    @property
    def rows(self) -> int:
        return self.layout.rows

    @property
    def end_step(self) -> int:
        return self.first_step + len(self.order)

    def centers_from(self, step: int) -> int:
        """The centers of the group's batches after ``step``."""
        done = step - self.first_step
        if not done:
            return self.rows
        return int((np.asarray(self.order[done:]) != self.layout.padding_row).sum())

    def counts(self, step: int, placement: parallel.Placement) -> tuple[int, int]:
        """The context pairs of the group's batches after ``step``, and the most live slots of
        any of its batches (what a packed batch must hold), counted in one program on the
        device, where the rows are. The order is grown with batches of padding rows to a power
        of two batches, so that the program compiles for a few shapes, not every group's."""
        host = np.asarray(self.order)
        grown = np.full(
            (1 << max(len(host) - 1, 0).bit_length(), host.shape[1]),
            self.layout.padding_row,
            np.int32,
        )
        grown[: len(host)] = host
        pairs, most_live = _counts(
            self.examples.num_contexts,
            self.examples.num_live,
            parallel.put(grown, placement.replicated),
            np.int32(step - self.first_step),
        )
        return int(pairs), int(most_live)


def device_order(layout: ShardLayout, order: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
    """A batch order over a group's rows (``group_order``) as rows of its device examples (the
    same order when the rows are not mapped)."""
    if layout.identity:
        return order
    rows = layout.device_rows()
    return jnp.asarray(rows)[order] if isinstance(order, jax.Array) else rows[order]


@jax.jit
def _counts(
    num_contexts: jax.Array, num_live: jax.Array, order: jax.Array, first_batch: jax.Array
) -> tuple[jax.Array, jax.Array]:
    counted = jnp.arange(order.shape[0]) >= first_batch
    pairs = jnp.sum(jnp.where(counted, num_contexts[order].sum(axis=-1), 0))
    return pairs, jnp.max(num_live[order].sum(axis=-1), initial=0)


def counted(
    groups: Iterator[Group], step: int, placement: parallel.Placement
) -> Iterator[tuple[Group, int, int]]:
    """Each group with its context pairs from the global step ``step`` on and the most live
    slots of any of its batches (``Group.counts``)."""
    for group in groups:
        yield group, *group.counts(max(step, group.first_step), placement)
