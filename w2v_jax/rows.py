"""What a row of examples holds for one center, as its objective lays it out: the book's padded
row (``Rows``), drawn on the host (``w2v_jax.data.examples``) or on the device
(``w2v_jax.feed.draws``). No JAX here: the numpy stage reads it.

A row holds the center's context words left to right, then its noise words, then 0s up to
``max_len``. Skip-gram draws ``noise_each`` noise words for each context word, none equal to
one of the row's contexts (the book's); CBOW draws ``noise_each`` for the center, none equal to
the center (word2vec's). With shared noise (``Config.noise.sharing`` "per_batch") a row holds
its contexts only and the step draws the noise words.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

Objective = Literal["skipgram", "cbow"]

NOISE_FOR: dict[str, str] = {"skipgram": "contexts", "cbow": "center"}
"""Each objective's noise words: drawn for (and never equal to) the row's "contexts", each
context its own, or its "center"."""


@dataclasses.dataclass(frozen=True)
class RowField:
    """A field of a row of examples: its dtype and its shape in one row (``width`` None: one
    value; an int: that many; "max_len": the layout's row width)."""

    dtype: np.dtype
    width: int | str | None = None

    def shape(self, max_len: int) -> tuple[int, ...]:
        """Its shape in one row of width ``max_len``."""
        if self.width is None:
            return ()
        return (max_len if self.width == "max_len" else self.width,)


def row(dtype: type, width: int | str | None = None) -> dict[str, RowField]:
    """The metadata that declares a field of ``Rows``: its dtype and its shape in a row."""
    return {"row": RowField(np.dtype(dtype), width)}


@dataclasses.dataclass(frozen=True)
class Rows:
    """Rows of examples, one per center, each field declared once here with its dtype and its
    shape in a row: numpy arrays in the numpy stage (the book's padded examples, its
    ``batchify`` over an epoch: ``data.examples.draw_examples``), device arrays in a step
    (a pytree, registered by ``w2v_jax.pairs``; drawn there by ``feed.draws.batch_rows``).
    Their device shapes, the bytes a group sends, the padding rows and the batch's rows
    a step's pairs carry (``Pairs.rows``) follow from the declaration: a new field is one
    line here and its value where rows are drawn.

    The book's ``mask`` (1 on the live slots) and ``labels`` (1 on the contexts) follow from
    the counts, so they are stored as counts and expanded on demand."""

    centers: Any = dataclasses.field(metadata=row(np.int32, 1))
    """[1]: the center."""
    contexts_negatives: Any = dataclasses.field(metadata=row(np.int32, "max_len"))
    """[L]: the contexts left to right, then their noise words, then 0s."""
    num_contexts: Any = dataclasses.field(metadata=row(np.int32))
    """The row's context words."""
    num_left: Any = dataclasses.field(metadata=row(np.int32))
    """Its context words left of the center (the first ``num_left`` slots)."""
    num_live: Any = dataclasses.field(metadata=row(np.int32))
    """Its context and noise words."""

    def __len__(self) -> int:
        return len(self.centers)

    @property
    def mask(self) -> np.ndarray:
        """bool (N, L): the live slots."""
        return live_slots(self.num_live, self.contexts_negatives.shape[1])

    @property
    def labels(self) -> np.ndarray:
        """bool (N, L): the context slots."""
        return live_slots(self.num_contexts, self.contexts_negatives.shape[1])

    @property
    def num_pairs(self) -> int:
        """(center, context) pairs."""
        return int(self.num_contexts.sum())


ROW_FIELDS: dict[str, RowField] = {
    field.name: field.metadata["row"] for field in dataclasses.fields(Rows)
}
"""Each field of ``Rows`` by name: its dtype and its shape in a row."""


def live_slots(counts: np.ndarray, length: int) -> np.ndarray:
    """bool (..., length): True on the first counts[...] slots of each row."""
    return np.arange(length, dtype=np.int32) < counts[..., None]


@dataclasses.dataclass(frozen=True)
class RowLayout:
    max_window: int
    noise_each: int
    """Noise words per context (skip-gram) or per center (CBOW); 0 with shared noise."""
    noise_for: str = "contexts"
    """"contexts" or "center" (``NOISE_FOR``)."""

    @property
    def max_len(self) -> int:
        """L, the fixed width of a row: every context slot and every noise word."""
        max_contexts = 2 * self.max_window
        return max_contexts + self.noise_each * (max_contexts if self.per_context else 1)

    @property
    def per_context(self) -> bool:
        return self.noise_for == "contexts"

    def num_noise(self, num_contexts):
        """Noise words of rows of ``num_contexts`` contexts (numpy or JAX integers); a row of
        none (a padding row) has none."""
        if self.per_context:
            return num_contexts * self.noise_each
        return (num_contexts > 0) * self.noise_each

    def num_live(self, num_contexts):
        """Live slots of rows of ``num_contexts`` contexts."""
        return num_contexts + self.num_noise(num_contexts)

    def field_shape(self, name: str) -> tuple[int, ...]:
        """The shape of field ``name`` (``ROW_FIELDS``) in one row of this layout."""
        return ROW_FIELDS[name].shape(self.max_len)

    def make_rows(self, count: int, make: Callable[[tuple, np.dtype], Any] = np.zeros) -> Rows:
        """``count`` rows of this layout, each field ``make(shape, dtype)``: by default 0s,
        padding rows (no live slot, center 0); ``jax.ShapeDtypeStruct``, their shapes."""
        return Rows(
            **{
                name: make((count, *self.field_shape(name)), field.dtype)
                for name, field in ROW_FIELDS.items()
            }
        )

    def row_bytes(self) -> int:
        """The bytes of one row, every field of it."""
        return sum(
            math.prod(self.field_shape(name)) * field.dtype.itemsize
            for name, field in ROW_FIELDS.items()
        )
