"""Examples drawn on the device: the book's mathematics (``w2v_jax.data.examples``, the
reference) inside compiled programs, so that a streamed corpus sends token ids, never rows.

A group's blocks reach the device as slots: each slot one block's token ids as encoded
(``<unk>`` included) and its sentence offsets, padded to the run's largest block. ``expand``
runs once per group: it subsamples every slot (either formula, ``data.examples.
keep_probabilities``), lays the kept tokens end to end, finds the centers (tokens of sentences
that keep at least 2) and draws each center's window, so that a row is a handful of numbers:
where its center sits in the kept tokens, how many contexts it has on its left and in all,
and its live slots. ``batch_rows`` runs in every step: it gathers the batch's contexts from the kept
tokens and draws their noise words as the objective lays them out (``w2v_jax.rows``; drawn by
``data.noise``'s device sampler), giving the book's padded rows for ``w2v_jax.feed.batches``.

Every draw comes from a key folded with (seed, stream, draw epoch, block), and a row's noise
words from its block's key folded with its place in the block: a row is the same wherever and
whenever it is drawn (any mesh, any process, a resumed run), as the host's rows are. The draw
epochs are the epoch's own or the first's (``Config.subsample_draw``, ``examples_draw``); an
epoch's centers depend on its subsampling, so ``count_centers`` counts every draw a run trains
on before it starts (the run's plan, ``data.blocks.RunPlan``, needs them).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import w2v_jax.pairs  # noqa: F401  (Rows cross the jit boundary: a pytree registered there)
from w2v_jax.data.examples import EXAMPLES_STREAM, SUBSAMPLE_STREAM
from w2v_jax.data.noise import draw_noise_on_device
from w2v_jax.rows import RowLayout, Rows


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Expanded:
    """A group's examples as ``expander`` draws them on the device, once per group: its kept
    tokens, and a handful of numbers per row from which each step draws its rows
    (``batch_rows``)."""

    tokens: Any
    """[slots * tokens]: each slot's kept tokens end to end."""
    position: Any
    """[rows]: where each row's center sits in ``tokens``."""
    left: Any
    """[rows]: its contexts left of the center."""
    num_contexts: Any
    """[rows]: its contexts."""
    num_live: Any
    """[rows]: its live slots."""
    blocks: Any
    """[slots]: each slot's block, which keys its rows' noise words."""
    draw_epoch: Any
    """The draw of the windows and noise words."""
    noise_accept: Any = None
    """The noise words' alias table (placed once for every group; None until it is)."""
    noise_alias: Any = None

    @property
    def slot_rows(self) -> int:
        """Rows a slot holds."""
        return self.position.shape[0] // self.blocks.shape[0]


_WINDOWS, _NOISE = 0, 1  # the two sub-streams of a block's examples key


def stream_key(seed: int | jax.Array, stream: int, epoch, block) -> jax.Array:
    """The key of one stream of draws for ``epoch`` and ``block`` (traced values allowed)."""
    key = jax.random.fold_in(jax.random.key(seed), stream)
    return jax.random.fold_in(jax.random.fold_in(key, epoch), block)


def subsampled(ids, offsets, length, block, subsample_draw, keep_prob, seed):
    """One slot subsampled by draw ``subsample_draw``: which tokens are kept, each token's
    place among the kept ones, and the first and one-past-last kept place of its sentence."""
    capacity = ids.shape[0]
    place = jnp.arange(capacity, dtype=jnp.int32)
    key = stream_key(seed, SUBSAMPLE_STREAM, subsample_draw, block)
    uniform = jax.random.uniform(key, (capacity,))
    keep = (place < length) & (ids != 0) & (uniform < keep_prob[ids])
    # The sentence of each token: one more at every sentence start after the first.
    starts = jnp.zeros(capacity, jnp.int32).at[offsets[1:]].add(1, mode="drop")
    sentence = jnp.cumsum(starts)
    kept_before = jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(keep, dtype=jnp.int32)])
    sentence_start = kept_before[offsets]  # [sentences + 1], in kept places
    last = offsets.shape[0] - 1
    low = sentence_start[jnp.minimum(sentence, last)]
    high = sentence_start[jnp.minimum(sentence + 1, last)]
    return keep, kept_before[:-1], low, high


