"""A run's workdir: one run at a time (a lock naming its holder), writable, and with room for
the checkpoints before any work would be lost.

The lock is ``workdir/lock``, held with ``flock`` for the life of the run, so the kernel
releases it whatever ends the process; the file names the holder (pid, host, since when) and is
emptied on release. A lock file that still names a holder when the lock is free was left by a
process that died holding it: it is taken over, and said."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("w2v_jax")


class WorkdirError(RuntimeError):
    """A workdir cannot be used: not writable, in use by another run, or without room."""


LOCK_NAME = "lock"
ROOM_MARGIN = 16 << 20
"""Room kept beyond two checkpoints: metrics.json, loss.png and the file system's own."""


class WorkdirLock:
    """``with WorkdirLock(workdir):`` holds the workdir for this process or refuses in one line
    naming the holder (``WorkdirError``)."""

    def __init__(self, workdir: Path) -> None:
        self.path = Path(workdir) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "another process"
            os.close(fd)
            raise WorkdirError(
                f"the workdir {self.path.parent} is in use by {holder}: wait for that run to "
                f"end, or choose another workdir"
            ) from None
        left = _read(fd)
        if left:
            logger.warning(f"took over the workdir's lock, left by {left}, which has ended")
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        _write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}")
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            _write(self._fd, "")  # released: nothing left to take over
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 1000).decode(errors="replace").strip()


def _write(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


@contextlib.contextmanager
def held(workdir: Path | None, main: bool) -> Iterator[None]:
    """The workdir made, proved writable and, by process 0, locked for the block (None: no
    workdir, nothing to hold)."""
    if workdir is None:
        yield
        return
    ensure_writable(workdir)
    with WorkdirLock(workdir) if main else contextlib.nullcontext():
        if main:
            logger.info(f"workdir: {workdir}")
        yield


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` and prove it writable now, before any work would be lost."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory) as probe:
            probe.write(b"\0" * 4096)  # a full disk refuses blocks, not a directory entry
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as err:
        raise WorkdirError(
            f"cannot write to the workdir {directory} ({err.strerror or err}): "
            f"choose another workdir"
        ) from err


def ensure_room(directory: Path, checkpoint_bytes: int) -> None:
    """Refuse, before training, a workdir whose file system has no room for two checkpoints
    (the newest being written beside the last good one)."""
    free = shutil.disk_usage(directory).free
    if free < 2 * checkpoint_bytes + ROOM_MARGIN:
        raise WorkdirError(
            f"the workdir {directory} has {_mib(free)} free, and a checkpoint of this run takes "
            f"{_mib(checkpoint_bytes)}: it needs room for two ({_mib(2 * checkpoint_bytes)}) "
            f"and a little more; free some space or choose another workdir"
        )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"
