"""The examples of an epoch as a stream of windows: drawn on the host ahead of the device by a
grain pipeline, a window of blocks at a time, so that memory holds a window or two, never the
epoch.

An epoch's blocks come in an order drawn for the epoch, ``Config.window_blocks`` at a time
(``data.epoch_windows``); a window's examples are drawn block by block (``data.window_examples``)
and its rows shuffled within the window, then cut into batches, the last one filled with
padding rows. Every draw is seeded by (seed, stream, epoch, block or window), so a window is the
same whenever it is drawn: the position in the stream is just (epoch, batch), and a run resumed
there draws what the interrupted run would have. A corpus of one window (PTB) draws its examples
once, as the book does, and keeps them on the device for every epoch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import jax
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
    return sum(epoch_plan(config, dataset, epoch).num_batches
               for epoch in range(config.num_epochs))


def draw_window(config: Config, dataset: data.Dataset, blocks: np.ndarray,
                epoch: int) -> data.Examples:
    """A window's examples in ``epoch``: the same every epoch unless resample_each_epoch."""
    draw_epoch = epoch if config.resample_each_epoch else 0
    return data.window_examples(dataset, blocks, draw_epoch, config.max_window,
                                config.noise_per_context, config.max_len)


def row_capacity(config: Config, dataset: data.Dataset) -> int:
    """Rows every window fits in: the centers of the window_blocks largest blocks. Windows are
    padded to it on the device, so that one program serves them all."""
    return int(np.sort(dataset.block_centers)[::-1][:config.window_blocks].sum())


def to_device(examples: data.Examples, rows: int | None = None,
              placement: parallel.Placement | None = None) -> dict[str, jax.Array]:
    """The examples with padding rows up to ``rows`` + 1 rows (default: one), as device arrays
    keyed by field name, on every device of ``placement``'s mesh (default: one device); the row
    at len(examples) is a padding row."""
    placement = placement or parallel.Placement.single()
    total = max(rows or 0, len(examples)) + 1
    arrays = {}
    for field in dataclasses.fields(examples):
        array = getattr(examples, field.name)
        padded = np.zeros((total, *array.shape[1:]), array.dtype)  # one copy, then the device's
        padded[:len(array)] = array
        arrays[field.name] = placement.put(padded, placement.replicated)
    return arrays


def window_order(config: Config, num_rows: int, epoch: int,
                 window: int) -> np.ndarray | jax.Array:
    """A window's batch order: int32 [batches, batch_size], rows of the window shuffled (on
    the host, or on the device with config.shuffle "device"), the last batch filled with the
    padding row ``num_rows``. Window 0's is the one a corpus of one window has always had."""
    if config.shuffle == "device":
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed),
                                                    data.SHUFFLE_STREAM), epoch)
        if window:
            key = jax.random.fold_in(key, window)
        return batches.device_batch_order(num_rows, config.batch_size, key)
    shuffle = data.stream_rng(config.seed, data.SHUFFLE_STREAM, epoch, window)
    return data.batch_order(num_rows, config.batch_size, shuffle)


@dataclasses.dataclass
class Window:
    """One window of an epoch, on the device, with the per-row counts the host needs."""

    index: int
    device: dict[str, jax.Array]
    num_contexts: np.ndarray
    num_live: np.ndarray
    first_batch: int
    """The epoch's batch index of the window's first batch."""

    @property
    def rows(self) -> int:
        return len(self.num_contexts)


class Stream:
    """The windows of the run's epochs.

    A corpus of one window draws it once (each epoch with resample_each_epoch) and keeps it on
    the device. A larger corpus's windows come from one grain pipeline over the run's
    (epoch, window) pairs, which draws a window and moves it to the device in a thread, one
    window ahead of training (numpy and the copy leave the interpreter while they work), across
    epoch ends too. On a mesh, every device holds the window (each step takes its share of a
    batch's rows from it), and every process draws every window: a batch mixes rows of all the
    window's blocks, so that a run's batches do not depend on the number of processes.
    ``wait_seconds`` adds up the time training waited for a window (the device
    is idle then, each dispatch having ended with the host reading its losses).
    """

    def __init__(self, config: Config, dataset: data.Dataset,
                 first: data.Examples | None = None,
                 placement: parallel.Placement | None = None) -> None:
        self.config, self.dataset = config, dataset
        self.placement = placement or parallel.Placement.single()
        self.rows = row_capacity(config, dataset)
        self.one_window = len(dataset.blocks) - 1 <= config.window_blocks
        # A corpus of one window keeps its examples for every epoch: (host, device).
        self._kept: tuple[data.Examples, dict[str, jax.Array] | None] | None = None
        if first is not None and self.one_window:
            self._kept = (first, None)
        self._plans: dict[int, EpochPlan] = {}
        self._pipeline: Iterator[Window] | None = None
        self._next: tuple[int, int] | None = None  # the pipeline's next (epoch, window)
        self.wait_seconds = 0.0

    def device_shapes(self) -> dict[str, jax.ShapeDtypeStruct]:
        """The shapes of every window's device examples, to compile for."""
        rows, length = self.rows + 1, self.config.max_len
        shapes = {"centers": (rows, 1), "contexts_negatives": (rows, length),
                  "num_contexts": (rows,), "num_live": (rows,)}
        return {name: jax.ShapeDtypeStruct(shape, np.int32) for name, shape in shapes.items()}

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

        pairs = [(e, w) for e in range(epoch, self.config.num_epochs)
                 for w in range(window if e == epoch else 0, len(self.plan(e).windows))]
        source = grain.MapDataset.source(pairs).map(self._drawn)
        # One thread, one window ahead: the next window is drawn while this one trains.
        return iter(source.to_iter_dataset(grain.ReadOptions(num_threads=1,
                                                             prefetch_buffer_size=1)))

    def _drawn(self, pair: tuple[int, int]) -> Window:
        epoch, index = pair
        plan = self.plan(epoch)
        host = draw_window(self.config, self.dataset, plan.windows[index], epoch)
        return Window(index, to_device(host, self.rows, self.placement), host.num_contexts,
                      host.num_live, int(plan.starts[index]))

    def _single_window(self, epoch: int, plan: EpochPlan) -> Window:
        """A corpus of one window keeps its examples for every epoch (drawn anew each epoch
        with resample_each_epoch)."""
        if self._kept is None or (self.config.resample_each_epoch and epoch > 0):
            host = draw_window(self.config, self.dataset, plan.windows[0], epoch)
            self._kept = (host, None)
        host, device = self._kept
        if device is None:
            device = to_device(host, self.rows, self.placement)
            self._kept = (host, device)
        return Window(0, device, host.num_contexts, host.num_live, 0)
