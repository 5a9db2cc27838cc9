"""Where a group's rows sit on the devices (``ShardLayout``: a group dealt to the mesh's data
axis block by block), and rows drawn on the host placed there (``to_device``,
``shards_to_device``)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from w2v_jax import data, parallel


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """Where a group's rows sit on the device. The group's k-th block goes to data shard
    k mod ``shards``, which holds its blocks' rows in group order, then padding rows, in
    ``shard_rows`` rows; device row ``shard * shard_rows + i`` is its shard's row i. One shard
    (one device, the vocab axis only, a corpus of one group): every device holds the group's
    rows in the order drawn, then padding rows."""

    block_rows: np.ndarray
    """int64 [blocks of the group]: each block's rows, in group order."""
    shards: int
    shard_rows: int
    slot_rows: int | None = None
    """Examples drawn on the device: each block has a slot of this many rows in its shard
    (the k-th block of a shard the k-th slot), the last always a padding row."""

    @classmethod
    def whole(cls, rows: int, capacity: int | None = None) -> ShardLayout:
        """One shard of ``rows`` rows and padding rows up to ``capacity`` + 1 (at least one)."""
        return cls(np.array([rows], np.int64), 1, max(capacity or 0, rows) + 1)

    @property
    def rows(self) -> int:
        return int(self.block_rows.sum())

    def blocks_of(self, shard: int) -> np.ndarray:
        """The group positions of the blocks shard ``shard`` holds."""
        return np.arange(shard, len(self.block_rows), self.shards)

    @property
    def identity(self) -> bool:
        """Whether a group row is its device row (one shard, blocks end to end)."""
        return self.shards == 1 and self.slot_rows is None

    @property
    def padding_row(self) -> int:
        """A device row that is a padding row: the batch order's padding index ``rows`` when
        the rows are not mapped, else shard 0's last row (a shard's rows end with one), or
        its first slot's last (a slot's rows do)."""
        if self.identity:
            return self.rows
        return self.shard_rows - 1 if self.slot_rows is None else self.slot_rows - 1

    def device_rows(self) -> np.ndarray:
        """int32 [rows + 1]: the device row of each of the group's rows (blocks in group
        order), and last, for the batch order's padding index ``rows``, a padding row."""
        starts = np.zeros(len(self.block_rows), np.int64)
        for shard in range(self.shards):
            held = self.blocks_of(shard)
            if self.slot_rows is None:
                before = np.cumsum(self.block_rows[held]) - self.block_rows[held]
            else:
                before = np.arange(len(held)) * self.slot_rows
            starts[held] = shard * self.shard_rows + before
        mapped = [np.arange(start, start + rows) for start, rows in zip(starts, self.block_rows)]
        return np.concatenate([*mapped, [self.padding_row]]).astype(np.int32)


def to_device(
    examples: data.examples.Examples,
    rows: int | None = None,
    placement: parallel.Placement | None = None,
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
    parts: dict[int, data.examples.Examples | None],
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
