"""Where a group's rows sit on the devices (``ShardLayout``: a group dealt to the mesh's data
axis block by block), and rows drawn on the host placed there (``to_device``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from w2v_jax import parallel
from w2v_jax.rows import ROW_FIELDS, Rows


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """Where a group's rows sit on the device. Examples drawn on the device: the group's k-th
    block goes to data shard k mod ``shards``, which holds a slot of ``slot_rows`` rows for
    each of its blocks (its k-th block in its k-th slot, a slot's last row always a padding
    row), in ``shard_rows`` rows; device row ``shard * shard_rows + i`` is its shard's row i.
    A corpus of one group drawn on the host (``whole``): every device holds the group's rows
    in the order drawn, then padding rows."""

    block_rows: np.ndarray
    """int64 [blocks of the group]: each block's rows, in group order."""
    shards: int
    shard_rows: int
    slot_rows: int | None = None
    """Rows a block's slot holds (None: the rows of a group drawn on the host, end to end)."""

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
        """Whether a group row is its device row (rows drawn on the host, end to end)."""
        return self.slot_rows is None

    @property
    def padding_row(self) -> int:
        """A device row that is a padding row: the batch order's padding index ``rows`` when
        the rows are not mapped, else the first slot's last row (a slot's rows end with one)."""
        return self.rows if self.identity else self.slot_rows - 1

    def device_rows(self) -> np.ndarray:
        """int32 [rows + 1]: the device row of each of the group's rows (blocks in group
        order), and last, for the batch order's padding index ``rows``, a padding row."""
        starts = np.zeros(len(self.block_rows), np.int64)
        for shard in range(self.shards):
            held = self.blocks_of(shard)
            starts[held] = shard * self.shard_rows + np.arange(len(held)) * self.slot_rows
        mapped = [np.arange(start, start + rows) for start, rows in zip(starts, self.block_rows)]
        return np.concatenate([*mapped, [self.padding_row]]).astype(np.int32)


def to_device(
    examples: Rows,
    rows: int | None = None,
    placement: parallel.Placement | None = None,
) -> Rows:
    """The examples with padding rows up to ``rows`` + 1 rows (default: one), as device arrays,
    on every device of ``placement``'s mesh (default: one device); the row at len(examples) is
    a padding row."""
    placement = placement or parallel.Placement.single()
    layout = ShardLayout.whole(len(examples), rows)
    arrays = {}
    for name, field in ROW_FIELDS.items():
        values = getattr(examples, name)
        padded = np.zeros((layout.shard_rows, *values.shape[1:]), field.dtype)
        padded[: len(examples)] = values
        arrays[name] = parallel.put(padded, placement.replicated)
    return Rows(**arrays)