@functools.partial(jax.jit, static_argnames=("seed",))
def count_centers(ids, offsets, length, block, subsample_draws, keep_prob, seed: int) -> jax.Array:
    """int32 [draws]: the centers one slot keeps in each subsampling draw of
    ``subsample_draws`` (what ``expand`` finds), one draw at a time."""

    def count(draw):
        keep, _, low, high = subsampled(ids, offsets, length, block, draw, keep_prob, seed)
        return jnp.sum(keep & (high - low >= 2), dtype=jnp.int32)

    return jax.lax.map(count, subsample_draws)


def center_windows(seed, draw_epoch, block, rows: int, max_window: int) -> jax.Array:
    """The window of each of a block's first ``rows`` centers, uniform on 1..max_window."""
    key = jax.random.fold_in(stream_key(seed, EXAMPLES_STREAM, draw_epoch, block), _WINDOWS)
    return jax.random.randint(key, (rows,), 1, max_window + 1, jnp.int32)


def _expand_slot(
    slot,
    ids,
    offsets,
    length,
    block,
    draw_epoch,
    subsample_draw,
    keep_prob,
    *,
    seed,
    layout,
    slot_rows,
):
    """One slot's kept tokens and rows (``expander``)."""
    keep, place, low, high = subsampled(
        ids, offsets, length, block, subsample_draw, keep_prob, seed
    )
    is_center = keep & (high - low >= 2)
    row = jnp.cumsum(is_center, dtype=jnp.int32) - 1
    target = jnp.where(is_center, row, slot_rows)  # off the end: dropped

    def by_row(values):
        return jnp.zeros(slot_rows, jnp.int32).at[target].set(values, mode="drop")

    tokens = jnp.zeros_like(ids).at[jnp.where(keep, place, ids.shape[0])].set(ids, mode="drop")
    windows = center_windows(seed, draw_epoch, block, slot_rows, layout.max_window)
    live = jnp.arange(slot_rows) <= row[-1]
    left = jnp.where(live, jnp.minimum(windows, by_row(place - low)), 0)
    right = jnp.where(live, jnp.minimum(windows, by_row(high - 1 - place)), 0)
    num_contexts = left + right
    return {
        "tokens": tokens,
        "position": by_row(place) + slot * ids.shape[0],
        "left": left,
        "num_contexts": num_contexts,
        "num_live": layout.num_live(num_contexts),
    }


def expander(
    seed: int,
    layout: RowLayout,
    slot_rows: int,
    shards: int,
    sharding: jax.sharding.Sharding,
    replicated: jax.sharding.Sharding,
) -> Callable[..., Expanded]:
    """The program run once per group: slots (``ids`` [slots, tokens], ``offsets`` [slots,
    sentences + 1], ``lengths``, ``blocks``, the scalars ``draw_epoch`` (windows and noise
    words) and ``subsample_draw``, and the keep probabilities) -> the group's examples, flat
    along the slots: ``tokens`` [slots * tokens] (the kept ones end to end) and per row
    (``slot_rows`` a slot, its last always a padding row) ``position`` (of its center in
    ``tokens``), ``left``, ``num_contexts`` and ``num_live``; plus ``blocks`` and
    ``draw_epoch``, which key the rows' noise words.
    The slots and everything drawn from them lie as ``sharding`` says (on a mesh: along
    "data" in ``shards`` shards, each device expanding its own, a slot at a time)."""
    slot = functools.partial(
        _expand_slot,
        seed=seed,
        layout=layout,
        slot_rows=slot_rows,
    )

    def expand(ids, offsets, lengths, blocks, draw_epoch, subsample_draw, keep_prob):
        index = jnp.arange(ids.shape[0], dtype=jnp.int32)

        def shard(arrays):
            # A shard's slots one after the other: the working arrays of one slot at a time.
            return jax.lax.map(
                lambda one: slot(*one, draw_epoch, subsample_draw, keep_prob), arrays
            )

        per_shard = [
            x.reshape(shards, -1, *x.shape[1:]) for x in (index, ids, offsets, lengths, blocks)
        ]
        drawn = jax.vmap(shard)(per_shard)
        by_row = {name: values.reshape(-1) for name, values in drawn.items()}
        return Expanded(**by_row, blocks=blocks, draw_epoch=draw_epoch)

    by_slot = (sharding,) * 4
    names = ("tokens", "position", "left", "num_contexts", "num_live", "blocks")
    return jax.jit(
        expand,
        in_shardings=(*by_slot, replicated, replicated, replicated),
        out_shardings=Expanded(**{name: sharding for name in names}, draw_epoch=replicated),
    )


