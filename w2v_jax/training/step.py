"""The one train step, made from an objective and an optimiser: gather the batch's rows, the
objective's loss's gradient with respect to those rows, and the touched rows' gradients handed
to the optimiser.

Every configuration runs this step: any objective of ``w2v_jax.objectives``, the book's padded
or packed pairs, noise words shared by groups of centers (drawn here, on the device), any
optimiser of ``w2v_jax.training.optim``, and several runs trained together (tables
[vocab, runs, embed],
``state_initializer``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from w2v_jax import objectives, parallel
from w2v_jax.data.noise import AliasTable, sample_on_device
from w2v_jax.training import optim

if TYPE_CHECKING:
    from w2v_jax.config import Config


PARTS = ("draws", "pairs", "rows", "loss", "touched", "optimizer")
"""The parts of a step, each a named scope of its operations, so that a profile groups its time
by them (benchmarks/step_profile.py): the device's draws (a step's rows, the shared noise
words), the batch's pairs gathered by the pair layout (``loop``), the objective's rows gathered
from the tables, the logits and the loss (its gradients are this scope transposed), the
gradients laid out as the touched rows, and the optimiser's row updates."""


class TrainState(NamedTuple):
    """The step count, the objective's tables (its NNX module's state, ``objectives.tables_of``)
    and the optimiser's state."""

    step: jax.Array
    params: optim.Params
    opt_state: Any


def state_initializer(
    config: Config,
    vocab_size: int,
    key: jax.Array,
    optimizer: optim.Optimizer,
    num_runs: int | None = None,
    placement: parallel.Placement | None = None,
) -> Callable[[], TrainState]:
    """The jitted program that creates the objective's module, with fresh tables
    (Xavier-uniform) for a vocabulary of ``vocab_size``, and the optimiser's initial state:
    ``state_initializer(...)()`` is the state, and its memory can be read before it runs
    (``.lower().compile().memory_analysis()``).

    With ``num_runs``, the state of that many runs trained together: each table [vocab, runs,
    embed], every run starting from the same tables. The run axis sits beside the embedding
    axis, so one gather or scatter of a row serves every run. With a ``placement``, the state
    is created where it lives (``Placement.state_shardings``): each device computes only its
    share of the tables, which have zero rows after the vocabulary up to
    ``placement.rows(vocab_size)``. The random tables are the same on every mesh (JAX's
    partitionable threefry draws each element from its index)."""
    placement = placement or parallel.Placement.single()
    rows = placement.rows(vocab_size)

    def init(key):
        params = objectives.tables_of(objectives.create(config, vocab_size, key, num_runs))
        params = jax.tree.map(lambda table: parallel.pad_rows(table, rows), params)
        return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))

    shardings = placement.state_shardings(jax.eval_shape(init, key), rows)
    # One compiled init instead of Flax's op-by-op one: about 0.4 s less at start-up. The key
    # is a constant of the program, so no process passes its own array into it.
    return jax.jit(lambda: init(key), out_shardings=shardings)


def make_train_step(
    config: Config, optimizer: optim.Optimizer, noise_table: AliasTable | None = None
) -> Callable:
    """``step(state, pairs) -> (state, metrics)`` of ``config``'s objective, pure, to be
    jitted by its caller.

    With ``noise_table`` (noise_sharing="per_batch"), each step draws ``config.noise.shared``
    noise words for each of ``config.noise.groups`` groups of centers (``data.noise``, the
    device's sampler) from a key folded with the step number, so a resumed run draws the same
    ones.
    """
    shape = (config.noise.groups, config.noise.shared)

    def step(state: TrainState, pairs: objectives.Pairs) -> tuple[TrainState, objectives.Metrics]:
        noise = None
        if noise_table is not None:
            with jax.named_scope("draws"):
                key = jax.random.fold_in(jax.random.key(config.seed), state.step)
                accept, alias = (jnp.asarray(array) for array in noise_table)
                noise = sample_on_device(key, accept, alias, shape)
        # The module over this state's tables, made while the step is traced, not per dispatch.
        objective = objectives.bind(config, state.params)
        with jax.named_scope("rows"):
            rows = objective.rows(pairs, noise)

        def loss(rows):
            with jax.named_scope("loss"):
                return objective.loss(rows, pairs)

        (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(rows)
        with jax.named_scope("touched"):
            touched = objective.touched(pairs, noise, grads)
        with jax.named_scope("optimizer"):
            params, opt_state = optimizer.update(state.params, state.opt_state, touched, state.step)
        return TrainState(state.step + 1, params, opt_state), metrics

    return step
