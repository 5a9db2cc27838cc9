"""Row-sparse SGD (optimizer="sparse_sgd"): update only the table rows a batch touches.

The gradient of a batch's loss is non-zero only in the rows the batch gathers, so SGD can
differentiate with respect to those gathered rows and scatter ``-lr * gradient`` straight into
the tables: the same update as dense SGD, without building a dense gradient or passing over
every row of both tables (what makes a dense step cost O(vocabulary)). The learning rate decays
linearly to ``lr * 1e-4`` over the run, as word2vec's does.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax.model import group_logits, lookup, row_logits
from w2v_jax.train import (
    Batch,
    Metrics,
    TrainState,
    draw_shared_noise,
    masked_sigmoid_bce,
    mean_over_examples,
    noise_cdf,
    shared_noise_bce,
)

FINAL_LR_FRACTION = 1e-4


def linear_decay(lr: float, total_steps: int) -> Callable[[jax.Array], jax.Array]:
    """Step -> learning rate, from ``lr`` down to ``lr * FINAL_LR_FRACTION`` at ``total_steps``."""

    def rate(step: jax.Array) -> jax.Array:
        left = 1.0 - step.astype(jnp.float32) / max(total_steps, 1)
        return lr * jnp.maximum(left, FINAL_LR_FRACTION)

    return rate


def rows_loss(rows: tuple[jax.Array, ...], batch: Batch,
              num_noise: int) -> tuple[jax.Array, Metrics]:
    """The batch's loss as a function of its gathered rows: center rows [batch, embed],
    context rows [batch, length, embed] and, with shared noise, noise rows
    [groups, shared, embed]."""
    centers, contexts, *noise = rows
    pred = row_logits(centers[:, None], contexts)[:, 0]
    if not noise:  # the book's rows: contexts and their noise words, labelled
        per_example = masked_sigmoid_bce(pred, batch["labels"], batch["mask"])
    else:
        noise_pred = group_logits(centers, noise[0])
        per_example = shared_noise_bce(pred, noise_pred, batch["mask"].astype(jnp.float32),
                                       num_noise)
    return mean_over_examples(per_example, batch["mask"])


def make_sparse_sgd_step(lr: float, total_steps: int, num_noise: int, seed: int,
                         noise_probs: np.ndarray | None = None,
                         shared_noise: int = 0, loss_fn: Callable = rows_loss,
                         noise_groups: int = 1) -> Callable:
    """A train step applying SGD to the touched rows only. With ``noise_probs``, each step
    draws ``shared_noise`` noise words for each of ``noise_groups`` groups of centers on the
    device (noise_sharing="per_batch").
    ``loss_fn(rows, batch, num_noise)`` is ``rows_loss`` or packed.rows_loss."""
    rate = linear_decay(lr, total_steps)
    cdf = None if noise_probs is None else jnp.asarray(noise_cdf(noise_probs))

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        center_table = state.params["center_embed"]["embedding"]
        context_table = state.params["context_embed"]["embedding"]
        centers, ids = batch["centers"][:, 0], batch["contexts_negatives"]
        rows = [lookup(center_table, centers), lookup(context_table, ids)]
        if cdf is not None:
            noise = draw_shared_noise(cdf, (noise_groups, shared_noise), jax.random.fold_in(
                jax.random.key(seed), state.step))
            rows.append(lookup(context_table, noise))
            ids = jnp.concatenate([ids.ravel(), noise.ravel()])
        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            tuple(rows), batch, num_noise)
        step_size = -rate(state.step)
        context_grads = jnp.concatenate([g.reshape(-1, g.shape[-1]) for g in grads[1:]])
        params = {"center_embed": {"embedding": center_table.at[centers].add(
                      step_size * grads[0], **_IN_RANGE)},
                  "context_embed": {"embedding": context_table.at[ids.ravel()].add(
                      step_size * context_grads, **_IN_RANGE)}}
        return state.replace(step=state.step + 1, params=params), metrics

    return step


# Vocabulary ids are always in range, as model.lookup promises for the gathers.
_IN_RANGE = {"mode": "promise_in_bounds"}
