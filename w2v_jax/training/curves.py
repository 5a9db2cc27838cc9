"""A run's curves as TensorBoard event files: every dispatch's loss, centers a second and
learning rate, each epoch's mean loss and scores (when it is scored each epoch), the final
scores, and the run's settings as hparams, so that ``tensorboard --logdir`` over several runs
(a sweep's points) lays them on one chart and tables them by setting.

Written with tensorboardX (protobuf only, no TensorFlow), by process 0 alone. A resumed run
carries on its curves: the points a crashed process wrote past the checkpoint it resumes from
are purged (TensorBoard's ``purge_step``), so no step is shown twice."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from w2v_jax.config import Config
from w2v_jax.training import optim
from w2v_jax.training.hooks import Hook, Moment
from w2v_jax.training.loop import Program

DIRECTORY = "tensorboard"
"""A run's event files, under its workdir."""

SCORE_TAG = "scores/"
"""The scores' tags: ``scores/wordsim353_spearman`` and so on (``measures.QUALITY``)."""


def settings(config: Config) -> dict[str, Any]:
    """``config``'s settings by path, as hparams take them (numbers, strings, booleans;
    unset ones left out)."""
    values = {path: config.get(path) for path in Config.paths()}
    return {
        path: value if isinstance(value, bool | int | float | str) else str(value)
        for path, value in values.items()
        if value is not None
    }


def run_names(configs: Sequence[Config]) -> list[str]:
    """Names for runs trained together, by the settings in which they differ
    (``optimizer.lr=0.002``), else by their place (``run0``)."""
    differing = [p for p in Config.paths() if len({str(c.get(p)) for c in configs}) > 1]
    names = [",".join(f"{p}={c.get(p)}" for p in differing) for c in configs]
    if len(set(names)) < len(names) or not all(names):
        return [f"run{i}" for i in range(len(configs))]
    return names


class Curves:
    """The event files of the runs of one program, one directory each (``directories``), opened
    at the first dispatch: a run already finished writes none. Made on process 0 alone
    (``run.train``)."""

    def __init__(
        self,
        directories: Sequence[Path],
        configs: Sequence[Config],
        total_steps: int,
        score_names: Sequence[str] = (),
    ):
        self.directories = [Path(d) for d in directories]
        self.configs = list(configs)
        self.score_names = tuple(score_names)
        """The scores written (``scores/NAME``) and shown in the hparams table beside each
        run's settings."""
        self._factor = optim.schedule(configs[0], total_steps)
        self._writers: list | None = None
        self._written: list[set[tuple[int, str]]] = [set() for _ in self.directories]
        """Per run, (step, score) of the scores written."""

    def hook(self) -> Hook:
        """Every dispatch: its curves; at an epoch's end, the epoch's too."""
        return Hook(self.record)

    def record(self, moment: Moment) -> None:
        dispatch = moment.dispatch
        if self._writers is None:
            self._open(dispatch.first_step)
        step = dispatch.global_step
        losses = np.broadcast_to(dispatch.mean_loss, (len(self._writers),))
        centers = float(np.max(dispatch.num_examples)) / dispatch.seconds
        factor = 1.0
        if self._factor is not None:  # on the host's CPU: no accelerator work per dispatch
            with jax.default_device(jax.devices("cpu")[0]):
                factor = float(self._factor(jnp.asarray(step - 1)))
        for writer, config, loss in zip(self._writers, self.configs, losses):
            if math.isfinite(loss):
                writer.add_scalar("loss/dispatch", float(loss), step)
            writer.add_scalar("speed/centers_per_second", centers, step)
            writer.add_scalar("optimizer/lr", config.optimizer.lr * factor, step)
        if moment.epoch_end:
            for run, (writer, run_epochs) in enumerate(zip(self._writers, moment.history.epochs)):
                stats = run_epochs[-1]
                if math.isfinite(stats.loss):
                    writer.add_scalar("loss/epoch", stats.loss, step)
                writer.add_scalar("speed/epoch_centers_per_second", stats.centers_per_second, step)
                if stats.scores is not None:
                    self._scores(run, step, stats.scores)

    def final_scores(self, scores: Sequence[dict[str, float | None]], step: int) -> None:
        """Each run's scores at the end (at ``step``) but those its last epoch's scoring wrote
        there already; nothing when this call trained nothing."""
        if self._writers is None:
            return
        for run, run_scores in enumerate(scores):
            self._scores(run, step, run_scores)

    def close(self, finished: bool) -> None:
        """Flush and close; a ``finished`` run's hparams session is marked ended."""
        if self._writers is None:
            return
        from tensorboardX.summary import hparams

        for writer, config in zip(self._writers, self.configs):
            if finished:
                writer.file_writer.add_summary(hparams(settings(config), {})[2])
            writer.close()
        self._writers = None

    def _open(self, first_step: int) -> None:
        """A fresh run's directories are emptied of older event files (those of a run whose
        checkpoints are gone) and given its hparams; a resumed run's purge what was written
        past ``first_step``."""
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams

        self._writers = []
        for directory, config in zip(self.directories, self.configs):
            if first_step == 0:
                for stale in directory.glob("events.out.tfevents.*"):
                    stale.unlink()
            # The file's name holds the second it was made; the nanoseconds after it keep a
            # run resumed within that second from overwriting it and sort the files by age.
            writer = SummaryWriter(
                str(directory),
                purge_step=first_step + 1 if first_step else None,
                flush_secs=30,
                filename_suffix=f".{time.time_ns()}",
            )
            if first_step == 0:
                shown = ["loss/epoch", *(f"{SCORE_TAG}{name}" for name in self.score_names)]
                experiment, session_start, _ = hparams(settings(config), dict.fromkeys(shown))
                writer.file_writer.add_summary(experiment)
                writer.file_writer.add_summary(session_start)
            self._writers.append(writer)

    def _scores(self, run: int, step: int, scores: dict[str, float | None]) -> None:
        """Run ``run``'s scores at ``step``, each once."""
        for name in self.score_names:
            value = scores.get(name)
            if value is None or not math.isfinite(value) or (step, name) in self._written[run]:
                continue
            self._writers[run].add_scalar(f"{SCORE_TAG}{name}", float(value), step)
            self._written[run].add((step, name))


def for_program(
    tensorboard: bool | Sequence[str | os.PathLike],
    workdir: Path | None,
    program: Program,
    total_steps: int,
    score_names: Sequence[str],
) -> Curves | None:
    """Where the curves of ``program``'s runs go (``run.train``'s ``tensorboard``): True,
    ``workdir/tensorboard`` (runs trained together: a directory each under it, by
    ``run_names``; no workdir: nowhere), the given directories (one a run), or nowhere (False)."""
    if tensorboard is False or (tensorboard is True and workdir is None):
        return None
    if tensorboard is True:
        directory = workdir / DIRECTORY
        names = run_names(program.configs)
        directories = [directory] if program.num_runs is None else [directory / n for n in names]
    else:
        directories = [Path(d) for d in tensorboard]
        if len(directories) != len(program.configs):
            raise ValueError(
                f"tensorboard= names {len(directories)} directories for "
                f"{len(program.configs)} runs: give one a run"
            )
    return Curves(directories, program.configs, total_steps, score_names)
