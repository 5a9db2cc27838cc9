"""Helpers shared by the experiment scripts: command-line flags for Config, the training job
(flags -> Config -> ``w2v_jax.run.train``, its output and its one-line errors), run
directories, stopping on a signal, result files."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import logging
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from experiments.flags import ArgumentParser, at_least_one
from w2v_jax import parallel, run
from w2v_jax.config import MOVED, Config
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import CorpusError
from w2v_jax.data.corpus import resolve_cache_dir
from w2v_jax.evaluation.benchmark_files import BenchmarkError, benchmark_paths
from w2v_jax.evaluation.report import EvaluationError, unscored
from w2v_jax.fields import choices, field_docs, field_types
from w2v_jax.presets import OWN_TEXT, PRESETS, preset, preset_rate_note
from w2v_jax.sections import SECTIONS
from w2v_jax.training.checkpoint import CheckpointError, drop_closed_loop_reports
from w2v_jax.training.hooks import Hook
from w2v_jax.training.memory import NotEnoughMemory
from w2v_jax.training.records import device_description, where_it_ran, write_json, write_text
from w2v_jax.training.workdir import WorkdirError

RUNS = Path("runs")
"""Where a user's runs go unless told otherwise (ignored by git); the committed results/ are
written only when a command is pointed there (docs/refreshing.md)."""


def run_name(config: Config) -> str:
    """The directory name of ``config``'s run: the preset it is nearest to, then each field
    that changes the computation and differs from it (``book``, ``book,optimizer.lr=0.002``,
    ``fast``). Equal for configs that train the same run, so the same command resumes its own
    run."""
    paths = config.resume_paths()

    def differences(name: str) -> list[str]:
        base = preset(name)
        return [
            f"{path}={config.get(path)}" for path in paths if config.get(path) != base.get(path)
        ]

    nearest = min(PRESETS, key=lambda name: (len(differences(name)), name != "book", name))
    return ",".join([nearest, *differences(nearest)])


# Library messages name arguments (restart=True, num_epochs=3); on the command line, flags.
_PHRASES = {
    "restart=True": "--restart",
    "the data_dir argument": "--data-dir",
    "the cache_dir argument": "--cache-dir",
    "another workdir": "another --workdir",
    "encoding_errors='replace'": "--encoding-errors replace",
    "Evaluation(queries=...)": "--query WORD ...",
    "check_memory=False": "--no-memory-check",
    "execution.mesh=...": "--execution.mesh data=N",
}
# Longest first, so that "optimizer.name" is read whole rather than as "optimizer".
_SETTINGS = sorted(
    [*Config.paths(), *(f.name for f in dataclasses.fields(CorpusConfig))], key=len, reverse=True
)
_FIELD = re.compile(
    r"(?<![\w./-])(?:Config\.|CorpusConfig\.)?("
    + "|".join(map(re.escape, _SETTINGS))
    + r")=(\S+?)(?=[\s,:;)]|$)"
)


def in_flags(message: str) -> str:
    """A library message as the command line speaks: Config fields and arguments as flags."""
    for phrase, flag in _PHRASES.items():
        message = message.replace(phrase, flag)

    def flag(match: re.Match) -> str:
        name, value = flag_name(match.group(1)), match.group(2)
        if value in ("True", "False"):
            return f"--{name}" if value == "True" else f"--no-{name}"
        return f"--{name} {value.strip(chr(39))}"

    # Paths (run names hold "optimizer.lr=0.002") stay as they are: only words without a "/" change.
    return "".join(
        part if "/" in part else _FIELD.sub(flag, part) for part in re.split(r"(\s+)", message)
    )


def one_line_warnings() -> None:
    """Show warnings as ``warning: message``, one line, without the source line."""
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"


IMPORTED_AHEAD = ("scipy.stats", "matplotlib.figure", "matplotlib.backends.backend_agg")
"""What the end of a run imports: the evaluation's correlations and the loss plot, about a
second on a 2-core CPU (scipy.stats alone 0.6 to 1 s)."""


def import_ahead() -> Hook:
    """A hook that, after the first dispatch, imports ``IMPORTED_AHEAD`` in a thread while the
    run trains (the host loop waits on the device then, not on the interpreter), so that the
    evaluation and the plot do not wait for them. Started after a dispatch, never beside the
    run's own first imports."""
    started = threading.Event()

    def start(moment: Any) -> None:
        if not started.is_set():
            started.set()
            threading.Thread(target=_import_all, name="import-ahead", daemon=True).start()

    return Hook(start)


def _import_all() -> None:
    for name in IMPORTED_AHEAD:
        importlib.import_module(name)


