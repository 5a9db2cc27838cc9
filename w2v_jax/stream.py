"""The examples of an epoch as a stream of windows: drawn on the host ahead of the device by a
grain pipeline, a window of blocks at a time, so that memory holds a window or two, never the
epoch.

An epoch's blocks come in an order drawn for the epoch, ``Config.window_blocks`` at a time
(``data.epoch_windows``); a window's examples are drawn block by block (``data.window_examples``)
and its rows shuffled within the window, then cut into batches, the last one filled with
padding rows. Every draw is seeded by (seed, stream, epoch, block or window), so a window is the
same whenever it is drawn: the position in the stream is just (epoch, batch), and a run resumed
there draws what the interrupted run would have. A corpus of one window (PTB) draws its examples
once, as the book does, and keeps them on the device for every epoch. On a mesh, a window's
blocks are dealt to the data axis and each process draws its own (``ShardLayout``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax import batches, data, parallel
from w2v_jax.config import Config


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """The windows of an epoch (their blocks) and the batches each takes."""

    windows: list[np.ndarray]
    rows: np.ndarray
    """int64 [windows]: the centers of each window."""
    batch_size: int

    @property
    def batches(self) -> np.ndarray:
        return -(-self.rows // self.batch_size)

    @property
    def starts(self) -> np.ndarray:
        """The epoch's batch index where each window starts, then the epoch's batches."""
        return np.concatenate([[0], np.cumsum(self.batches)]).astype(np.int64)

    @property
    def num_batches(self) -> int:
        return int(self.batches.sum())

    def window_of(self, batch: int) -> int:
        """The window holding the epoch's batch ``batch`` (a batch at a window's end: the next
        window; the epoch's end: the number of windows)."""
        return int(np.searchsorted(self.starts[1:], batch, side="right"))


def epoch_plan(config: Config, dataset: data.Dataset, epoch: int) -> EpochPlan:
    windows = data.epoch_windows(dataset, config.window_blocks, epoch)
    rows = np.array([dataset.block_centers[window].sum() for window in windows], np.int64)
    return EpochPlan(windows, rows, config.batch_size)


def total_steps(config: Config, dataset: data.Dataset) -> int:
    """The batches of every epoch of the run."""
    return sum(epoch_plan(config, dataset, epoch).num_batches for epoch in range(config.num_epochs))


def draw_window(
    config: Config, dataset: data.Dataset, blocks: np.ndarray, epoch: int
) -> data.Examples:
    """A window's examples in ``epoch``: the same every epoch unless resample_each_epoch."""
    draw_epoch = epoch if config.resample_each_epoch else 0
    return data.window_examples(
        dataset, blocks, draw_epoch, config.max_window, config.noise_per_context, config.max_len
    )


