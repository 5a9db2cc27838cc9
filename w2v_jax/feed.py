"""The examples of a run on the devices, a group of blocks at a time.

The plan (``data.blocks.RunPlan``) says which blocks make each group. A corpus of one group
(PTB) draws its examples on the host, by the book's numpy stage (``data.blocks.draw_group``),
and keeps them on the device for the epochs that share their draws (all of them in the
book's configuration). A streamed corpus sends each group's blocks as token ids a group ahead
of the device, from a thread of its own, so that memory holds a group or two, never the epoch;
the device draws their examples (``device_feed``; a group dealt to the mesh's data axis block
by block, ``ShardLayout``, each process sending its own blocks). A group's rows are shuffled
within it on the host or the device (``group_order``), then cut into batches, the last one
filled with padding rows. Every draw is seeded by (seed, stream, draw epoch, block or group),
so a group is the same whenever it is drawn and a run resumed at a global step draws what the
interrupted run would have.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import batches, data, parallel
from w2v_jax.config import Config
from w2v_jax.data.blocks import RunPlan, block_slots, draw_group
from w2v_jax.device_feed import DeviceDrawer
from w2v_jax.shards import ShardLayout, to_device


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
    examples: dict[str, jax.Array]
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
            self.examples["num_contexts"],
            self.examples["num_live"],
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


class Stream:
    """The groups of the run's epochs, from any global step on.

    A corpus of one group draws it on the host and keeps it on every device until an epoch
    draws anew. A larger corpus's groups are sent to the device in a thread, one group ahead of
    training, across epoch ends too, and drawn there. On a mesh, a group's blocks are dealt to
    the data axis (``ShardLayout``): each process sends only the blocks of its own devices'
    shards, and each step gathers its share of a batch's rows from whichever shards hold them
    (XLA adds the collective), so that a run's batches are the same on any mesh and any number
    of processes. ``wait_seconds`` adds up the time training waited for a group (the device is idle
    then, each dispatch having ended with the host reading its losses).
    """

    def __init__(
        self,
        config: Config,
        dataset: data.blocks.Dataset,
        first: data.examples.Examples | None = None,
        placement: parallel.Placement | None = None,
    ) -> None:
        self.config, self.dataset = config, dataset
        self.plan = RunPlan(config, dataset)
        self.placement = placement or parallel.Placement.single()
        self.on_device = dataset.drawn_on == "device"
        self.one_group = not self.on_device
        self.shards = 1 if self.one_group else self.placement.data_size
        if self.on_device:
            self._drawer = DeviceDrawer(config, dataset, self.placement, self.shards)
            self.slots, self.slot_rows = self._drawer.slots, self._drawer.slot_rows
            self.shard_rows = self.slots * self.slot_rows
        else:
            most = max(self.plan.epoch(epoch).rows[0] for epoch in range(config.num_epochs))
            self.shard_rows = int(most) + 1  # every epoch's rows, then a padding row
        # A corpus of one group keeps its examples while epochs share their draws:
        # (draws, host, device).
        self._kept: tuple[tuple[int, int], data.examples.Examples, dict | None] | None = None
        if first is not None and self.one_group:
            self._kept = (self._draws(0), first, None)
        self.wait_seconds = 0.0
        self.sent_bytes = 0
        """Bytes of examples (rows, or token ids) this process has sent to the devices."""

    def device_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        """The shapes and shardings of every group's device examples, to compile for."""
        if self.on_device:
            return self._drawer.shapes()
        rows, length = self.shard_rows, self.config.row_layout.max_len
        shapes = {
            "centers": (rows, 1),
            "contexts_negatives": (rows, length),
            "num_contexts": (rows,),
            "num_live": (rows,),
        }
        return {
            name: jax.ShapeDtypeStruct(shape, np.int32, sharding=self.placement.replicated)
            for name, shape in shapes.items()
        }

    def device_bytes(self) -> int:
        """The bytes of examples each device holds at once: a corpus of one group drawn once
        keeps its group; otherwise the group it trains on and the next (drawn on the device:
        their token ids too, as sent)."""
        shapes = self.device_shapes()
        one = sum(
            math.prod(shape.sharding.shard_shape(shape.shape)) * shape.dtype.itemsize
            for shape in shapes.values()
        )
        if self.on_device:
            one += self._drawer.slot_bytes() // self.shards
        return one * (1 if self.one_group and not self.draws_anew else 2)

    def group_bytes(self) -> int:
        """The bytes of examples a group sends to the devices (all processes together): its
        rows drawn on the host, padded, or its blocks' token ids and sentence offsets."""
        if self.on_device:
            return self._drawer.slot_bytes()
        # The centers, the rows and their counts.
        return self.shard_rows * (self.config.row_layout.max_len + 3) * 4

    def feed(self) -> dict[str, Any]:
        """Where the examples are drawn and what reaching the devices costs: the bytes a center
        sends on average (a group's bytes over its centers), and, once trained, the bytes
        this process sent."""
        groups = len(self.plan.epoch(0).groups)
        sent_per_epoch = self.group_bytes() * (1 if self.one_group else groups)
        return {
            "drawn_on": "device" if self.on_device else "host",
            "bytes_per_center": sent_per_epoch / max(self.dataset.num_centers, 1),
            "sent_bytes": self.sent_bytes,
            "groups_per_epoch": groups,
        }

    def line(self) -> str:
        """The feed, said before training."""
        feed = self.feed()
        what = "token ids" if self.on_device else "rows"
        kept = "kept on the device" if self.one_group else "streamed a group ahead"
        return (
            f"examples: drawn on the {feed['drawn_on']}, {what} {kept} "
            f"({feed['groups_per_epoch']:,} group{'s' if feed['groups_per_epoch'] != 1 else ''} "
            f"an epoch), {feed['bytes_per_center']:.1f} bytes a center to the device, "
            f"{self.device_bytes() / 2**20:,.1f} MiB on each device"
        )

    def compile(self) -> float:
        """Compile what drawing the groups takes ahead of the first (examples drawn on the
        device: their expansion); its seconds."""
        return self._drawer.compile() if self.on_device else 0.0

    @property
    def draws_anew(self) -> bool:
        """Whether an epoch draws examples of its own (not the book's one draw)."""
        return self.config.resample_each_epoch or self.config.subsample_each_epoch

    def _draws(self, epoch: int) -> tuple[int, int]:
        """The (subsampling, windows and noise words) draws of ``epoch``."""
        return self.config.subsample_draw(epoch), self.config.examples_draw(epoch)

    def first_group(self) -> data.examples.Examples:
        """A corpus of one group: epoch 0's examples, host side."""
        if self._kept is None:
            host = draw_group(self.config, self.dataset, self.plan.epoch(0).groups[0], 0)
            self._kept = (self._draws(0), host, None)
        return self._kept[1]

    def most_live(self) -> int:
        """A corpus of one group: the most live slots of any batch of the epochs that train on
        the first epoch's draws, done ones too (what a packed batch must hold), so that a
        resumed run compiles the program an uninterrupted one runs (a GPU sums another
        capacity in another order); epochs that draw anew grow it as they come."""
        host = self.first_group()
        live = np.append(host.num_live, 0)
        most = 0
        for epoch in range(self.config.num_epochs):
            if self._draws(epoch) != self._draws(0):
                continue
            order = np.asarray(group_order(self.config, len(host), epoch, 0))
            most = max(most, int(live[order].sum(axis=1, dtype=np.int64).max(initial=0)))
        return most

    def groups(self, step: int) -> Iterator[Group]:
        """The groups of the run from the global step ``step`` on; the first is drawn when
        this is called, so the caller can compile while it is drawn."""
        pairs = self.plan.groups_from(step)
        if self.one_group and not self.draws_anew:
            drawn = map(self._single_group, pairs)  # drawn once, kept on the device
        elif pairs:
            # One thread, one group ahead (numpy, the reads and the copy to the device leave
            # the interpreter while they work); the first is drawn while the program
            # compiles. grain's pipeline waited 10% of an epoch where this waits none
            # (results/prefetch).
            pool = concurrent.futures.ThreadPoolExecutor(1)
            draw = self._single_group if self.one_group else self._drawn_on_device
            drawn = self._ahead(pool, pool.submit(draw, pairs[0]), pairs[1:], draw)
        else:
            drawn = iter(())
        return self._timed(drawn)

    def _ahead(self, pool, first, pairs, draw) -> Iterator[Group]:
        """The groups of ``pairs`` after ``first`` (a future), each drawn by ``draw`` in
        ``pool``'s thread while the one before trains."""
        try:
            ahead = first
            for pair in pairs:
                group, ahead = ahead.result(), pool.submit(draw, pair)
                yield group
            yield ahead.result()
        finally:
            pool.shutdown(cancel_futures=True)

    def _timed(self, drawn: Iterator[Group]) -> Iterator[Group]:
        while True:
            began = time.perf_counter()
            group = next(drawn, None)
            self.wait_seconds += time.perf_counter() - began
            if group is None:
                return
            yield group

    def _group(self, epoch: int, index: int, examples, layout: ShardLayout) -> Group:
        order = group_order(self.config, layout.rows, epoch, index)
        first = self.plan.group_start(epoch, index)
        return Group(epoch, index, examples, layout, device_order(layout, order), first)

    def _drawn_on_device(self, pair: tuple[int, int]) -> Group:
        """A group's token ids sent to the device, which draws its examples: this process
        sends the blocks of its shards."""
        epoch, index = pair
        blocks = self.plan.epoch(epoch).groups[index]
        subsample_draw, examples_draw = self._draws(epoch)
        layout = ShardLayout(
            self.dataset.block_centers(subsample_draw)[blocks].astype(np.int64),
            self.shards,
            self.shard_rows,
            self.slot_rows,
        )
        local = self.placement.local_data_shards() if self.shards > 1 else [0]
        parts = {
            shard: block_slots(self.dataset, blocks[layout.blocks_of(shard)], self.slots)
            for shard in local
        }
        examples = self._drawer.expand(parts, examples_draw, subsample_draw)
        self.sent_bytes += sum(part.nbytes for part in parts.values())
        return self._group(epoch, index, examples, layout)

    def _single_group(self, pair: tuple[int, int]) -> Group:
        """A corpus of one group keeps its examples while the epochs share their draws (every
        epoch in the book's configuration), drawing them anew when an epoch has its own."""
        epoch, _ = pair
        draws = self._draws(epoch)
        if self._kept is None or self._kept[0] != draws:
            host = draw_group(self.config, self.dataset, self.plan.epoch(epoch).groups[0], epoch)
            self._kept = (draws, host, None)
        _, host, device = self._kept
        layout = ShardLayout.whole(len(host), self.shard_rows - 1)
        if device is None:
            device = to_device(host, self.shard_rows - 1, self.placement)
            self.sent_bytes += self.group_bytes()
            self._kept = (draws, host, device)
        return self._group(epoch, 0, device, layout)
