"""The examples of a run on the devices, a group of blocks at a time.

The plan (``data.blocks.RunPlan``) says which blocks make each group. ``prepare`` decides once
where a corpus's examples are drawn (``Dataset.drawn_on``), and ``open_stream`` opens the kind
of stream that says: a corpus of one group (PTB) is a ``KeptGroup``, drawn on the host by the
book's numpy stage (``data.blocks.draw_group``) and kept on the device for the epochs that share
their draws (all of them in the book's configuration); a larger corpus is ``StreamedGroups``,
each group's blocks sent as token ids a group ahead of the device, from a thread of its own, so
that memory holds a group or two, never the epoch, and drawn there (``feed.device``; a group
dealt to the mesh's data axis block by block, ``ShardLayout``, each process sending its own
blocks). A group's rows are shuffled within it on the host or the device (``group.group_order``),
then cut into batches, the last one filled with padding rows. Every draw is seeded by (seed,
stream, draw epoch, block or group), so a group is the same whenever it is drawn and a run
resumed at a global step draws what the interrupted run would have.
"""

from __future__ import annotations

import concurrent.futures
import math
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from w2v_jax import data, parallel
from w2v_jax.config import Config
from w2v_jax.data.blocks import RunPlan, block_slots, draw_group
from w2v_jax.feed.device import DeviceDrawer
from w2v_jax.feed.draws import Expanded
from w2v_jax.feed.group import Group, device_order, group_order
from w2v_jax.feed.shards import ShardLayout, to_device
from w2v_jax.rows import Rows


def open_stream(
    config: Config,
    dataset: data.blocks.Dataset,
    first: Rows | None = None,
    placement: parallel.Placement | None = None,
) -> Stream:
    """The run's stream, of the kind ``prepare`` decided once (``Dataset.drawn_on``): the kept
    group of a corpus drawn on the host (``first``: its first epoch's examples, if drawn
    already), or the groups of a corpus streamed and drawn on the device."""
    placement = placement or parallel.Placement.single()
    if dataset.drawn_on == "device":
        return StreamedGroups(config, dataset, placement)
    return KeptGroup(config, dataset, placement, first)


def first_examples(config: Config, dataset: data.blocks.Dataset) -> Rows:
    """A corpus drawn on the host: its first epoch's examples, by the book's numpy stage."""
    return draw_group(config, dataset, RunPlan(config, dataset).epoch(0).groups[0], 0)


class Stream:
    """The groups of the run's epochs, from any global step on: what both kinds share.

    ``groups(step)`` yields them, each drawn by the kind's ``_draw`` (in a thread, one group
    ahead of training and across epoch ends, unless the kind keeps its group); ``wait_seconds``
    adds up the time training waited for a group (the device is idle then, each dispatch having
    ended with the host reading its losses); ``sent_bytes`` the bytes of examples (rows, or
    token ids) this process has sent to the devices.
    """

    drawn_on: str
    what_is_sent: str

    def __init__(
        self, config: Config, dataset: data.blocks.Dataset, placement: parallel.Placement
    ) -> None:
        self.config, self.dataset, self.placement = config, dataset, placement
        self.plan = RunPlan(config, dataset)
        self.wait_seconds = 0.0
        self.sent_bytes = 0

    @property
    def draws_anew(self) -> bool:
        """Whether an epoch draws examples of its own (not the book's one draw)."""
        return self.config.resample_each_epoch or self.config.subsample_each_epoch

    @property
    def exact(self) -> bool:
        """Whether every batch of the run is known before it trains (the kept group, drawn
        once): a packed program is then sized for them all, with no headroom."""
        return False

    def most_live(self) -> int | None:
        """The most live slots of any batch known before training (what a packed batch must
        hold), or None where the groups say so as they come."""
        return None

    def compile(self) -> float:
        """Compile what drawing the groups takes ahead of the first; its seconds."""
        return 0.0

    def device_shapes(self) -> Any:
        """The shapes and shardings of every group's device examples, to compile for (``Rows``,
        or ``feed.draws.Expanded`` where they are drawn on the device)."""
        raise NotImplementedError

    def group_bytes(self) -> int:
        """The bytes of examples a group sends to the devices (all processes together)."""
        raise NotImplementedError

    def device_bytes(self) -> int:
        """The bytes of examples each device holds at once: the group it trains on and the
        next, unless a kept group is drawn once."""
        one = sum(
            math.prod(shape.sharding.shard_shape(shape.shape)) * shape.dtype.itemsize
            for shape in jax.tree.leaves(self.device_shapes())
        )
        return one * self._groups_held()

    def _groups_held(self) -> int:
        return 2

    def feed(self) -> dict[str, Any]:
        """Where the examples are drawn and what reaching the devices costs: the bytes a center
        sends on average (a group's bytes over its centers), and, once trained, the bytes
        this process sent."""
        groups = len(self.plan.epoch(0).groups)
        sent_per_epoch = self.group_bytes() * (groups if self.drawn_on == "device" else 1)
        return {
            "drawn_on": self.drawn_on,
            "bytes_per_center": sent_per_epoch / max(self.dataset.num_centers, 1),
            "sent_bytes": self.sent_bytes,
            "groups_per_epoch": groups,
        }

    def line(self) -> str:
        """The feed, said before training."""
        feed = self.feed()
        groups = feed["groups_per_epoch"]
        return (
            f"examples: drawn on the {feed['drawn_on']}, {self.what_is_sent} "
            f"({groups:,} group{'s' if groups != 1 else ''} an epoch), "
            f"{feed['bytes_per_center']:.1f} bytes a center to the device, "
            f"{self.device_bytes() / 2**20:,.1f} MiB on each device"
        )

    def _draws(self, epoch: int) -> tuple[int, int]:
        """The (subsampling, windows and noise words) draws of ``epoch``."""
        return self.config.subsample_draw(epoch), self.config.examples_draw(epoch)

    def _draw(self, pair: tuple[int, int]) -> Group:
        """Group ``index`` of ``epoch`` (``pair``) on the device."""
        raise NotImplementedError

    def _drawn_ahead(self) -> bool:
        """Whether groups are drawn in a thread, one ahead of training."""
        return True

    def groups(self, step: int) -> Iterator[Group]:
        """The groups of the run from the global step ``step`` on; the first is drawn when
        this is called, so the caller can compile while it is drawn."""
        pairs = self.plan.groups_from(step)
        if not self._drawn_ahead():
            drawn = map(self._draw, pairs)
        elif pairs:
            # One thread, one group ahead (numpy, the reads and the copy to the device leave
            # the interpreter while they work); the first is drawn while the program
            # compiles. grain's pipeline waited 10% of an epoch where this waits none
            # (results/prefetch).
            pool = concurrent.futures.ThreadPoolExecutor(1)
            drawn = self._ahead(pool, pool.submit(self._draw, pairs[0]), pairs[1:])
        else:
            drawn = iter(())
        return self._timed(drawn)

    def _ahead(self, pool, first, pairs) -> Iterator[Group]:
        """The groups of ``pairs`` after ``first`` (a future), each drawn in ``pool``'s thread
        while the one before trains."""
        try:
            ahead = first
            for pair in pairs:
                group, ahead = ahead.result(), pool.submit(self._draw, pair)
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


