"""The host loop: a run resumed from its newest checkpoint (if any), then every group of it
from the state's step on, a dispatch at a time; a dispatch ends where its group does, or where a
hook is due, and the hooks due run after it (``hooks.Hook``)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from w2v_jax.feed.group import counted
from w2v_jax.training import hooks as hooks_module
from w2v_jax.training.history import History
from w2v_jax.training.hooks import Hook, Moment
from w2v_jax.training.loop import Program
from w2v_jax.training.step import TrainState

if TYPE_CHECKING:
    from w2v_jax import feed
    from w2v_jax.training.resume import RunCheckpoints


def resume_and_train(
    program: Program,
    stream: feed.Stream,
    state: TrainState,
    history: History,
    saver: RunCheckpoints | None,
    hooks: Callable[[], list[Hook]],
    deferring: contextlib.AbstractContextManager,
) -> tuple[TrainState, History, int | None]:
    """Resume from the newest checkpoint (if any) and train to the end of the run; the
    checkpoint writes under way finish, whatever stopped training."""
    resumed_from = None
    try:
        if saver is not None and saver.latest_step() is not None:
            state, history, layout = saver.restore(state, stream.plan.total_steps)
            program.resume(layout)
            resumed_from = int(state.step)
            saver.say_resumed(resumed_from, stream.plan.total_steps)
        state = _loop(program, stream, state, history, hooks(), deferring)
    finally:
        if saver is not None:
            saver.close()
    return state, history, resumed_from


def _loop(
    program: Program,
    stream: feed.Stream,
    state: TrainState,
    history: History,
    hooks: Sequence[Hook],
    deferring: contextlib.AbstractContextManager,
) -> TrainState:
    """The host loop: every group of the run from the state's step on, a dispatch at a time;
    a dispatch ends where the group does, or where a hook is due. A stop request waits for
    the end of a dispatch (``deferring``) once the program is compiled."""
    plan, step = stream.plan, int(state.step)
    compiling = step < plan.total_steps  # a finished run resumed for its results does not
    if compiling:
        program.compile_seconds += hooks_module.interruptibly(stream.compile)
    # The first group is drawn while the program compiles.
    groups = counted(stream.groups(step), step, program.placement)
    if compiling:
        groups = _sized(program, stream, groups)
        hooks_module.interruptibly(lambda: program.compile(state, stream.device_shapes()))
    history.begin_epoch(stream.wait_seconds)
    with deferring:
        for group, pairs, most_live in groups:
            program.fit(most_live, headroom=not stream.exact)
            history.add_group(group.centers_from(step), pairs)
            epoch_end = plan.epoch_start(group.epoch + 1)
            while step < group.end_step:
                num_steps = min(program.config.execution.steps_per_dispatch, group.end_step - step)
                for hook in hooks:
                    if hook.every:
                        num_steps = min(num_steps, hook.every - step % hook.every)
                done = step - group.first_step
                state, dispatch = program(
                    state, group.examples, group.order[done : done + num_steps]
                )
                step += num_steps
                history.add(dispatch, group.epoch)
                stats = None
                if step == epoch_end:
                    stats = history.end_epoch(group.epoch, step, stream.wait_seconds)
                moment = Moment(
                    step, group.epoch, stats is not None, dispatch, state, history, stats
                )
                for hook in hooks:
                    if hook.due(moment):
                        hook.action(moment)
    return state


def _sized(program: Program, stream: feed.Stream, groups: Iterator) -> Iterator:
    """Packed batches: the program sized before it compiles, for every batch of a group kept
    and drawn once (``stream.exact``), else with headroom, for the batches known (a kept
    group's first draws) or the first group's, so that later groups seldom compile a larger
    one. A group read here is put back in front of ``groups``."""
    if not program.layout.packed:
        return groups
    most_live = stream.most_live()
    if most_live is None:
        first = next(groups, None)
        if first is None:
            return iter(())
        groups, most_live = itertools.chain([first], groups), first[2]
    program.fit(most_live, headroom=not stream.exact)
    return groups
