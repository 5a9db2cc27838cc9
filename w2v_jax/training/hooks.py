"""The host loop's periodic actions: a ``Hook`` is due after every dispatch, every so many
steps (dispatches end on them) and/or at each epoch's end, decided by one rule (``itstime``).
The built-in ones, in order: the progress bar, the epoch line, checkpoints, stopping on
request; a caller's own run after them."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from w2v_jax import parallel
from w2v_jax.training import records
from w2v_jax.training.history import EpochStats, History
from w2v_jax.training.loop import Dispatch, Program
from w2v_jax.training.step import TrainState

if TYPE_CHECKING:
    from w2v_jax.feed import Stream
    from w2v_jax.training.resume import RunCheckpoints

logger = logging.getLogger("w2v_jax")


class TrainingInterrupted(Exception):
    """Training stopped on request (``should_stop``) after a dispatch; with a workdir, a
    checkpoint of that point was written first, so the same call resumes from it."""

    def __init__(self, epoch: int, step: int, saved: bool) -> None:
        super().__init__(
            f"interrupted at epoch {epoch + 1}, step {step}"
            + ("" if saved else " (no workdir: nothing was saved)")
        )
        self.epoch, self.step, self.saved = epoch, step, saved


@dataclasses.dataclass(frozen=True)
class Moment:
    """Where a run stands when a hook is called."""

    step: int
    epoch: int
    """The epoch of the dispatch that just ran, counted from 0 (as everywhere in the code and
    the records; messages say ``epoch + 1``)."""
    epoch_end: bool
    dispatch: Dispatch
    state: TrainState
    history: History
    stats: list[EpochStats] | None = None
    """Each run's statistics of the epoch just finished (at an epoch's end)."""


@dataclasses.dataclass(frozen=True)
class Hook:
    """An action of the host loop: after every dispatch (``every`` None), on the steps that are
    multiples of ``every`` (dispatches end there), and/or at each epoch's end."""

    action: Callable[[Moment], None]
    every: int | None = None
    at_epoch_end: bool = False

    def due(self, moment: Moment) -> bool:
        return (
            (self.every is None and not self.at_epoch_end)
            or itstime(moment.step, self.every)
            or (self.at_epoch_end and moment.epoch_end)
        )


NOT_LEARNING_STEPS = 50
"""An epoch 1 of at least this many steps whose mean loss is still near ln 2 (or above) is
said not to have learnt: the rate does not suit the optimiser (too small to move, or so large
that the steps overshoot)."""


def not_learning(loss: float) -> bool:
    """Whether an epoch's mean loss is still about ln 2 or above: the vectors learnt nothing."""
    return not loss < 0.98 * math.log(2)


def itstime(step: int, every: int | None) -> bool:
    """Whether an action due every ``every`` steps (0 or None: never by step) is due now."""
    return bool(every) and step % every == 0


def say(message: str) -> None:
    """A note of the run, said by one process."""
    if parallel.is_main_process():
        logger.info(message)


def warn(message: str) -> None:
    """A warning of the run, said by one process."""
    if parallel.is_main_process():
        logger.warning(message)


def built_in(
    program: Program,
    stream: Stream,
    saver: RunCheckpoints | None,
    progress: bool,
    should_stop: Callable[[], bool] | None,
    before_saving: Sequence[Hook] = (),
) -> list[Hook]:
    """The progress bar, the epoch line, ``before_saving`` (what the checkpoints' record is to
    hold: each epoch's scores, the curves), checkpoints and stopping on request, in that
    order."""
    config, total = program.config, stream.plan.total_steps
    bar: tqdm | None = None  # drawn at the first dispatch: a finished run called again has none

    def show(moment: Moment) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="step", disable=not progress, leave=False)
        bar.n = moment.step
        losses = np.atleast_1d(moment.dispatch.mean_loss)
        loss = (
            f"{losses[0]:.3f}"
            if len(losses) == 1
            else (f"{np.nanmin(losses):.3f}..{np.nanmax(losses):.3f} over {len(losses)} runs")
        )
        centers = float(np.max(moment.dispatch.num_examples)) / moment.dispatch.seconds
        bar.set_description(f"epoch {moment.epoch + 1}/{config.num_epochs}", refresh=False)
        bar.set_postfix_str(f"loss {loss}, {centers:,.0f} centers/s")
        if moment.step == total:
            bar.close()

    device = records.device_description()

    def epoch_line(moment: Moment) -> None:
        stats = moment.stats[0]
        if len(moment.stats) == 1:
            say(
                f"epoch {stats.epoch + 1}/{config.num_epochs}: loss {stats.loss:.3f}, "
                f"{stats.centers_per_second:,.0f} centers/s, "
                f"{stats.pairs_per_second:,.0f} pairs/s on {device}"
            )
            if stats.epoch == 0 and stats.step >= NOT_LEARNING_STEPS and not_learning(stats.loss):
                warn(
                    f"the loss has not fallen in epoch 1 ({stats.loss:.3f}; untrained vectors "
                    f"score ln 2 = {math.log(2):.3f}): "
                    f"optimizer.lr={program.config.optimizer.lr:g} does not suit "
                    f"optimizer.name={config.optimizer.name} here; try another rate, or leave "
                    f"optimizer.lr out for the optimiser's own"
                )

    def save(moment: Moment) -> None:
        saver.save(moment.state, moment.history, program.layout)

    def stop(moment: Moment) -> None:
        if moment.step < total and parallel.any_process(should_stop()):
            if (
                saver is not None
                and not moment.epoch_end
                and not itstime(moment.step, config.execution.checkpoint_every)
            ):
                saver.save(moment.state, moment.history, program.layout)
            if bar is not None:  # so that the message that follows has a line of its own
                bar.close()
            raise TrainingInterrupted(moment.epoch, moment.step, saver is not None)

    hooks = [Hook(show), Hook(epoch_line, at_epoch_end=True), *before_saving]
    if saver is not None:
        hooks.append(Hook(save, every=config.execution.checkpoint_every or None, at_epoch_end=True))
    if should_stop is not None:
        hooks.append(Hook(stop))
    return hooks


def deferring(should_stop: Callable[[], bool] | None) -> contextlib.AbstractContextManager:
    """Where a stop request waits for the end of a dispatch (which saves): the dispatches, if
    ``should_stop`` says so (``experiments.common.StopOnSignals``: elsewhere, a signal
    interrupts at once)."""
    deferring = getattr(should_stop, "deferring", None)
    return deferring() if deferring is not None else contextlib.nullcontext()


def interruptibly(compile_: Callable[[], Any]) -> Any:
    """``compile_()`` in a thread of its own, waited for here: XLA compiles in C++ for
    seconds, during which this thread could not run a signal's handler (Ctrl-C)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = compile_()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=target, name="compile", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