class KeptGroup(Stream):
    """A corpus of one group (PTB), drawn on the host by the book's numpy stage and kept on
    every device while the epochs share their draws (all of them in the book's
    configuration), drawn anew, in a thread, when an epoch has its own."""

    drawn_on = "host"
    what_is_sent = "rows kept on the device"

    def __init__(
        self,
        config: Config,
        dataset: data.blocks.Dataset,
        placement: parallel.Placement,
        first: Rows | None = None,
    ) -> None:
        super().__init__(config, dataset, placement)
        most = max(self.plan.epoch(epoch).rows[0] for epoch in range(config.num_epochs))
        self.shard_rows = int(most) + 1  # every epoch's rows, then a padding row
        # (draws, host examples, device examples) of the draws kept.
        self._kept: tuple[tuple[int, int], Rows, dict | None] | None = None
        if first is not None:
            self._kept = (self._draws(0), first, None)

    @property
    def exact(self) -> bool:
        return not self.draws_anew

    def _drawn_ahead(self) -> bool:
        return self.draws_anew

    def _groups_held(self) -> int:
        return 2 if self.draws_anew else 1

    def device_shapes(self) -> Rows:
        sharding = self.placement.replicated
        return self.config.row_layout.make_rows(
            self.shard_rows,
            lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype, sharding=sharding),
        )

    def group_bytes(self) -> int:
        # Every field of the rows, padded to every epoch's rows.
        return self.shard_rows * self.config.row_layout.row_bytes()

    def first_group(self) -> Rows:
        """Epoch 0's examples, host side."""
        if self._kept is None:
            self._kept = (self._draws(0), first_examples(self.config, self.dataset), None)
        return self._kept[1]

    def most_live(self) -> int:
        """The most live slots of any batch of the epochs that train on the first epoch's
        draws, done ones too, so that a resumed run compiles the program an uninterrupted one
        runs (a GPU sums another capacity in another order); epochs that draw anew grow it as
        they come."""
        host = self.first_group()
        live = np.append(host.num_live, 0)
        most = 0
        for epoch in range(self.config.num_epochs):
            if self._draws(epoch) != self._draws(0):
                continue
            order = np.asarray(group_order(self.config, len(host), epoch, 0))
            most = max(most, int(live[order].sum(axis=1, dtype=np.int64).max(initial=0)))
        return most

    def _draw(self, pair: tuple[int, int]) -> Group:
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


class StreamedGroups(Stream):
    """A corpus larger than a group: each group's blocks sent as token ids a group ahead of
    the device, from a thread of its own, so that memory holds a group or two, never the
    epoch; the device draws their examples (``feed.device``). On a mesh, a group's blocks are
    dealt to the data axis (``ShardLayout``): each process sends only the blocks of its own
    devices' shards, and each step gathers its share of a batch's rows from whichever shards
    hold them (XLA adds the collective), so that a run's batches are the same on any mesh and
    any number of processes."""

    drawn_on = "device"
    what_is_sent = "token ids streamed a group ahead"

    def __init__(
        self, config: Config, dataset: data.blocks.Dataset, placement: parallel.Placement
    ) -> None:
        super().__init__(config, dataset, placement)
        self.shards = placement.data_size
        self._drawer = DeviceDrawer(config, dataset, placement, self.shards)
        self.slots, self.slot_rows = self._drawer.slots, self._drawer.slot_rows
        self.shard_rows = self.slots * self.slot_rows

    def compile(self) -> float:
        """Compile the groups' expansion ahead of the first; its seconds."""
        return self._drawer.compile()

    def device_shapes(self) -> Expanded:
        return self._drawer.shapes()

    def device_bytes(self) -> int:
        """The rows drawn and the token ids sent, of two groups."""
        return super().device_bytes() + 2 * (self._drawer.slot_bytes() // self.shards)

    def group_bytes(self) -> int:
        # The blocks' token ids and sentence offsets, as sent.
        return self._drawer.slot_bytes()

    def _draw(self, pair: tuple[int, int]) -> Group:
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
