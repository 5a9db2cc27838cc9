"""What a row of examples holds for one center, as its objective lays it out: the book's padded
row (``w2v_jax.data.examples.Examples``), drawn on the host or on the device
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
from typing import Literal

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


ROW_FIELDS: dict[str, RowField] = {
    "centers": RowField(np.dtype(np.int32), 1),
    "contexts_negatives": RowField(np.dtype(np.int32), "max_len"),
    "num_contexts": RowField(np.dtype(np.int32)),
    "num_live": RowField(np.dtype(np.int32)),
}
"""The fields of a row, declared once: ``centers`` [1], ``contexts_negatives`` [L] (the
contexts left to right, then the noise words, then 0s), ``num_contexts`` and ``num_live``.
The host's examples (``data.examples.Examples``), the device's drawn rows
(``feed.draws.batch_rows``), their device shapes, the bytes a group sends and its padding rows
(``feed.shards``, ``feed.stream``) all follow from it."""


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
        width = ROW_FIELDS[name].width
        if width is None:
            return ()
        return (self.max_len if width == "max_len" else width,)

    def row_bytes(self) -> int:
        """The bytes of one row, every field of it."""
        return sum(
            math.prod(self.field_shape(name)) * field.dtype.itemsize
            for name, field in ROW_FIELDS.items()
        )
