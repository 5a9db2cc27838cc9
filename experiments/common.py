"""Helpers shared by the experiment scripts: command-line flags for Config, the training job
(flags -> Config -> ``w2v_jax.run.train``, its output and its one-line errors), run
directories, stopping on a signal, result files."""

from __future__ import annotations

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
from typing import Annotated, Any, Literal, TypeVar

import tyro

from experiments import flags
from w2v_jax import compat, parallel, run
from w2v_jax.config import Config
from w2v_jax.corpus_config import CorpusConfig
from w2v_jax.data import CorpusError
from w2v_jax.data.corpus import resolve_cache_dir
from w2v_jax.evaluation.benchmark_files import BenchmarkError, benchmark_paths
from w2v_jax.evaluation.report import EvaluationError, unscored
from w2v_jax.presets import OWN_TEXT, PRESETS, preset, preset_rate_note
from w2v_jax.training.checkpoint import CheckpointError, drop_closed_loop_reports
from w2v_jax.training.hooks import Hook
from w2v_jax.training.memory import NotEnoughMemory
from w2v_jax.training.records import device_description, where_it_ran, write_json, write_text
from w2v_jax.training.workdir import WorkdirError

J = TypeVar("J", bound="JobFlags")

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


def flag_name(path: str) -> str:
    """A setting's flag, without its dashes: "num_epochs" -> "num-epochs", "optimizer.lr" ->
    "optimizer.lr" (as tyro names it; one name for a setting in flags, presets, sweeps and
    messages)."""
    return path.replace("_", "-")


def negated_flag(path: str) -> str:
    """The flag that turns a boolean setting off, as tyro names it: "--no-restart",
    "--execution.no-deterministic"."""
    section, dot, name = path.rpartition(".")
    return f"--{section}{dot}no-{flag_name(name)}"


def in_flags(message: str) -> str:
    """A library message as the command line speaks: Config fields and arguments as flags."""
    for phrase, flag in _PHRASES.items():
        message = message.replace(phrase, flag)

    def flag(match: re.Match) -> str:
        name, value = flag_name(match.group(1)), match.group(2)
        if value in ("True", "False"):
            return f"--{name}" if value == "True" else negated_flag(match.group(1))
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


PresetName = Literal[tuple(sorted(PRESETS))]  # type: ignore[valid-type]
EachEpoch = Literal["auto", "all", "none"]


def preset_help(default: str) -> str:
    """--preset's help: each preset's overrides, and the job's default."""
    why = ", the default for your own text: the panel of real corpora's pick"
    overrides = "; ".join(
        f"{name}: {', '.join(f'{k}={v}' for k, v in PRESETS[name].items()) or 'the book'}"
        for name in sorted(PRESETS)
    )
    return (
        f"Named settings the run's Config starts from, under the flags given: {overrides} "
        f"({default}{why if default == OWN_TEXT else ''})."
    )


@dataclasses.dataclass(frozen=True)
class Shown:
    """what is shown of trained vectors"""

    query: tuple[str, ...] = ()
    """Words whose nearest neighbours are printed (default: chip on PTB, else the three most
    frequent words of three letters or more that are not English stop words, after the
    corpus's 200 most frequent where those are not English)."""
    neighbours: int = 5
    """Neighbours per query word (at least 1)."""
    benchmarks_dir: str | None = None
    """Directory of wordsim353.tsv, simlex999.txt and questions-words.txt, and any of the other
    benchmarks (None: the copies shipped with w2v_jax)."""

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"--neighbours {self.neighbours}: must be at least 1")