def shard_capacity(config: Config, dataset: data.Dataset, shards: int) -> int:
    """Rows each data shard of any window fits in, a padding row included: the centers of the
    ceil(window_blocks / shards) largest blocks, plus one. Windows are padded to it on the
    device, so that one program serves them all."""
    per_shard = -(-config.window_blocks // shards)
    return int(np.sort(dataset.block_centers)[::-1][:per_shard].sum()) + 1


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """Where a window's rows sit on the device. The window's k-th block goes to data shard
    k mod ``shards``, which holds its blocks' rows in window order, then padding rows, in
    ``shard_rows`` rows; device row ``shard * shard_rows + i`` is its shard's row i. One shard
    (one device, the vocab axis only, a corpus of one window): every device holds the window's
    rows in the order drawn, then padding rows."""

    block_rows: np.ndarray
    """int64 [blocks of the window]: each block's rows, in window order."""
    shards: int
    shard_rows: int

    @classmethod
    def whole(cls, rows: int, capacity: int | None = None) -> ShardLayout:
        """One shard of ``rows`` rows and padding rows up to ``capacity`` + 1 (at least one)."""
        return cls(np.array([rows], np.int64), 1, max(capacity or 0, rows) + 1)

    @property
    def rows(self) -> int:
        return int(self.block_rows.sum())

    def blocks_of(self, shard: int) -> np.ndarray:
        """The window positions of the blocks shard ``shard`` holds."""
        return np.arange(shard, len(self.block_rows), self.shards)

    def device_rows(self) -> np.ndarray:
        """int32 [rows + 1]: the device row of each of the window's rows (blocks in window
        order), and last, for the batch order's padding index ``rows``, a padding row."""
        starts = np.zeros(len(self.block_rows), np.int64)
        for shard in range(self.shards):
            held = self.blocks_of(shard)
            before = np.cumsum(self.block_rows[held]) - self.block_rows[held]
            starts[held] = shard * self.shard_rows + before
        mapped = [np.arange(start, start + rows) for start, rows in zip(starts, self.block_rows)]
        # The padding index: shard 0's last row, a padding row (a shard's rows end with one).
        return np.concatenate([*mapped, [self.shard_rows - 1]]).astype(np.int32)


def to_device(
    examples: data.Examples, rows: int | None = None, placement: parallel.Placement | None = None
) -> dict[str, jax.Array]:
    """The examples with padding rows up to ``rows`` + 1 rows (default: one), as device arrays
    keyed by field name, on every device of ``placement``'s mesh (default: one device); the row
    at len(examples) is a padding row."""
    return shards_to_device(
        {0: examples},
        ShardLayout.whole(len(examples), rows),
        examples.contexts_negatives.shape[1],
        placement,
    )


def shards_to_device(
    parts: dict[int, data.Examples | None],
    layout: ShardLayout,
    max_len: int,
    placement: parallel.Placement | None = None,
) -> dict[str, jax.Array]:
    """The examples of the data shards this process holds (``parts``, by shard; None: a shard
    without blocks), each padded to ``layout.shard_rows`` rows, as arrays split along the
    mesh's data axis (one shard: on every device)."""
    placement = placement or parallel.Placement.single()
    sharding = placement.replicated if layout.shards == 1 else placement.data_rows
    arrays = {}
    for name, width in (
        ("centers", (1,)),
        ("contexts_negatives", (max_len,)),
        ("num_contexts", ()),
        ("num_live", ()),
    ):
        padded = {}
        for shard, part in parts.items():
            padded[shard] = np.zeros((layout.shard_rows, *width), np.int32)  # one copy
            if part is not None:
                padded[shard][: len(part)] = getattr(part, name)

        def rows_of(index, padded=padded):
            return padded[(index[0].start or 0) // layout.shard_rows]

        shape = (layout.shards * layout.shard_rows, *width)
        arrays[name] = jax.make_array_from_callback(shape, sharding, rows_of)
    return arrays


def window_order(config: Config, num_rows: int, epoch: int, window: int) -> np.ndarray | jax.Array:
    """A window's batch order: int32 [batches, batch_size], rows of the window shuffled (on
    the host, or on the device with config.shuffle "device"), the last batch filled with the
    padding row ``num_rows``. Window 0's is the one a corpus of one window has always had."""
    if config.shuffle == "device":
        key = jax.random.fold_in(
            jax.random.fold_in(jax.random.key(config.seed), data.SHUFFLE_STREAM), epoch
        )
        if window:
            key = jax.random.fold_in(key, window)
        return batches.device_batch_order(num_rows, config.batch_size, key)
    shuffle = data.stream_rng(config.seed, data.SHUFFLE_STREAM, epoch, window)
    return data.batch_order(num_rows, config.batch_size, shuffle)


@dataclasses.dataclass
class Window:
    """One window of an epoch on the device: its examples (``layout`` says where each of its
    rows sits) and the epoch's batch index of its first batch."""

    index: int
    device: dict[str, jax.Array]
    layout: ShardLayout
    first_batch: int

    @property
    def rows(self) -> int:
        return self.layout.rows

    def device_order(self, order: np.ndarray | jax.Array) -> np.ndarray | jax.Array:
        """A batch order over the window's rows (``window_order``) as rows of its device
        examples (the same order when the window is one shard)."""
        if self.layout.shards == 1:
            return order
        rows = self.layout.device_rows()
        return jnp.asarray(rows)[order] if isinstance(order, jax.Array) else rows[order]

    def counts(
        self, order: np.ndarray | jax.Array, first_batch: int, placement: parallel.Placement
    ) -> tuple[int, int]:
        """Of ``order`` (device rows): the context pairs of its batches from ``first_batch``
        on, and the most live slots of any of its batches (what a packed batch must hold),
        counted in one program on the device, where the rows are. The order is grown with
        batches of padding rows to a power of two batches, so that the program compiles for a
        few shapes, not every window's."""
        padding = self.rows if self.layout.shards == 1 else self.layout.shard_rows - 1
        host = np.asarray(order)
        grown = np.full((1 << max(len(host) - 1, 0).bit_length(), host.shape[1]), padding, np.int32)
        grown[: len(host)] = host
        pairs, most_live = _counts(
            self.device["num_contexts"],
            self.device["num_live"],
            parallel.put(grown, placement.replicated),
            np.int32(first_batch),
        )
        return int(pairs), int(most_live)


@jax.jit
def _counts(
    num_contexts: jax.Array, num_live: jax.Array, order: jax.Array, first_batch: jax.Array
) -> tuple[jax.Array, jax.Array]:
    counted = jnp.arange(order.shape[0]) >= first_batch
    pairs = jnp.sum(jnp.where(counted, num_contexts[order].sum(axis=-1), 0))
    return pairs, jnp.max(num_live[order].sum(axis=-1), initial=0)


class Stream:
    """The windows of the run's epochs.

    A corpus of one window draws it once (each epoch with resample_each_epoch) and keeps it on
    every device. A larger corpus's windows come from one grain pipeline over the run's
    (epoch, window) pairs, which draws a window and moves it to the device in a thread, one
    window ahead of training (numpy and the copy leave the interpreter while they work), across
    epoch ends too. On a mesh, a window's blocks are dealt to the data axis (``ShardLayout``):
    each process draws only the blocks of its own devices' shards, and each step gathers its
    share of a batch's rows from whichever shards hold them (XLA adds the collective), so that
    a run's batches are the same on any mesh and any number of processes. ``wait_seconds``
    adds up the time training waited for a window (the device is idle then, each dispatch
    having ended with the host reading its losses).
    """

    def __init__(
        self,
        config: Config,
        dataset: data.Dataset,
        first: data.Examples | None = None,
        placement: parallel.Placement | None = None,
    ) -> None:
        self.config, self.dataset = config, dataset
        self.placement = placement or parallel.Placement.single()
        self.one_window = len(dataset.blocks) - 1 <= config.window_blocks
        self.shards = 1 if self.one_window else self.placement.data_size
        self.shard_rows = shard_capacity(config, dataset, self.shards)
        # A corpus of one window keeps its examples for every epoch: (host, device).
        self._kept: tuple[data.Examples, dict[str, jax.Array] | None] | None = None
        if first is not None and self.one_window:
            self._kept = (first, None)
        self._plans: dict[int, EpochPlan] = {}
        self._pipeline: Iterator[Window] | None = None
        self._next: tuple[int, int] | None = None  # the pipeline's next (epoch, window)
        self.wait_seconds = 0.0

    def device_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        """The shapes and shardings of every window's device examples, to compile for."""
        rows, length = self.shards * self.shard_rows, self.config.max_len
        sharding = self.placement.replicated if self.shards == 1 else self.placement.data_rows
        shapes = {
            "centers": (rows, 1),
            "contexts_negatives": (rows, length),
            "num_contexts": (rows,),
            "num_live": (rows,),
        }
        return {
            name: jax.ShapeDtypeStruct(shape, np.int32, sharding=sharding)
            for name, shape in shapes.items()
        }

    def plan(self, epoch: int) -> EpochPlan:
        if epoch not in self._plans:
            self._plans[epoch] = epoch_plan(self.config, self.dataset, epoch)
        return self._plans[epoch]

    def first_window(self) -> data.Examples:
        """Epoch 0's first window, host side (drawn here for a corpus of more than one)."""
        if self._kept is not None:
            return self._kept[0]
        first = draw_window(self.config, self.dataset, self.plan(0).windows[0], 0)
        if self.one_window:
            self._kept = (first, None)
        return first

    def start(self, epoch: int, from_batch: int) -> None:
        """Start drawing the windows from the epoch's batch ``from_batch`` on (while the train
        step compiles, say)."""
        window = self.plan(epoch).window_of(from_batch)
        if not self.one_window and window < len(self.plan(epoch).windows):
            self._pipeline, self._next = self._start(epoch, window), (epoch, window)

    def windows(self, epoch: int, from_window: int = 0) -> Iterator[Window]:
        """The windows of ``epoch`` from ``from_window`` on."""
        plan = self.plan(epoch)
        for index in range(from_window, len(plan.windows)):
            began = time.perf_counter()
            if self.one_window:
                window = self._single_window(epoch, plan)
            else:
                if self._next != (epoch, index):  # not where the pipeline stands: start it
                    self._pipeline = self._start(epoch, index)
                window = next(self._pipeline)
                last = index + 1 == len(plan.windows)
                self._next = (epoch + 1, 0) if last else (epoch, index + 1)
            self.wait_seconds += time.perf_counter() - began
            yield window

    def _start(self, epoch: int, window: int) -> Iterator[Window]:
        import grain  # a second to import, needed only by corpora of more than one window

        pairs = [
            (e, w)
            for e in range(epoch, self.config.num_epochs)
            for w in range(window if e == epoch else 0, len(self.plan(e).windows))
        ]
        source = grain.MapDataset.source(pairs).map(self._drawn)
        # One thread, one window ahead: the next window is drawn while this one trains.
        return iter(
            source.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=1))
        )

    def _drawn(self, pair: tuple[int, int]) -> Window:
        """A window drawn and on the device: this process draws the blocks of its shards."""
        epoch, index = pair
        plan = self.plan(epoch)
        blocks = plan.windows[index]
        layout = ShardLayout(
            self.dataset.block_centers[blocks].astype(np.int64), self.shards, self.shard_rows
        )
        local = self.placement.local_data_shards() if self.shards > 1 else [0]
        parts = {}
        for shard in local:
            held = blocks[layout.blocks_of(shard)]
            parts[shard] = (
                draw_window(self.config, self.dataset, held, epoch) if len(held) else None
            )
        device = shards_to_device(parts, layout, self.config.max_len, self.placement)
        return Window(index, device, layout, int(plan.starts[index]))

    def _single_window(self, epoch: int, plan: EpochPlan) -> Window:
        """A corpus of one window keeps its examples for every epoch (drawn anew each epoch
        with resample_each_epoch)."""
        if self._kept is None or (self.config.resample_each_epoch and epoch > 0):
            host = draw_window(self.config, self.dataset, plan.windows[0], epoch)
            self._kept = (host, None)
        host, device = self._kept
        layout = ShardLayout.whole(len(host), self.shard_rows - 1)
        if device is None:
            device = shards_to_device({0: host}, layout, self.config.max_len, self.placement)
            self._kept = (host, device)
        return Window(0, device, layout, 0)
