"""Orbax checkpoints of a run: parameters, optimiser state, progress, config and vocabulary.

Each checkpoint step is a directory of named items, so a reader takes only what it needs (the
evaluator restores ``params`` and ``vocab``, never the optimiser state):

| item        | content                                                          |
| ----------- | ---------------------------------------------------------------- |
| `params`    | the objective's tables, {"center", "context"} (``w2v_jax.tables``) |
| `opt_state` | the optimiser state pytree (absent for a stateless optimiser)    |
| `progress`  | JSON: step, epoch, batch within the epoch, running loss, history |
| `config`    | JSON: the run's config                                           |
| `vocab`     | JSON: tokens and counts                                          |
| `checksums` | JSON: each array's checksum (``array_checksums``)                |

The run's randomness is a pure function of (seed, stream, epoch), so the progress item (seed
in the config, epoch and batch) is its whole random state. Orbax writes each step into a
temporary directory and renames it when complete, so a crash never leaves a half-written step
under a step's name. A step proves itself before its arrays are used: every array read is
checked against the checksum saved with it and for non-finite values, so bytes damaged after
the write are never served as vectors. A step that fails, or cannot be read, is skipped with a
one-line warning, and set aside when training resumes (``restore_latest``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from w2v_jax import compat
from w2v_jax.training.checksums import array_checksums, mismatches

ITEMS = ("params", "opt_state", "progress", "config", "vocab", "checksums")
JSON_ITEMS = ("progress", "config", "vocab", "checksums")
ARRAY_ITEMS = ("params", "opt_state")


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that does not fit the run; the message says which."""


def checkpoint_dir(path: str | os.PathLike) -> Path:
    """The checkpoints directory of ``path``: a workdir (holding ``checkpoints/``) or itself."""
    path = Path(path).absolute()
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def open_manager(
    directory: str | os.PathLike, max_to_keep: int | None = None, read_only: bool = False
) -> ocp.CheckpointManager:
    """A CheckpointManager over ``directory`` keeping the newest ``max_to_keep`` steps."""
    _quiet_orbax()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=not read_only,
        read_only=read_only,
        enable_async_checkpointing=not read_only,
        # A writer holds the workdir's lock: a step's temporary directory is a dead save's.
        cleanup_tmp_directories=not read_only,
    )
    handlers = {
        name: ocp.JsonCheckpointHandler() if name in JSON_ITEMS else ocp.StandardCheckpointHandler()
        for name in ITEMS
    }
    for _ in range(_ROUNDS):
        try:
            return ocp.CheckpointManager(
                Path(directory).absolute(), options=options, item_handlers=handlers
            )
        except FileNotFoundError:  # a step removed (by the run writing it) while listed
            time.sleep(0.05)
    raise CheckpointError(
        f"the checkpoints in {directory} were removed faster than they could be listed: try again"
    )


class _DropRoutineOrbaxNotices(logging.Filter):
    """Orbax logs these at WARNING level on every read-only open and on every save of a
    single-process run, although nothing is wrong; real warnings pass. Its errors (a failed
    write logged, with its traceback, by each thread it passed through) are dropped: each
    reaches this module as an exception, said in one line (``RunCheckpoints``)."""

    ROUTINE = (
        "CheckpointManagerOptions.read_only=True, setting",
        "Given directory is read only",
        "Skipping merge of OCDBT checkpoints",
        "Metadata file does not exist",  # a step removed while it was read: skipped
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and "orbax" in record.pathname:
            return False
        message = str(record.msg)
        return not any(notice in message for notice in self.ROUTINE)


def _quiet_orbax() -> None:
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropRoutineOrbaxNotices) for f in absl_logger.filters):
        absl_logger.addFilter(_DropRoutineOrbaxNotices())


def drop_closed_loop_reports() -> None:
    """For a process's owner (an entry script; the library changes no interpreter-wide hook):
    after a failed read of a damaged step, TensorStore may still complete a future into
    Orbax's event loop, which is closed by then; Python reports that, from a background thread,
    as a traceback of ``RuntimeError: Event loop is closed`` (through ``sys.excepthook`` or
    ``sys.unraisablehook``), or as "Exception ignored in: <coroutine ...>". Or the read's other
    array tasks fail too, and asyncio logs each, when it is collected, as "Task exception was
    never retrieved". The read's failure is reported already (one line), so only those reports
    are dropped; any other goes to the previous hook, or is logged."""
    if not getattr(sys.unraisablehook, "drops_closed_loop_reports", False):
        sys.unraisablehook = _drop_unraisable_reads(sys.unraisablehook)
    if not getattr(sys.excepthook, "drops_closed_loop_reports", False):
        sys.excepthook = _drop_closed_loop_exceptions(sys.excepthook)
    asyncio_logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _DropUnretrievedReads) for f in asyncio_logger.filters):
        asyncio_logger.addFilter(_DropUnretrievedReads())