class StopOnSignals:
    """While active, SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or ssh session)
    interrupt at once (KeyboardInterrupt), except while the run trains (``deferring``): then
    the first asks it to stop at the end of its current dispatch, saving a checkpoint (calling
    the object says whether one was asked for), and a second SIGINT interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested = False
        self._training = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    @contextlib.contextmanager
    def deferring(self) -> Iterator[None]:
        """The block trains: a signal waits for the end of the dispatch, which saves."""
        self._training = True
        try:
            yield
        finally:
            self._training = False

    def _handle(self, signum, frame) -> None:
        if not self._training or (self.requested and signum == signal.SIGINT):
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnSignals:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def add_config_flags(parser: argparse.ArgumentParser, default_preset: str = "book") -> None:
    """One flag per Config setting (``--num-epochs 10``, a section's ``--optimizer.lr 0.1``) and
    ``--preset NAME`` (default ``default_preset``); a flag given on the command line overrides
    the preset, which overrides the book's defaults."""
    why = " (the default for your own text: the panel of real corpora's pick)"
    parser.set_defaults(default_preset=default_preset)
    parser.add_argument(
        "--preset",
        default=None,  # not given: default_preset, said in one line where it is not the book's
        choices=sorted(PRESETS),
        help="named settings to start from: "
        + "; ".join(f"{name}: {_overrides(name)}" for name in sorted(PRESETS))
        + f" (default {default_preset}{why if default_preset == OWN_TEXT else ''})",
    )
    group = parser.add_argument_group("the run's Config (defaults: the book's, or the preset's)")
    add_dataclass_flags(group, Config, skip=tuple(SECTIONS), given_only=True)
    if isinstance(parser, ArgumentParser):
        parser.renamed.update(
            {f"--{flag_name(old)}": f"--{flag_name(new)}" for old, new in MOVED.items()}
        )
    for section, cls in SECTIONS.items():
        what = cls.__doc__.split(" (``")[0]
        group = parser.add_argument_group(f"Config.{section}, {what[0].lower()}{what[1:]}")
        add_dataclass_flags(group, cls, given_only=True, prefix=f"{section}.")


def _overrides(name: str) -> str:
    values = PRESETS[name]
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "the book's settings"


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    skip: tuple[str, ...] = (),
    given_only: bool = False,
    prefix: str = "",
) -> None:
    """One flag per field of the dataclass ``cls`` (``flag_name(prefix + field)``, its
    destination ``prefix + field``), typed and with the choices of its annotation, its help
    the field's docstring and its default. ``given_only``: flags not given are left out of the
    parsed namespace (so that a preset's values stand)."""
    docs, defaults = field_docs(cls), cls()
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        default = getattr(defaults, field.name)
        shown = "the optimiser's own" if field.name == "lr" else repr(default)
        # argparse formats help with %: a literal one is doubled.
        help_text = f"{docs.get(field.name, '')} (default: {shown})".replace("%", "%%")
        kwargs = {
            "default": argparse.SUPPRESS if given_only else default,
            "help": help_text,
            "dest": prefix + field.name,
        }
        flag = "--" + flag_name(prefix + field.name)
        annotation = field_types(cls)[field.name]
        if annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        kinds = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
        allowed = choices(cls, field.name)
        kind = type(allowed[0]) if allowed else kinds[0]
        metavar = None if allowed else field.name.upper()
        parser.add_argument(flag, type=kind, choices=allowed, metavar=metavar, **kwargs)


def flag_name(path: str) -> str:
    """A setting's flag, without its dashes: "num_epochs" -> "num-epochs", "optimizer.lr" ->
    "optimizer.lr" (one name for a setting in flags, presets, sweeps and messages)."""
    return path.replace("_", "-")


def add_corpus_flags(parser: argparse.ArgumentParser, default: list[str] | None) -> None:
    """``--corpus PATH ...`` (required when there is no ``default``) and one flag per reading
    setting of CorpusConfig (--tokenizer, --lowercase, ...)."""
    parser.add_argument(
        "--corpus",
        nargs="+",
        required=default is None,
        default=default,
        metavar="PATH",
        help="text files, directories or globs (.gz, .bz2, .xz read as such); ptb: PTB"
        + (f" (default {' '.join(default)})" if default else ""),
    )
    group = parser.add_argument_group(
        "how the corpus is read (gensim's simple_preprocess: --tokenizer words --lowercase)"
    )
    add_dataclass_flags(group, CorpusConfig, skip=("paths", "repeats"))


