"""The benchmark files: their names, the checksums of the copies shipped in
``w2v_jax/benchmarks/`` (sources and licences in its README), where a run finds them (the shipped
copies or a directory of one's own) and how their lines are read. No JAX: numpy-free too."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from pathlib import Path

BENCHMARK_FILES = {
    "wordsim353": "wordsim353.tsv",
    "simlex999": "simlex999.txt",
    "google_analogies": "questions-words.txt",
    "ws353_similarity": "ws353_similarity.txt",
    "ws353_relatedness": "ws353_relatedness.txt",
    "men": "men.txt",
    "rare_words": "rare_words.txt",
    "mturk": "mturk.txt",
    "msr_analogies": "msr_analogies.txt",
}
# The shipped copies, byte for byte: the first three gensim 4.4.0's test data, the others
# hyperwords' test sets (Levy, Goldberg and Dagan); see w2v_jax/benchmarks/README.md.
BENCHMARK_SHA256 = {
    "wordsim353": "f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",
    "simlex999": "d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",
    "google_analogies": "8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
    "ws353_similarity": "f1da938998863c94e53f72f984a5c6e215f0b46c323aae8f0f4930703a339107",
    "ws353_relatedness": "66a7c88100624d0a391605ff61ce84e11d11ee620d51ec0298da49592838f8fa",
    "men": "4596e169dd237228ca7701dde33585ca93263506ce7fca9de0f951aaab1aae36",
    "rare_words": "c07cd977f8439c02632351ec01263f2cb0509141efe24407f7dd9f3234b9708e",
    "mturk": "a916fd82b98e68206873309a06fe0535424753388b3f7a8c04af6742331f6bbe",
    "msr_analogies": "6e8d8a1d83165250631e5d74689837ab11bd00b7547a1d5e7000fa8bb4e259ef",
}
ANALOGY_SETS = ("google_analogies", "msr_analogies")
"""The benchmarks of analogy questions (3CosAdd accuracy); the others are word pairs with human
scores (Spearman and Pearson correlation)."""
HEADLINE = ("wordsim353", "simlex999", "google_analogies")
"""The three a run's lines and each epoch's scores give (gensim's own test data); a directory
of one's own must hold them, and the others are scored where it holds them."""


class BenchmarkError(ValueError):
    """A benchmark file is missing, damaged or unreadable; the message says which."""


def read_analogies(path: Path) -> tuple[list[str], list[tuple]]:
    """The sections of an analogy file (``: name`` lines; a file without them is one section)
    and its questions, (section number, A, B, C, D) in upper case."""
    sections, questions = [], []
    for line in read_lines(path):
        if line.startswith(": "):
            sections.append(line[2:].strip())
        elif line.strip():
            if not sections:  # a file without sections (MSR's) is one, named by the file
                sections.append(path.stem)
            words = line.upper().split()
            if len(words) == 4:
                questions.append((len(sections) - 1, *words))
    return sections, questions


def read_lines(path: Path) -> list[str]:
    """A benchmark file's lines; one that cannot be read raises BenchmarkError."""
    try:
        return path.read_text(encoding="utf8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise BenchmarkError(f"cannot read the benchmark file {path}: {err}") from err


def benchmark_path(name: str) -> Path:
    """The copy of a standard benchmark file shipped inside this package (see
    ``w2v_jax/benchmarks/README.md`` for sources and licences), checked against its sha256."""
    if name not in BENCHMARK_FILES:
        raise ValueError(f"unknown benchmark {name!r}; benchmarks: {sorted(BENCHMARK_FILES)}")
    path = Path(str(importlib.resources.files("w2v_jax") / "benchmarks" / BENCHMARK_FILES[name]))
    if not path.is_file() or _sha256(path) != BENCHMARK_SHA256[name]:
        raise BenchmarkError(
            f"the {name} benchmark file shipped with w2v_jax ({path}) is "
            f"missing or damaged: reinstall w2v_jax, or pass a directory of "
            f"your own copies"
        )
    return path


def benchmark_paths(
    directory: str | os.PathLike | None = None, names: tuple[str, ...] | None = None
) -> dict[str, Path]:
    """The benchmark files of ``names`` (default all), in the order of BENCHMARK_FILES: in
    ``directory`` (named as BENCHMARK_FILES: the ``HEADLINE`` three, and any of the others),
    else the shipped copies (only those asked for are read and checked). A directory missing
    one of the three raises BenchmarkError naming what is missing."""
    wanted = [name for name in BENCHMARK_FILES if names is None or name in names]
    if directory is None:
        return {name: benchmark_path(name) for name in wanted}
    paths = {name: Path(directory) / file for name, file in BENCHMARK_FILES.items()}
    missing = [paths[name].name for name in HEADLINE if not paths[name].is_file()]
    if missing:
        required = ", ".join(BENCHMARK_FILES[name] for name in HEADLINE)
        raise BenchmarkError(
            f"the benchmarks directory {directory} lacks {', '.join(missing)}: "
            f"it must hold {required}"
        )
    return {name: paths[name] for name in wanted if paths[name].is_file()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
