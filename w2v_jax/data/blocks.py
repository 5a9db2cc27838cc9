"""A corpus in blocks of whole sentences, subsampled and drawn block by block so that host
memory holds a few blocks, never the corpus; each epoch's order of the blocks, taken
``Config.group_blocks`` at a time (the groups whose rows are shuffled together); and the run's
plan, by which the global step alone says where a run stands.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Iterable

import numpy as np

from w2v_jax.config import Config
from w2v_jax.data import CorpusError
from w2v_jax.data.examples import (
    BLOCK_ORDER_STREAM,
    EXAMPLES_STREAM,
    SUBSAMPLE_STREAM,
    center_positions,
    draw_examples,
    stream_rng,
    subsample,
)
from w2v_jax.data.noise import AliasTable
from w2v_jax.data.vocab import Corpus, Vocab
from w2v_jax.rows import ROW_FIELDS, RowLayout, Rows

Counter = Callable[["Dataset", list[int]], np.ndarray]
"""(dataset, subsampling draws) -> int64 [draws, blocks]: each block's centers in each draw."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """What training needs: the vocabulary, the corpus in blocks, and the noise sampler.

    A block is whole sentences, about ``block_tokens`` tokens (``Config.block_tokens``); each
    is subsampled and turned into examples on its own, so host memory holds a few blocks, not
    the corpus. A subsampling draw (an epoch's, ``Config.subsample_draw``) keeps other tokens,
    so each block's centers are counted for each draw a run trains on (``count``), before it
    starts: the run's plan needs them.
    """

    vocab: Vocab
    corpus: Corpus
    """As encoded: every token, ``<unk>`` included; memory-mapped for a cached corpus."""
    noise_table: AliasTable
    blocks: np.ndarray
    """int64 [blocks + 1]: the sentence where each block starts, then the sentence count."""
    subsample_t: float
    subsample_formula: str
    seed: int
    counter: Counter
    """Counts the centers of blocks: ``count_on_host`` (the examples drawn here, by
    ``group_examples``) or the device's (drawn there, by ``w2v_jax.feed.draws``)."""
    drawn_on: str = "host"
    """Where the examples are drawn: "host" or "device"."""
    _centers: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    def count(self, draws: Iterable[int]) -> None:
        """Count each block's centers in the subsampling draws not counted yet, in one pass."""
        missing = sorted(set(draws) - set(self._centers))
        if missing:
            counted = self.counter(self, missing)
            self._centers.update(zip(missing, counted))

    def block_centers(self, draw: int = 0) -> np.ndarray:
        """int64 [blocks]: each block's centers in subsampling draw ``draw``."""
        self.count([draw])
        return self._centers[draw]

    @property
    def num_centers(self) -> int:
        """The centers of the first epoch's subsampling."""
        return int(self.block_centers(0).sum())

    def subsampled_block(self, block: int, draw: int = 0) -> Corpus:
        """Block ``block`` read, ``<unk>`` dropped and subsampled by draw ``draw``: the same
        every call."""
        rng = stream_rng(self.seed, SUBSAMPLE_STREAM, draw, block)
        return subsample(
            corpus_block(self.corpus, self.blocks, block),
            self.subsample_t,
            rng,
            self.subsample_formula,
            self.vocab.counts,
        )


def count_on_host(dataset: Dataset, draws: list[int]) -> np.ndarray:
    """int64 [draws, blocks]: each block's centers once subsampled here (``subsampled_block``)."""
    num_blocks = len(dataset.blocks) - 1
    counted = np.zeros((len(draws), num_blocks), np.int64)

    def count(task: tuple[int, int]) -> None:
        row, block = task
        counted[row, block] = len(center_positions(dataset.subsampled_block(block, draws[row])))

    tasks = [(row, block) for row in range(len(draws)) for block in range(num_blocks)]
    # numpy leaves the interpreter in these loops, so threads use every core.
    with concurrent.futures.ThreadPoolExecutor(min(os.cpu_count(), len(tasks))) as pool:
        list(pool.map(count, tasks))
    return counted


def build_dataset(
    vocab: Vocab,
    corpus: Corpus,
    subsample_t: float,
    seed: int,
    subsample_formula: str = "book",
    block_tokens: int = 1 << 20,
    count_on_device: Counter | None = None,
) -> Dataset:
    """Blocks, their first subsampling's centers and the noise distribution of an encoded
    corpus. Counted here, or by ``count_on_device``, whose examples are then drawn on the
    device."""
    dataset = Dataset(
        vocab,
        corpus,
        vocab.noise_table,
        block_bounds(corpus.offsets, block_tokens),
        subsample_t,
        subsample_formula,
        seed,
        count_on_device or count_on_host,
        "host" if count_on_device is None else "device",
    )
    if dataset.num_centers == 0:
        if not (np.diff(corpus.offsets) >= 2).any():
            raise CorpusError(
                "no line of the corpus holds two or more words of the vocabulary, so no word "
                "has a context: a corpus is one sentence a line, its words split by whitespace "
                "(or tokenizer='words'); check the file, or lower min_freq"
            )
        raise CorpusError(
            "no sentence keeps 2 or more tokens after subsampling, so there is no "
            "center with a context: use a larger corpus or a larger subsample_t"
        )
    return dataset


def block_bounds(offsets: np.ndarray, block_tokens: int) -> np.ndarray:
    """The sentences where blocks of about ``block_tokens`` tokens start, then the sentence
    count: int64 [blocks + 1]. A block ends at the first sentence end at or after a multiple
    of ``block_tokens``; a corpus of at most ``block_tokens`` tokens is one block."""
    targets = np.arange(block_tokens, int(offsets[-1]), block_tokens)
    cuts = np.searchsorted(offsets, targets, side="left")
    return np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]])).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Slots:
    """Blocks as the device takes them (``w2v_jax.feed.draws``): each block's token ids as encoded
    and its sentence offsets, padded to the largest block's, so that every group has one
    shape."""

    ids: np.ndarray
    """int32 [slots, tokens]: a block's ids, then 0s."""
    offsets: np.ndarray
    """int32 [slots, sentences + 1]: where each sentence starts, then the block's length."""
    lengths: np.ndarray
    """int32 [slots]: each block's tokens (0: an empty slot)."""
    blocks: np.ndarray
    """int32 [slots]: the block in each slot (0 for an empty one)."""

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in dataclasses.fields(self))


