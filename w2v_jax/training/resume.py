"""A run's checkpoints in ``workdir/checkpoints``: saving the state with the run's record, and
resuming from the newest complete one after checking that it continues this run.

The checkpoint's ``config`` item holds the run's config (``{"runs": [...]}`` for runs trained
together) and the corpus config; ``progress`` holds the run's record (``history.History``) and,
under "layout", the program's pair layout (``batches.PairLayout``).
The global step is the step of the checkpoint: with the seed, it is the run's whole position
and random state (``data.blocks.RunPlan``)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from w2v_jax import compat, parallel
from w2v_jax.config import Config
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data.vocab import Vocab
from w2v_jax.feed.batches import PairLayout, saved_layout
from w2v_jax.training import checkpoint
from w2v_jax.training.checkpoint import CheckpointError
from w2v_jax.training.history import History
from w2v_jax.training.step import TrainState

logger = logging.getLogger("w2v_jax")


class RunCheckpoints:
    """Checkpoints of one run, or of runs trained together (``stacked``: a state with a run
    axis, even of one run); ``restart`` deletes them first."""

    def __init__(
        self,
        workdir: Path,
        configs: list[Config],
        corpus: CorpusConfig,
        vocab: Vocab,
        restart: bool = False,
        stacked: bool = False,
    ) -> None:
        self.configs, self.corpus, self.vocab, self.stacked = configs, corpus, vocab, stacked
        self.directory = Path(workdir).absolute() / "checkpoints"
        self.damaged = self.directory.parent / "damaged"
        try:
            if restart and self.directory.exists() and parallel.is_main_process():
                shutil.rmtree(self.directory)
            parallel.barrier("restart")  # no process opens what process 0 is deleting
            self.manager = checkpoint.open_manager(self.directory, configs[0].execution.max_to_keep)
        except OSError as err:
            raise CheckpointError(
                f"cannot write checkpoints into {self.directory} ({err.strerror or err}): "
                f"choose a workdir you can write to"
            ) from err
        self.seconds = 0.0

    @staticmethod
    def bytes_of(state: TrainState) -> int:
        """What a checkpoint of ``state`` takes at most: its tables and optimiser state."""
        return sum(leaf.nbytes for leaf in jax.tree.leaves((state.params, state.opt_state)))

    def say_resumed(self, step: int, total_steps: int) -> None:
        if not parallel.is_main_process():
            return
        workdir = self.directory.parent
        if step >= total_steps:
            logger.info(f"already trained: the checkpoint at step {step} in {workdir} ends the run")
        else:
            logger.info(f"resumed from the checkpoint at step {step} in {workdir}")

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state: TrainState, history: History, layout: PairLayout) -> None:
        """Start writing a checkpoint of ``state``; a failed write (this one's, or the one
        before it, which finished behind) is a CheckpointError in one line."""
        start = time.perf_counter()
        runs = [config.to_dict() for config in self.configs]
        config = {"runs": runs} if self.stacked else runs[0]
        try:
            checkpoint.save(
                self.manager,
                int(state.step),
                state.params,
                state.opt_state,
                {**history.to_dict(), "layout": layout.to_dict()},
                {**config, "corpus": self.corpus.to_dict()},
                json.loads(self.vocab.to_json()),
            )
        except Exception as err:  # from Orbax's writer threads: any failure, said in one line
            raise self._failed(err) from None
        self.seconds += time.perf_counter() - start  # the blocking part; writing goes on behind

    def restore(
        self, state: TrainState, total_steps: int
    ) -> tuple[TrainState, History, PairLayout | None]:
        """The newest complete checkpoint into ``state``'s shapes and shardings, for a run of
        ``total_steps``, with its record and the pair layout it was saved with."""
        targets = {
            "params": _abstract(state.params),
            "progress": None,
            "config": None,
            "vocab": None,
        }
        if jax.tree.leaves(state.opt_state):  # a stateless optimiser saves none
            targets["opt_state"] = _abstract(state.opt_state)

        def check(saved: dict) -> None:
            self._check_compatible(saved, total_steps)

        step, restored = checkpoint.restore_latest(
            self.manager, targets, check=check, set_aside=self.damaged
        )
        # Orbax gives the optimiser state back as nested dicts; the live state's structure
        # (optax's named tuples) is put back around its leaves.
        opt_state = jax.tree.unflatten(
            jax.tree.structure(state.opt_state), jax.tree.leaves(restored.get("opt_state", ()))
        )
        state = state._replace(
            step=parallel.put(np.int32(step), state.step.sharding),
            params=restored["params"],
            opt_state=opt_state,
        )
        progress = compat.progress_now(restored["progress"])
        return state, History.from_dict(progress), saved_layout(progress)

    def _check_compatible(self, saved: dict, total_steps: int) -> None:
        def refuse(why: str) -> None:
            raise CheckpointError(
                f"the checkpoints in {self.directory} {why}: start over with restart=True "
                f"or use another workdir."
            )

        def refuse_config(name: str, saved_value: Any, value: Any) -> None:
            raise CheckpointError(
                f"the checkpoints in {self.directory} were made with {name}={saved_value!r}, "
                f"this run has {name}={value!r}: resuming would not continue that run. Start "
                f"over with restart=True or use another workdir."
            )

        saved_config = dict(saved["config"])
        saved_corpus = saved_config.pop("corpus", None)
        saved_configs = saved_config.get("runs", [saved_config])
        if len(saved_configs) != len(self.configs):
            refuse(
                f"hold {len(saved_configs)} runs trained together, this call trains "
                f"{len(self.configs)}"
            )
        for saved_run, config in zip(saved_configs, self.configs):
            # Read as a config: a setting added since it was saved takes its default, one
            # saved under an earlier name is read at its path.
            try:
                saved_as = Config.from_dict(saved_run)
            except ValueError as err:
                refuse(f"were made with settings this version does not train ({err})")
            for path in config.resume_paths():
                if saved_as.get(path) != config.get(path):
                    refuse_config(path, saved_as.get(path), config.get(path))
        if tuple(saved["vocab"]["tokens"]) != self.vocab.tokens:
            difference = _vocab_difference(saved["vocab"], self.vocab)
            refuse(f"were made with another vocabulary ({difference})")
        # Read as a config: a field added since it was saved takes its default.
        if CorpusConfig.from_dict(saved_corpus) != self.corpus:
            refuse(
                f"were made on another corpus or read it otherwise ({saved_corpus}; this run "
                f"reads {self.corpus.to_dict()})"
            )
        progress = saved["progress"]
        step = progress["curve"][-1][0] if progress["curve"] else 0
        if step > total_steps:
            epochs = len(progress["epochs"][0])
            into = step - (progress["epochs"][0][-1]["step"] if epochs else 0)
            held = f"{epochs} epochs" + (f" and {into} steps of epoch {epochs + 1}" if into else "")
            begun = epochs + (1 if into else 0)
            num_epochs = self.configs[0].num_epochs
            raise CheckpointError(
                f"the checkpoints in {self.directory} hold {held}, more than this run's "
                f"num_epochs={num_epochs}: ask for num_epochs={begun} or more to use them, "
                f"restart=True to train {num_epochs} from scratch, or use another workdir."
            )

    def close(self) -> None:
        """Wait for the writes still under way."""
        try:
            self.manager.wait_until_finished()
        except Exception as err:
            raise self._failed(err) from None
        finally:
            self.manager.close()

    def _failed(self, err: Exception) -> CheckpointError:
        """A checkpoint write failed (a full disk, most often): what it left is removed, the
        steps written before are kept."""
        try:  # the writes before it, which may still be under way
            self.manager.wait_until_finished()
        except Exception:
            pass
        for partial in self.directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(partial, ignore_errors=True)
        self.manager.reload()
        kept = self.manager.latest_step()
        return CheckpointError(
            f"cannot write a checkpoint into {self.directory} ({checkpoint.one_line(err)}); "
            + (f"the newest good one, step {kept}, is kept" if kept is not None else "none kept")
            + ": free some space and run the same command to resume"
        )


def _vocab_difference(saved: dict, vocab: Vocab) -> str:
    """What differs between a checkpoint's vocabulary and this run's, in a few words."""
    before, now = saved["tokens"], vocab.tokens
    had, has = set(before), set(now)
    added = [word for word in now if word not in had]
    removed = [word for word in before if word not in has]

    def some(words: list[str]) -> str:
        shown = ", ".join(words[:3]) + (", ..." if len(words) > 3 else "")
        return f"{len(words):,} word{'s' if len(words) != 1 else ''} ({shown})"

    parts = [f"this corpus adds {some(added)}"] if added else []
    parts += [f"lacks {some(removed)}"] if removed else []
    if not parts:
        return f"the same {len(now):,} words with other counts, so ranked otherwise"
    return ", ".join(parts)


def _abstract(tree: Any) -> Any:
    """Shapes, dtypes and shardings: Orbax restores each array where this run keeps it."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)