class _DropUnretrievedReads(logging.Filter):
    """asyncio's report of an Orbax array read or write whose failure nobody awaited (the
    first one failed the restore or the save, and was reported)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)  # "<class of what held it> exception was never retrieved"
        return not (
            " exception was never retrieved" in message
            and ("async_deserialize" in message or "OCDBT database" in message)
        )


def _closed_loop(error: BaseException | None) -> bool:
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


def _drop_unraisable_reads(previous: Callable) -> Callable:
    """An unraisable report of the closed loop, or of an abandoned read's coroutine."""

    def hook(unraisable) -> None:
        abandoned = isinstance(unraisable.object, Coroutine) and "orbax" in repr(
            getattr(unraisable.object, "cr_code", "")
        )
        if not (_closed_loop(unraisable.exc_value) or abandoned):
            previous(unraisable)

    hook.drops_closed_loop_reports = True
    return hook


def _drop_closed_loop_exceptions(previous: Callable) -> Callable:

    def hook(kind, error, traceback) -> None:
        if not _closed_loop(error):
            previous(kind, error, traceback)

    hook.drops_closed_loop_reports = True
    return hook


def save(
    manager: ocp.CheckpointManager,
    step: int,
    params: Any,
    opt_state: Any,
    progress: dict,
    config: dict,
    vocab: dict,
) -> None:
    """Start saving a checkpoint at ``step`` with its arrays' checksums; it completes in the
    background (Orbax copies the arrays to host memory before returning, so the caller may
    donate them right away). A stateless optimiser's state (no arrays) is not saved: Orbax
    refuses an empty item."""
    arrays = {"params": params}
    if jax.tree.leaves(opt_state):
        arrays["opt_state"] = opt_state
    checksums = {name: array_checksums(tree) for name, tree in arrays.items()}
    items = {
        **{name: ocp.args.StandardSave(tree) for name, tree in arrays.items()},
        "progress": ocp.args.JsonSave(progress),
        "config": ocp.args.JsonSave(config),
        "vocab": ocp.args.JsonSave(vocab),
        "checksums": ocp.args.JsonSave(checksums),
    }
    manager.save(step, args=ocp.args.Composite(**items), force=True)


def restore_latest(
    manager: ocp.CheckpointManager,
    targets: dict[str, Any],
    step: int | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
    set_aside: Path | None = None,
) -> tuple[int, dict[str, Any]]:
    """Restore the items named in ``targets`` from ``step``, else from the newest readable step.

    ``targets`` maps an item name to an abstract pytree (shapes, dtypes and shardings to restore
    into) or to None (JSON items, or arrays as saved, read into host memory as numpy). The JSON
    items are read first and handed to ``check``, which may refuse the checkpoint by raising
    CheckpointError before any array is read. Every array read is checked against the
    checksums saved with it, and for non-finite values. A step that cannot be read (missing or
    garbled files, an empty JSON item, damaged or non-finite arrays) is skipped with a one-line
    warning; with ``set_aside``, a directory, it is first moved there, so that a run training
    on from an older step can save over its step number. With no readable step,
    CheckpointError.
    """
    directory = manager.directory
    if step is not None:
        try:
            return step, _read_step(manager, step, targets, check)
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(
                f"checkpoint step {step} in {directory} cannot be read ({one_line(err)})"
            ) from err
    tried: list[int] = []
    vanished: list[int] = []
    for _ in range(_ROUNDS):  # beside a training run, steps vanish and newer ones appear
        steps = [s for s in _listed_steps(manager) if s not in tried]
        for candidate in steps:
            tried.append(candidate)
            try:
                return candidate, _read_step(manager, candidate, targets, check)
            except CheckpointError:
                raise
            except Exception as err:  # any unreadable step is skipped, and said so in one line
                if _vanishing(Path(directory) / str(candidate)):
                    vanished.append(candidate)  # removed by the run writing it: it kept a newer
                    continue
                where = ""
                if set_aside is not None:
                    where = f"; moved to {_move_aside(manager, candidate, set_aside)}"
                warnings.warn(
                    f"checkpoint step {candidate} in {directory} cannot be read "
                    f"({one_line(err)}){where}; trying an older step",
                    stacklevel=2,
                )
        if not steps or not vanished:
            break
    if not tried:
        raise CheckpointError(f"no checkpoint in {directory}")
    if vanished:
        raise CheckpointError(
            f"the checkpoints in {directory} were removed faster than they could be read (the "
            f"run writing them keeps only its newest): try again, or give that run a larger "
            f"max_to_keep"
        )
    raise CheckpointError(
        f"no complete checkpoint in {directory}: every step ({sorted(tried, reverse=True)}) "
        f"is damaged; delete the directory or start over"
    )


_ROUNDS = 5
"""Listings of the steps a reader tries while the run writing them removes the ones it read."""


def _listed_steps(manager: ocp.CheckpointManager) -> list[int]:
    """The steps, newest first, as listed now (a listing that raced a removal is made again)."""
    for _ in range(_ROUNDS):
        try:
            manager.reload()
            return sorted(manager.all_steps(), reverse=True)
        except OSError:  # a step removed while it was listed
            time.sleep(0.05)
    return []