def corpus_from_args(args: argparse.Namespace) -> CorpusConfig:
    """The CorpusConfig of ``add_corpus_flags``'s flags; ValueError names a bad value."""
    settings = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(CorpusConfig)
        if f.name not in ("paths", "repeats")
    }
    return CorpusConfig(tuple(args.corpus), **settings)


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the flags describe; an invalid value exits with Config's message."""
    given = {path: getattr(args, path) for path in Config.paths() if hasattr(args, path)}
    name = args.preset or args.default_preset
    try:
        config = preset(name, **given)
    except ValueError as err:  # a usage error, reported as argparse reports its own
        print(f"error: {in_flags(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.preset is None and name == OWN_TEXT:
        print(
            f"preset: {name}, the default for your own text (results/panel); "
            f"--preset book trains the book's configuration"
        )
    note = preset_rate_note(name, given)
    if note is not None:
        print(in_flags(note))
    return config


def results_header(module: str, argv: list[str] | None) -> dict[str, Any]:
    """What every results file starts with: the command as run, the device, the machine and
    the library versions."""
    args = sys.argv[1:] if argv is None else argv
    return {**where_it_ran(), "command": " ".join(["python -m", module, *args])}


INTERRUPTED = 130  # the shell's status for a process ended by SIGINT
# Errors a user can act on: each is reported as one line, in flags.
USER_ERRORS = (
    CorpusError,
    CheckpointError,
    BenchmarkError,
    EvaluationError,
    WorkdirError,
    NotEnoughMemory,
    FloatingPointError,
    parallel.MeshError,
)


def job_parser(
    description: str, job: str, workdir: str = "<run name>", default_preset: str = "book"
) -> argparse.ArgumentParser:
    """The flags every training job shares: Config's (from ``default_preset``), the workdir
    (by default ``runs/<job>/<workdir>``), data, evaluation and progress."""
    parser = ArgumentParser(prog=f"python -m experiments.{job}", description=description)
    add_config_flags(parser, default_preset)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help=f"where results and checkpoints go (default {RUNS}/{job}/{workdir})",
    )
    add_evaluation_flags(parser)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="delete the workdir's checkpoints and start over (default: resume)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory of ptb.zip (default $W2V_JAX_DATA, else the user cache)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where encoded corpora are kept (default $W2V_JAX_CACHE, else "
        "~/.cache/w2v_jax/corpora)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="write no TensorBoard event files (default: in the workdir's tensorboard/)",
    )
    parser.add_argument(
        "--no-memory-check",
        action="store_true",
        help="train even when the tables, optimiser state and step would not fit in the "
        "device's free memory (default: refuse such a run before allocating anything)",
    )
    group = parser.add_argument_group(
        "several processes (one per host or per GPU; see docs/meshes.md)"
    )
    group.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="process 0's address, which every process of the run is given",
    )
    group.add_argument(
        "--num-processes", type=at_least_one, default=None, help="processes in the run"
    )
    group.add_argument("--process-id", type=int, default=None, help="this process, 0 first")
    group.add_argument(
        "--distributed",
        action="store_true",
        help="join a run of several processes as JAX detects it (SLURM, Open "
        "MPI, TPU pods) instead of the three flags above",
    )
    return parser


def add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    """--query, --neighbours and --benchmarks-dir: what is shown of trained vectors."""
    parser.add_argument(
        "--query",
        nargs="+",
        default=None,
        help="words whose nearest neighbours are printed (default: chip on PTB, else the "
        "three most frequent words of three letters or more that are not English stop words, "
        "after the corpus's 200 most frequent where those are not English)",
    )
    parser.add_argument(
        "--neighbours",
        type=at_least_one,
        default=5,
        help="neighbours per query word (at least 1; default 5)",
    )
    parser.add_argument(
        "--benchmarks-dir",
        default=None,
        help="directory of wordsim353.tsv, simlex999.txt, questions-words.txt "
        "(default: the copies shipped with w2v_jax)",
    )
    parser.add_argument(
        "--scores-each-epoch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score the vectors on WordSim353, SimLex-999 and the Google analogies at each "
        "epoch's end too, into metrics.json, scores.png and TensorBoard (default: the word "
        "pairs alone on one's own text, nothing on PTB; --no-scores-each-epoch: nothing)",
    )


def cache_compiled_programs(cache_dir: Path | None) -> None:
    """Keep XLA's compiled programs in ``xla/`` under the corpus cache (--cache-dir), so that
    a run whose programs were compiled before (another seed, a resumed or repeated run, a
    sweep's points) reads them rather than compiling them again: about 3 s of a run's start.

    JAX writes an entry in place, so a full disk or a kill during the write leaves half of one,
    which it would warn about, and compile again, on every later run: such entries are removed
    first (each is decompressed: about 50 ms for 3 MB of entries), and JAX's warnings about
    the cache are not shown (a program it cannot read or write is compiled all the same)."""
    import jax

    directory = resolve_cache_dir(cache_dir) / "xla"
    _remove_damaged_programs(directory)
    warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation")
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def _remove_damaged_programs(directory: Path) -> None:
    from jax._src.compilation_cache import decompress_executable  # the format JAX writes

    for entry in directory.glob("*-cache") if directory.is_dir() else ():
        try:
            decompress_executable(entry.read_bytes())
        except OSError:  # another process's, just removed: nothing to do
            continue
        except Exception:
            entry.unlink(missing_ok=True)