def slot_shape(dataset: Dataset) -> tuple[int, int]:
    """(tokens, sentences) of the largest block: the shape of every slot."""
    tokens = np.diff(np.asarray(dataset.corpus.offsets)[dataset.blocks])
    return int(tokens.max(initial=1)), int(np.diff(dataset.blocks).max(initial=1))


def block_slots(dataset: Dataset, blocks: np.ndarray, slots: int) -> Slots:
    """``blocks`` read into ``slots`` slots (the ones after them empty)."""
    tokens, sentences = slot_shape(dataset)
    ids = np.zeros((slots, tokens), np.int32)
    offsets = np.zeros((slots, sentences + 1), np.int32)
    lengths = np.zeros(slots, np.int32)
    held = np.zeros(slots, np.int32)
    for slot, block in enumerate(blocks):
        part = corpus_block(dataset.corpus, dataset.blocks, int(block))
        length = len(part.ids)
        ids[slot, :length] = part.ids
        offsets[slot, : len(part.offsets)] = part.offsets
        offsets[slot, len(part.offsets) :] = length
        lengths[slot], held[slot] = length, block
    return Slots(ids, offsets, lengths, held)


def corpus_block(corpus: Corpus, blocks: np.ndarray, block: int) -> Corpus:
    """The sentences of block ``block``, as a corpus of its own."""
    offsets = read_slice(corpus.offsets, int(blocks[block]), int(blocks[block + 1]) + 1)
    ids = read_slice(corpus.ids, int(offsets[0]), int(offsets[-1]))
    return Corpus(ids, offsets - offsets[0])


def read_slice(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]``. A memory-mapped array is read from its file rather than through
    the map, so that the pages of a large corpus never pile up in this process's memory."""
    if isinstance(array, np.memmap) and array.filename is not None:
        return np.fromfile(
            array.filename, array.dtype, stop - start, offset=array.offset + start * array.itemsize
        )
    return np.asarray(array[start:stop])


def epoch_groups(dataset: Dataset, group_blocks: int, epoch: int) -> list[np.ndarray]:
    """The blocks of each group of ``epoch``: the blocks in an order drawn for the epoch,
    ``group_blocks`` at a time. Rows are shuffled within a group (``group.group_order``), so
    a row meets the rows of its group's blocks, not those of the whole corpus."""
    num_blocks = len(dataset.blocks) - 1
    order = np.arange(num_blocks)
    if num_blocks > 1:
        order = stream_rng(dataset.seed, BLOCK_ORDER_STREAM, epoch).permutation(num_blocks)
    return [order[start : start + group_blocks] for start in range(0, num_blocks, group_blocks)]