def _vanishing(step_dir: Path) -> bool:
    """Whether a step that failed to read is gone, or going (its removal under way)."""
    if not step_dir.exists():
        return True
    time.sleep(0.1)
    return not step_dir.exists()


def _read_step(
    manager: ocp.CheckpointManager,
    step: int,
    targets: dict[str, Any],
    check: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """The items of one step: JSON first (checked), then arrays (proved by their checksums)."""
    json_names = [name for name in targets if name in JSON_ITEMS]
    array_names = [name for name in targets if name not in JSON_ITEMS]
    restored = dict(_restore(manager, step, {n: targets[n] for n in json_names}))
    _check_json_items(restored)
    if check is not None:
        check(restored)
    array_targets = {n: targets[n] for n in array_names}
    first_names = bool(array_names) and compat.under_linen_names(manager.item_metadata(step))
    if first_names and any(target is not None for target in array_targets.values()):
        raise CheckpointError(
            f"checkpoint step {step} in {manager.directory} was saved by an earlier w2v_jax (its "
            f"tables under other names): its vectors can be read (python -m experiments.vectors), "
            f"but a run cannot train on from it; start over with restart=True or another workdir"
        )
    arrays = _restore(manager, step, array_targets)
    _check_arrays(manager, step, arrays)  # against the checksums of the tree as saved
    return {**restored, **(compat.tables_from_linen(arrays) if first_names else arrays)}


def _check_json_items(restored: dict[str, Any]) -> None:
    """A JSON item whose file is gone or garbled can come back empty rather than raise:
    refuse it (a ``check`` validates the content further)."""
    for name in JSON_ITEMS:
        if name in restored and not (isinstance(restored[name], dict) and restored[name]):
            raise ValueError(f"the {name} item is missing or empty")


def _check_arrays(manager: ocp.CheckpointManager, step: int, arrays: dict[str, Any]) -> None:
    """Refuse arrays that differ from what was saved, or hold non-finite values. A step saved
    before checksums were (no such item) is checked for non-finite values only."""
    has_checksums = (Path(manager.directory) / str(step) / "checksums").is_dir()
    saved = _restore(manager, step, {"checksums": None})["checksums"] if has_checksums else None
    for name, tree in arrays.items():
        wrong = mismatches(None if saved is None else saved.get(name, {}), array_checksums(tree))
        if wrong is not None:
            raise ValueError(f"the {name} array {wrong}")


def one_line(err: Exception, limit: int = 160) -> str:
    """An exception as one short line (a TensorStore error spans a hundred lines); one that
    failed on an operating system error, as that error ("No space left on device")."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    code = re.search(r"\[os_error_code='?(\d+)'?\]", text)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    if code is not None:
        return os.strerror(int(code.group(1)))
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _move_aside(manager: ocp.CheckpointManager, step: int, set_aside: Path) -> Path:
    """Move a damaged step's directory into ``set_aside`` and make the manager forget it."""
    source = Path(manager.directory) / str(step)
    set_aside.mkdir(parents=True, exist_ok=True)
    target = set_aside / f"step_{step}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = set_aside / f"step_{step}.{suffix}"
    shutil.move(source, target)
    manager.reload()
    return target


def _restore(manager: ocp.CheckpointManager, step: int, targets: dict[str, Any]) -> dict:
    if not targets:
        return {}
    missing = [
        name for name, target in targets.items() if target is None and name not in JSON_ITEMS
    ]
    if missing:  # arrays as saved, into host memory, whatever devices wrote them
        metadata = manager.item_metadata(step)
        targets = {**targets, **{name: _host_target(metadata[name]) for name in missing}}
    restored = manager.restore(
        step,
        args=ocp.args.Composite(
            **{name: _restore_arg(name, target) for name, target in targets.items()}
        ),
    )
    return {name: restored[name] for name in targets}


def _host_target(metadata: Any) -> Any:
    """A target of numpy arrays of the saved shapes and dtypes (zero-stride views: no memory),
    which Orbax reads as numpy arrays whatever devices wrote them (a target with shapes but no
    sharding would be given the saved sharding, whose devices need not exist here)."""
    if metadata is None:
        raise ValueError("the item's metadata is missing")
    tree = getattr(metadata, "tree", metadata)  # Orbax's tree metadata, or the tree itself
    return jax.tree.map(
        lambda leaf: np.broadcast_to(np.zeros((), leaf.dtype), leaf.shape),
        tree,
        is_leaf=lambda node: hasattr(node, "shape") and hasattr(node, "dtype"),
    )


def _restore_arg(name: str, target: Any) -> ocp.args.CheckpointArgs:
    if name in JSON_ITEMS:
        return ocp.args.JsonRestore()
    # Not strict: a checkpoint written on another mesh has another number of padding rows
    # after the vocabulary (w2v_jax.parallel); Orbax appends zero rows or drops them. The
    # vocabulary and the config are checked before any array is read.
    return ocp.args.StandardRestore(target, strict=False)