def run_job(
    args: argparse.Namespace,
    corpus: Callable[[], CorpusConfig],
    runs_dir: Path,
    name_suffix: str,
) -> dict:
    """The training job: ``run.train`` on ``corpus()`` as the flags say, its notes, epochs,
    neighbours and scores printed; user errors, signals and interruptions each said in one
    line. Returns the run's metrics (empty on processes other than the first)."""
    one_line_warnings()
    drop_closed_loop_reports()
    show_notes()
    start_processes(args)
    cache_compiled_programs(args.cache_dir)
    config = config_from_args(args)
    try:
        corpus_config = corpus()
    except ValueError as err:  # a usage error, reported as argparse reports its own
        print(f"error: {in_flags(str(err))}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        workdir = args.workdir or runs_dir / (run_name(config) + name_suffix)
        benchmark_paths(args.benchmarks_dir)  # a wrong directory is said now, not after training
        evaluation = run.Evaluation(
            tuple(args.query or ()), args.neighbours, args.benchmarks_dir, args.scores_each_epoch
        )
        with StopOnSignals() as stop:
            trained = run.train(
                config,
                corpus_config,
                workdir,
                restart=args.restart,
                progress=not args.no_progress,
                should_stop=stop,
                evaluation=evaluation,
                data_dir=args.data_dir,
                cache_dir=args.cache_dir,
                check_memory=not args.no_memory_check,
                tensorboard=not args.no_tensorboard,
                hooks=[import_ahead()],
            )
    except run.TrainingInterrupted as stopped:
        print(f"{stopped}; run the same command to resume", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except KeyboardInterrupt:
        print(
            "interrupted; run the same command to resume from the newest checkpoint",
            file=sys.stderr,
        )
        raise SystemExit(INTERRUPTED) from None
    except USER_ERRORS as err:
        raise SystemExit(f"error: {in_flags(str(err))}") from None
    if not parallel.is_main_process():
        return {}
    print_neighbours(trained.metrics.get("neighbours", {}))
    if "evaluation" in trained.metrics:
        print_scores(trained.metrics["evaluation"])
    print(f"wrote {workdir / 'metrics.json'} and {workdir / 'loss.png'}")
    return trained.metrics


def start_processes(args: argparse.Namespace) -> None:
    """Join the run's other processes when the flags say there are any (before JAX starts)."""
    given = [args.coordinator, args.num_processes, args.process_id]
    if args.distributed or any(value is not None for value in given):
        if not args.distributed and any(value is None for value in given):
            raise SystemExit(
                "error: --coordinator, --num-processes and --process-id go "
                "together (or give --distributed to let JAX detect them)"
            )
        parallel.initialize_distributed(*given)


def print_neighbours(neighbours: dict[str, list]) -> None:
    """Cosine neighbours in the center table, in the book's format."""
    for word, pairs in neighbours.items():
        print(f"neighbours of {word}:")
        for token, cosine in pairs:
            print(f"cosine sim={cosine:.3f}: {token}")


def print_scores(scores: dict) -> None:
    """Each benchmark's score and coverage, or that it was not scored and why."""
    for name, result in scores.items():
        title = name.replace("_", " ")
        if not result["scored"]:
            print(f"{title}: not scored, {unscored(result)}")
        elif "accuracy" in result:
            print(
                f"{title}: accuracy {result['accuracy']:.3f} "
                f"({result['coverage']:.0%} of questions known)"
            )
        else:
            print(
                f"{title}: Spearman {result['spearman']:.3f}, Pearson {result['pearson']:.3f} "
                f"({result['coverage']:.0%} of pairs known)"
            )


class _Notes(logging.Handler):
    """The library's notes as lines, in flags: information on stdout, warnings on stderr (the
    streams looked up as each line is written)."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        print(in_flags(self.format(record)), file=stream, flush=True)


def show_notes() -> None:
    """Print the ``w2v_jax`` logger's notes (once, however often called)."""
    logger = logging.getLogger("w2v_jax")
    logger.setLevel(logging.INFO)
    if not any(isinstance(handler, _Notes) for handler in logger.handlers):
        logger.addHandler(_Notes())
    logger.propagate = False


__all__ = ["device_description", "write_json", "write_text"]
