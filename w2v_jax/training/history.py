"""What a run records as it trains: each run's epoch statistics and divergence, the loss of every
dispatch. Saved with every checkpoint (beside the program's pair layout), so a resumed run
carries on its record."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from w2v_jax.training.loop import Dispatch


@dataclasses.dataclass(frozen=True)
class EpochStats:
    """An epoch's loss and throughput: its own counts over its own wall time (after a resume,
    the part of the epoch this process trained)."""

    epoch: int
    """Counted from 0, as the run's plan counts them (messages say ``epoch + 1``)."""
    loss: float
    seconds: float
    centers: int
    pairs: int
    step: int = 0
    """The global step at the epoch's end."""
    feed_seconds: float = 0.0
    """Of ``seconds``, the time training waited for examples to be drawn and moved to the
    device (``feed.Stream.wait_seconds``)."""
    scores: dict[str, float | None] | None = None
    """The benchmark scores of the vectors at the epoch's end, by measure (``wordsim353_spearman``
    and so on; None: left unscored); None where the epoch was not scored
    (``report.Evaluation.each_epoch``)."""
    scoring_seconds: float = 0.0
    """The time scoring took at the epoch's end (not part of ``seconds`` or of the next
    epoch's)."""

    @property
    def centers_per_second(self) -> float:
        return self.centers / self.seconds

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "centers_per_second": self.centers_per_second,
            "pairs_per_second": self.pairs_per_second,
        }


@dataclasses.dataclass
class History:
    """The record of ``num_runs`` runs trained in one program (one, alone)."""

    epochs: list[list[EpochStats]]
    """Per run, its finished epochs."""
    diverged: list[str | None]
    """Per run, where its loss stopped being finite (None: it did not)."""
    curve: list[list] = dataclasses.field(default_factory=list)
    """[global step, mean loss of the dispatch that ended there] for every dispatch: a float,
    or [runs]."""
    loss_sum: Any = 0.0
    """Of the epoch under way: the loss summed over its real rows, and those rows."""
    num_examples: Any = 0.0
    _epoch_began: float = dataclasses.field(default_factory=time.perf_counter)
    _centers: int = 0
    _pairs: int = 0
    _waited: float = 0.0

    @classmethod
    def empty(cls, num_runs: int) -> History:
        return cls([[] for _ in range(num_runs)], [None] * num_runs)

    @property
    def num_runs(self) -> int:
        return len(self.epochs)

    def add_group(self, centers: int, pairs: int) -> None:
        """Count the examples of a group about to train."""
        self._centers += centers
        self._pairs += pairs

    def add(self, dispatch: Dispatch, epoch: int) -> None:
        """Record a dispatch of ``epoch``; raise FloatingPointError when every run's
        loss has stopped being finite."""
        self.loss_sum = self.loss_sum + dispatch.loss_sum
        self.num_examples = self.num_examples + dispatch.num_examples
        self.curve.append([dispatch.global_step, np.asarray(dispatch.mean_loss).tolist()])
        per_run = dispatch.losses.reshape(dispatch.steps, -1)
        for run in range(per_run.shape[1]):
            bad = np.flatnonzero(~np.isfinite(per_run[:, run]))
            if bad.size and self.diverged[run] is None:
                self.diverged[run] = (
                    f"non-finite loss {per_run[bad[0], run]} in epoch {epoch + 1} "
                    f"at step {dispatch.first_step + int(bad[0]) + 1}"
                )
        if all(self.diverged):
            raise FloatingPointError(
                f"{self.diverged[0]}: lower the learning rate or check the data"
            )

    def end_epoch(self, epoch: int, step: int, wait_seconds: float) -> list[EpochStats]:
        """Close ``epoch`` at the global ``step``; ``wait_seconds`` is the stream's
        total so far. Returns each run's statistics."""
        seconds = time.perf_counter() - self._epoch_began
        losses = np.broadcast_to(self.mean_loss, (self.num_runs,))
        stats = [
            EpochStats(
                epoch,
                float(loss),
                seconds,
                self._centers,
                self._pairs,
                step,
                wait_seconds - self._waited,
            )
            for loss in losses
        ]
        for run_epochs, run_stats in zip(self.epochs, stats, strict=True):
            run_epochs.append(run_stats)
        self.loss_sum = self.num_examples = 0.0
        self.begin_epoch(wait_seconds)
        return stats

    def begin_epoch(self, wait_seconds: float) -> None:
        """Start timing an epoch and counting its examples here (after a resume: the rest of
        one, whose loss so far the checkpoint carried)."""
        self._epoch_began, self._waited = time.perf_counter(), wait_seconds
        self._centers = self._pairs = 0

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` just spent on other work (scoring the vectors) out of the epoch
        under way's time."""
        self._epoch_began += seconds

    @property
    def mean_loss(self) -> Any:
        """Of the epoch under way."""
        return np.asarray(self.loss_sum) / np.maximum(self.num_examples, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """As JSON holds it."""
        return {
            "epochs": [[stats.to_dict() for stats in run] for run in self.epochs],
            "diverged": self.diverged,
            "curve": self.curve,
            "loss_sum": np.asarray(self.loss_sum).tolist(),
            "num_examples": np.asarray(self.num_examples).tolist(),
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> History:
        fields = {field.name for field in dataclasses.fields(EpochStats)}
        epochs = [
            [EpochStats(**{k: v for k, v in stats.items() if k in fields}) for stats in run]
            for run in saved["epochs"]
        ]
        history = cls(epochs, saved["diverged"], saved["curve"])
        history.loss_sum = np.asarray(saved["loss_sum"], np.float64)
        history.num_examples = np.asarray(saved["num_examples"], np.float64)
        return history