def batch_rows(
    examples: Expanded,
    rows: jax.Array,
    *,
    seed: int,
    layout: RowLayout,
) -> tuple[Rows, jax.Array]:
    """The book's padded rows of ``rows`` (of an ``expand`` ed group) as ``layout`` lays them
    out (``Rows``: ``contexts_negatives`` holds the contexts left to right, then their noise
    words, then 0s), and the rows of them to gather (all, in order)."""
    position = examples.position[rows]
    left = examples.left[rows]
    num_contexts = examples.num_contexts[rows]
    slot = jnp.arange(2 * layout.max_window, dtype=jnp.int32)
    at = position[:, None] - left[:, None] + slot + (slot >= left[:, None])
    live = slot < num_contexts[:, None]
    tokens = examples.tokens
    contexts = jnp.where(live, tokens[jnp.clip(at, 0, tokens.shape[0] - 1)], 0)
    words = contexts
    # A padding row's center is 0, as the host's: no optimiser state of a word moves.
    centers = jnp.where(num_contexts > 0, tokens[position], 0)
    if layout.noise_each:
        keys = row_keys(examples, rows, seed)
        accept, alias = examples.noise_accept, examples.noise_alias
        # The words the noise words avoid: each context's, or the center.
        avoid, avoided = (contexts, live) if layout.per_context else (centers[:, None], live[:, :1])
        noise = draw_noise_on_device(keys, avoid, avoided, accept, alias, layout.noise_each)
        words = _contexts_then_noise(contexts, noise, num_contexts, layout.num_noise(num_contexts))
    drawn = Rows(
        centers=centers[:, None],
        contexts_negatives=words,
        num_contexts=num_contexts,
        num_left=left,
        num_live=examples.num_live[rows],
    )
    return drawn, jnp.arange(rows.shape[0], dtype=jnp.int32)


def row_keys(examples: Expanded, rows: jax.Array, seed: int) -> jax.Array:
    """Each row's noise key: its block's examples key folded with its place in the block."""
    slot_rows = examples.slot_rows
    blocks = examples.blocks[rows // slot_rows]

    def key(block, index):
        block_key = stream_key(seed, EXAMPLES_STREAM, examples.draw_epoch, block)
        return jax.random.fold_in(jax.random.fold_in(block_key, _NOISE), index)

    return jax.vmap(key)(blocks, rows % slot_rows)


def _contexts_then_noise(contexts, noise, num_contexts, num_noise):
    """Rows of the book's layout: each row's contexts, then its ``num_noise`` noise words,
    then 0s."""
    slots = contexts.shape[1] + noise.shape[1]
    slot = jnp.arange(slots, dtype=jnp.int32)[None, :]
    count = num_contexts[:, None]
    noise_count = num_noise[:, None]
    from_contexts = jnp.take_along_axis(contexts, jnp.minimum(slot, contexts.shape[1] - 1), 1)
    from_noise = jnp.take_along_axis(noise, jnp.clip(slot - count, 0, noise.shape[1] - 1), 1)
    return jnp.where(
        slot < count, from_contexts, jnp.where(slot < count + noise_count, from_noise, 0)
    )