def group_examples(
    dataset: Dataset,
    blocks: np.ndarray,
    draw_epoch: int,
    layout: RowLayout,
    subsample_draw: int = 0,
) -> Rows:
    """The examples of a group's blocks, block after block: each block subsampled by draw
    ``subsample_draw``, its windows and noise words from its own generator (the draw of
    ``draw_epoch``)."""
    parts = [
        draw_examples(
            dataset.subsampled_block(int(block), subsample_draw),
            dataset.noise_table,
            layout,
            stream_rng(dataset.seed, EXAMPLES_STREAM, draw_epoch, int(block)),
        )
        for block in blocks
    ]
    if len(parts) == 1:
        return parts[0]
    return Rows(
        **{name: np.concatenate([getattr(part, name) for part in parts]) for name in ROW_FIELDS}
    )


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    """The groups of an epoch (their blocks) and the batches each takes."""

    groups: list[np.ndarray]
    rows: np.ndarray
    """int64 [groups]: the centers of each group."""
    batch_size: int

    @property
    def batches(self) -> np.ndarray:
        return -(-self.rows // self.batch_size)

    @property
    def num_batches(self) -> int:
        return int(self.batches.sum())


def epoch_plan(config: Config, dataset: Dataset, epoch: int) -> EpochPlan:
    groups = epoch_groups(dataset, config.group_blocks, epoch)
    centers = dataset.block_centers(config.subsample_draw(epoch))
    rows = np.array([centers[group].sum() for group in groups], np.int64)
    return EpochPlan(groups, rows, config.batch_size)


class RunPlan:
    """Every epoch's groups and batches, so that one number, the global step, says where a
    run stands: the epoch, the group and the batch follow from it."""

    def __init__(self, config: Config, dataset: Dataset) -> None:
        self.config, self.dataset = config, dataset
        # Every epoch's subsampling counted in one pass: the run's length is known at once.
        dataset.count(config.subsample_draw(epoch) for epoch in range(config.num_epochs))
        self._epochs: list[EpochPlan] = []
        self._starts = [0]  # the global step where each epoch starts

    def epoch(self, epoch: int) -> EpochPlan:
        while len(self._epochs) <= epoch:
            planned = epoch_plan(self.config, self.dataset, len(self._epochs))
            self._epochs.append(planned)
            self._starts.append(self._starts[-1] + planned.num_batches)
        return self._epochs[epoch]

    def epoch_start(self, epoch: int) -> int:
        """The global step where ``epoch`` (0-based) starts; ``num_epochs``: the run's end."""
        if epoch:
            self.epoch(epoch - 1)
        return self._starts[epoch]

    @property
    def total_steps(self) -> int:
        return self.epoch_start(self.config.num_epochs)

    def epoch_of(self, step: int) -> int:
        """The epoch the batch after ``step`` belongs to (an epoch's end: the next epoch)."""
        epoch = 0
        while self.epoch_start(epoch + 1) <= step:
            epoch += 1
        return epoch

    def group_start(self, epoch: int, group: int) -> int:
        """The global step where a group's first batch runs."""
        return self.epoch_start(epoch) + int(self.epoch(epoch).batches[:group].sum())

    def locate(self, step: int) -> tuple[int, int]:
        """(epoch, group) of the batch after ``step``."""
        epoch = self.epoch_of(step)
        ends = np.cumsum(self.epoch(epoch).batches) + self.epoch_start(epoch)
        return epoch, int(np.searchsorted(ends, step, side="right"))

    def groups_from(self, step: int) -> list[tuple[int, int]]:
        """The (epoch, group) pairs left in the run after ``step``."""
        if step >= self.total_steps:
            return []
        first_epoch, first_group = self.locate(step)
        return [
            (epoch, group)
            for epoch in range(first_epoch, self.config.num_epochs)
            for group in range(
                first_group if epoch == first_epoch else 0, len(self.epoch(epoch).groups)
            )
        ]


def draw_group(config: Config, dataset: Dataset, blocks: np.ndarray, epoch: int) -> Rows:
    """A group's examples in ``epoch``: its subsampling, windows and noise words drawn anew
    or the first epoch's, as the config says (the book's: the first epoch's)."""
    return group_examples(
        dataset,
        blocks,
        config.examples_draw(epoch),
        config.row_layout,
        config.subsample_draw(epoch),
    )
