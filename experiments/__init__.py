"""Runnable experiments: ``python -m experiments.<name>``.

The entry scripts own their process, so they set process-wide options here, before numpy and
JAX load:

- numpy asks the kernel for transparent huge pages for large arrays, and on kernels that then
  defragment memory synchronously (``/sys/kernel/mm/transparent_hugepage/defrag`` = madvise)
  the first touch of each fresh array is about 5x slower, which doubles the data stage's time;
- large arrays are mapped from the kernel one by one and given back when freed (glibc's
  ``M_MMAP_THRESHOLD`` fixed at 1 MiB): by default glibc raises that threshold after the first
  large array freed, and the data stage's and the draws' arrays of tens of MiB then stay in
  the heap after use: the default run's peak on a corpus of 2.8M tokens is 864 MiB with 1 MiB,
  925 with 4 MiB, 1,009 with 16 MiB and 1,170 with glibc's default. The price is a page fault
  for each fresh page of an array: the data stage takes about 0.3 s more on that corpus;
- Ctrl-C before a job has set its own handling (while JAX imports, the first seconds) ends the
  process at once with one line: Python's own KeyboardInterrupt would print a traceback
  through the import machinery, or, raised in one of JAX's callbacks there, be ignored.
"""

import ctypes
import ctypes.util
import itertools
import os
import signal
import sys

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def _end_at_once(signum, frame) -> None:
    """Say so, then end as Ctrl-C ends a process (the shell's status 130)."""
    print("interrupted", file=sys.stderr, flush=True)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _run_as_a_command() -> bool:
    """Whether this process is ``python -m experiments.<name>`` (not a test or a notebook
    importing the package, whose Ctrl-C stays theirs)."""
    argv = getattr(sys, "orig_argv", [])
    return any(
        flag == "-m" and module.startswith("experiments.")
        for flag, module in itertools.pairwise(argv)
    )


def _map_large_arrays() -> None:
    """Large arrays mapped one by one and given back when freed (glibc only)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h

if _run_as_a_command():
    signal.signal(signal.SIGINT, _end_at_once)
    _map_large_arrays()