@dataclasses.dataclass(frozen=True)
class Processes:
    """several processes, one per host or per GPU (docs/meshes.md)"""

    coordinator: str | None = None
    """Process 0's address, HOST:PORT, which every process of the run is given."""
    num_processes: int | None = None
    """Processes in the run."""
    process_id: int | None = None
    """This process, 0 first."""
    distributed: bool = False
    """Join a run of several processes as JAX detects it (SLURM, Open MPI, TPU pods) instead of
    the three flags above."""

    def __post_init__(self) -> None:
        if self.num_processes is not None and self.num_processes < 1:
            raise ValueError(f"--num-processes {self.num_processes}: must be at least 1")
        given = [self.coordinator, self.num_processes, self.process_id]
        if not self.distributed and None in given and any(v is not None for v in given):
            raise ValueError(
                "--coordinator, --num-processes and --process-id go together (or give "
                "--distributed to let JAX detect them)"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobFlags:
    """The flags every training job shares: the run's Config (a preset's, under the flags
    given), where it goes, what is shown of it and how it runs."""

    config: Annotated[Config, flags.FLATTENED] = Config()
    preset: Annotated[PresetName, tyro.conf.arg(help=preset_help("book"))] = "book"
    workdir: Path | None = None
    """Where results and checkpoints go (None: runs/ptb_skipgram/<run name>)."""
    restart: bool = False
    """Delete the workdir's checkpoints and start over (default: resume)."""
    data_dir: str | None = None
    """Directory of ptb.zip (None: $W2V_JAX_DATA, else the user cache)."""
    cache_dir: Path | None = None
    """Where encoded corpora and compiled programs are kept (None: $W2V_JAX_CACHE, else
    ~/.cache/w2v_jax/corpora)."""
    shown: Annotated[Shown, tyro.conf.OmitArgPrefixes] = Shown()
    scores_each_epoch: EachEpoch = "auto"
    """Score the vectors at each epoch's end too, into metrics.json, scores.png and TensorBoard:
    "auto", WordSim353 and SimLex-999 on one's own text, nothing on PTB; "all", those and the
    Google analogies, on PTB too; "none"."""
    progress: bool = True
    """Show the progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files into the workdir's tensorboard/."""
    memory_check: bool = True
    """Refuse, before allocating anything, a run whose tables, optimiser state and step would
    not fit in the device's free memory."""
    processes: Annotated[Processes, tyro.conf.OmitArgPrefixes] = Processes()

    @property
    def evaluation(self) -> run.Evaluation:
        each_epoch = {"auto": None, "all": True, "none": False}[self.scores_each_epoch]
        shown = self.shown
        return run.Evaluation(shown.query, shown.neighbours, shown.benchmarks_dir, each_epoch)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CorpusFlags:
    """The corpus: its paths and how its text is read (every setting of CorpusConfig but
    ``repeats``, a benchmark's)."""

    corpus: Annotated[tuple[str, ...], tyro.conf.arg(metavar="PATH")]
    """Text files, directories or globs (.gz, .bz2, .xz read as such); ptb: PTB."""
    reading: Annotated[
        CorpusConfig,
        tyro.conf.OmitArgPrefixes,
        tyro.conf.arg(help="gensim's simple_preprocess: --tokenizer words --lowercase"),
    ] = CorpusConfig()

    @property
    def corpus_config(self) -> CorpusConfig:
        return dataclasses.replace(self.reading, paths=self.corpus)


READ_ELSEWHERE = {CorpusConfig: ("paths", "repeats")}
"""CorpusConfig's fields that are not among its flags: the paths are --corpus."""
RENAMED = compat.renamed_flags(
    path for path in Config.paths() if isinstance(Config().get(path), bool)
)
"""Flags of earlier versions -> their names now."""


def parse_job(cls: type[J], argv: list[str] | None, description: str, prog: str) -> J:
    """A training job's flags (``cls``: JobFlags and the job's own): the preset named by
    --preset (else the job's) gives Config's defaults, the flags given override them. Says
    which preset trains when it is the own-text default, and a learning rate left behind by a
    change of optimiser."""
    argv = sys.argv[1:] if argv is None else list(argv)
    default = _default_of(cls, "preset")
    name = flags.last_value(argv, "--preset") or default
    base = preset(name) if name in PRESETS else Config()  # an unknown name: the parse says so
    parsed = flags.cli(
        cls,
        argv,
        description=description,
        defaults={Config: base},
        hidden=READ_ELSEWHERE,
        renamed=RENAMED,
        in_flags=in_flags,
        prog=prog,
    )
    if name == OWN_TEXT and flags.last_value(argv, "--preset") is None:
        print(
            f"preset: {name}, the default for your own text (results/panel); "
            f"--preset book trains the book's configuration"
        )
    given = {p: parsed.config.get(p) for p in Config.paths() if parsed.config.get(p) != base.get(p)}
    note = preset_rate_note(name, given)
    if note is not None:
        print(in_flags(note))
    return parsed


def _default_of(cls: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


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
    args: JobFlags,
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
    start_processes(args.processes)
    cache_compiled_programs(args.cache_dir)
    try:
        corpus_config = corpus()
    except ValueError as err:  # a usage error, reported as a refused flag is
        flags.usage_error(in_flags(str(err)))
    try:
        workdir = args.workdir or runs_dir / (run_name(args.config) + name_suffix)
        # a wrong benchmarks directory is said now, not after training
        benchmark_paths(args.shown.benchmarks_dir)
        with StopOnSignals() as stop:
            trained = run.train(
                args.config,
                corpus_config,
                workdir,
                restart=args.restart,
                progress=args.progress,
                should_stop=stop,
                evaluation=args.evaluation,
                data_dir=args.data_dir,
                cache_dir=args.cache_dir,
                check_memory=args.memory_check,
                tensorboard=args.tensorboard,
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


def start_processes(processes: Processes) -> None:
    """Join the run's other processes when the flags say there are any (before JAX starts)."""
    given = [processes.coordinator, processes.num_processes, processes.process_id]
    if processes.distributed or any(value is not None for value in given):
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
