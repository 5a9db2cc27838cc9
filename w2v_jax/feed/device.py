"""A stream's groups drawn on the device: where a run draws its examples, the count of each
block's centers as the device subsamples it (the run's plan needs them), and ``DeviceDrawer``,
which sends a group's blocks as slots of token ids and expands them there with the programs
of ``w2v_jax.feed.draws``. ``feed.StreamedGroups`` uses it."""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import numpy as np

from w2v_jax import data, parallel
from w2v_jax.config import Config
from w2v_jax.data.blocks import Dataset, Slots, block_slots, slot_shape
from w2v_jax.feed import draws


def drawn_on(config: Config, num_blocks: int) -> str:
    """Where a run's examples are drawn: a corpus of one group on the host, by the book's
    numpy stage (PTB: the book's path, exactly), kept on the device while its epochs share
    their draws; a streamed corpus on the device, whose blocks are sent as token ids, about a
    seventh of the bytes of rows (docs/performance.md, "Examples drawn on the device")."""
    return "host" if num_blocks <= config.group_blocks else "device"


def keep_probabilities(dataset: Dataset) -> np.ndarray:
    """float32 [vocab]: each word's chance to be kept, as the device compares it."""
    return data.examples.keep_probabilities(
        dataset.corpus, dataset.subsample_t, dataset.subsample_formula, dataset.vocab.counts
    ).astype(np.float32)


def count_on_device(dataset: Dataset, subsample_draws: list[int]) -> np.ndarray:
    """int64 [draws, blocks]: each block's centers in each subsampling draw as the device
    subsamples it (``draws``), counted on this process's first device, a block sent once for
    all the draws (every process counts them all: the plan is everyone's)."""
    device = jax.local_devices()[0]
    keep = jax.device_put(keep_probabilities(dataset), device)
    wanted = jax.device_put(np.asarray(subsample_draws, np.int32), device)
    num_blocks = len(dataset.blocks) - 1
    counted = np.zeros((len(subsample_draws), num_blocks), np.int64)
    for block in range(num_blocks):
        slots = block_slots(dataset, np.array([block]), 1)
        sent = jax.device_put((slots.ids[0], slots.offsets[0], slots.lengths[0]), device)
        # Read at once: a block's working arrays are freed before the next is sent.
        counts = draws.count_centers(*sent, block, wanted, keep, dataset.seed)
        counted[:, block] = np.asarray(counts)
    return counted


@functools.lru_cache(maxsize=4)
def _compiled_expander(
    seed,
    layout,
    slot_rows,
    shards,
    sharding,
    replicated,
    slots,
    tokens,
    sentences,
    vocab,
):
    """``draws.expander`` compiled for groups of ``slots`` slots, once a process for each
    run's shapes (runs of a sweep or a test reuse it)."""
    expand = draws.expander(seed, layout, slot_rows, shards, sharding, replicated)

    def shape(*dims, dtype=np.int32, sharding=sharding):
        return jax.ShapeDtypeStruct(dims, dtype, sharding=sharding)

    return expand.lower(
        shape(slots, tokens),
        shape(slots, sentences + 1),
        shape(slots),
        shape(slots),
        shape(sharding=replicated),
        shape(sharding=replicated),
        shape(vocab, dtype=np.float32, sharding=replicated),
    ).compile()


class DeviceDrawer:
    """The device's side of a stream drawn there: the program that expands a group's slots
    (``draws.expander``), laid out like the group (its slots along "data" on a mesh), and
    the arrays every group shares (keep probabilities, the noise words' alias table)."""

    def __init__(
        self,
        config: Config,
        dataset: Dataset,
        placement: parallel.Placement,
        shards: int,
    ) -> None:
        self.placement, self.dataset, self.shards = placement, dataset, shards
        self.sharding = placement.replicated if shards == 1 else placement.data_rows
        self.slots = -(-config.group_blocks // shards)
        """A shard's slots: the group's blocks it holds, at most."""
        self.slot_shape = slot_shape(dataset)
        subsamplings = {config.subsample_draw(epoch) for epoch in range(config.num_epochs)}
        most = max(int(dataset.block_centers(draw).max(initial=0)) for draw in subsamplings)
        self.slot_rows = most + 1
        """Rows a slot holds: the largest block's centers in any of the run's subsampling
        draws (counted by its plan), then a padding row."""
        self._static = (
            config.seed,
            config.row_layout,
            self.slot_rows,
            shards,
            self.sharding,
            placement.replicated,
        )
        self._expand = None

    @functools.cached_property
    def keep(self) -> jax.Array:
        return parallel.put(keep_probabilities(self.dataset), self.placement.replicated)

    @functools.cached_property
    def shared(self) -> dict[str, jax.Array]:
        """The noise words' alias table, placed once (on first use) for every group."""
        table = self.dataset.noise_table
        return {
            "noise_accept": parallel.put(table.accept, self.placement.replicated),
            "noise_alias": parallel.put(table.alias, self.placement.replicated),
        }

    def shapes(self) -> draws.Expanded:
        """A group's examples as ``expand`` gives them."""
        tokens, _ = self.slot_shape
        slots = self.shards * self.slots
        rows = slots * self.slot_rows

        def shape(size: tuple[int, ...], sharding=self.sharding, dtype=np.int32):
            return jax.ShapeDtypeStruct(size, dtype, sharding=sharding)

        table = self.dataset.noise_table
        return draws.Expanded(
            tokens=shape((slots * tokens,)),
            blocks=shape((slots,)),
            **{name: shape((rows,)) for name in ("position", "left", "num_contexts", "num_live")},
            draw_epoch=shape((), self.placement.replicated),
            noise_accept=shape(table.accept.shape, self.placement.replicated, table.accept.dtype),
            noise_alias=shape(table.alias.shape, self.placement.replicated, table.alias.dtype),
        )

    def compile(self) -> float:
        """Compile the expansion ahead of time, so that the first group waits for no
        compiler; its seconds."""
        began = time.perf_counter()
        tokens, sentences = self.slot_shape
        slots, vocab = self.shards * self.slots, len(self.dataset.vocab)
        self._expand = _compiled_expander(*self._static, slots, tokens, sentences, vocab)
        return time.perf_counter() - began

    def slot_bytes(self) -> int:
        """The bytes of a group's slots as sent, every shard's (ids, offsets, lengths,
        blocks)."""
        tokens, sentences = self.slot_shape
        return self.shards * self.slots * (tokens + sentences + 1 + 2) * 4

    def expand(
        self, parts: dict[int, Slots], draw_epoch: int, subsample_draw: int
    ) -> draws.Expanded:
        """The group of the shards' slots ``parts`` (by shard) on the device, expanded with
        the windows and noise words of ``draw_epoch`` and the subsampling of
        ``subsample_draw``."""
        if self._expand is None:
            self.compile()
        slots = self.slots
        arrays = []
        for name in ("ids", "offsets", "lengths", "blocks"):
            local = {shard: getattr(part, name) for shard, part in parts.items()}
            width = next(iter(local.values())).shape[1:]

            def rows_of(index, local=local):
                return local[(index[0].start or 0) // slots]

            arrays.append(
                jax.make_array_from_callback((self.shards * slots, *width), self.sharding, rows_of)
            )
        epoch, subsample = (
            parallel.put(np.int32(draw), self.placement.replicated)
            for draw in (draw_epoch, subsample_draw)
        )
        expanded = self._expand(*arrays, epoch, subsample, self.keep)
        return dataclasses.replace(expanded, **self.shared)
