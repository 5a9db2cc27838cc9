"""The main job: train skip-gram on PTB with the book's defaults and show chip's neighbours.

    python -m experiments.ptb_skipgram [--lr 0.002 --num-epochs 10 ...] [--workdir DIR]

Writes ``metrics.json`` and ``loss.png`` into the workdir (default runs/ptb_skipgram/<run name>,
the name derived from the fields that change the computation, e.g. ``book`` or
``book,lr=0.002``) and checkpoints into its ``checkpoints/``; run the same command again and it
resumes from the newest complete checkpoint (``--restart`` starts over). Ctrl-C (or SIGTERM)
saves a checkpoint at the end of the current dispatch and exits with status 130. The final
checkpoint is evaluated on WordSim353, SimLex-999 and the Google analogies.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt

from experiments import common
from w2v_jax import parallel, pipeline
from w2v_jax.checkpoint import CheckpointError
from w2v_jax.config import Config
from w2v_jax.data import CorpusError, read_ptb
from w2v_jax.evaluate import BenchmarkError, Embeddings, benchmark_paths
from w2v_jax.loop import EpochStats

JOB = "ptb_skipgram"
INTERRUPTED = 130  # the shell's status for a process ended by SIGINT
# Errors a user can act on: each is reported as one line, in flags.
USER_ERRORS = (
    CorpusError,
    CheckpointError,
    BenchmarkError,
    common.WorkdirError,
    FloatingPointError,
    parallel.MeshError,
)


def job_parser(description: str, job: str, query: list[str] | None) -> argparse.ArgumentParser:
    """The flags every training job shares: Config's, the workdir, evaluation and progress."""
    parser = common.ArgumentParser(description=description)
    common.add_config_flags(parser)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help=f"where results and checkpoints go (default {common.RUNS}/{job}/<run name>)",
    )
    parser.add_argument(
        "--query",
        nargs="+",
        default=query,
        help="words whose nearest neighbours are printed (default "
        f"{' '.join(query) if query else 'the most frequent word'})",
    )
    parser.add_argument(
        "--neighbours",
        type=common.at_least_one,
        default=5,
        help="neighbours per query word (at least 1; default 5)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="delete the workdir's checkpoints and start over (default: resume)",
    )
    parser.add_argument(
        "--benchmarks-dir",
        default=None,
        help="directory of wordsim353.tsv, simlex999.txt, questions-words.txt "
        "(default: the copies shipped with w2v_jax)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    group = parser.add_argument_group(
        "several processes (one per host or per GPU; see the README's Many devices)"
    )
    group.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help="process 0's address, which every process of the run is given",
    )
    group.add_argument(
        "--num-processes", type=common.at_least_one, default=None, help="processes in the run"
    )
    group.add_argument("--process-id", type=int, default=None, help="this process, 0 first")
    group.add_argument(
        "--distributed",
        action="store_true",
        help="join a run of several processes as JAX detects it (SLURM, Open "
        "MPI, TPU pods) instead of the three flags above",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = job_parser(__doc__.splitlines()[0], JOB, ["chip"])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory of ptb.zip (default $W2V_JAX_DATA, else the user cache)",
    )
    parser.add_argument(
        "--ptb-repeats",
        type=common.at_least_one,
        default=1,
        help="train on PTB's training split repeated this many times: a larger "
        "corpus with PTB's statistics, for speed benchmarks (default 1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)

    def ptb(config: Config) -> tuple[dict, str]:
        if args.ptb_repeats == 1:
            return {"data_dir": args.data_dir}, "PTB"
        return {
            "text": "\n".join([read_ptb(args.data_dir)] * args.ptb_repeats)
        }, f"PTB x{args.ptb_repeats}"

    suffix = f",ptb_repeats={args.ptb_repeats}" if args.ptb_repeats != 1 else ""
    return run_main(args, ptb, common.RUNS / JOB, suffix)


def run_main(
    args: argparse.Namespace,
    load_corpus: Callable[[Config], tuple[dict, str]],
    runs_dir: Path,
    name_suffix: str,
    scores_optional: bool = False,
) -> dict:
    """A training job with its user errors, signals and interruptions each said in one line:
    ``load_corpus(config)`` gives the corpus arguments of ``pipeline.prepare_data`` and its
    description. With ``scores_optional`` (your own corpus), benchmarks the vocabulary does
    not cover are said in one line and left unscored."""
    common.one_line_warnings()
    start_processes(args)
    try:
        return run_job(args, load_corpus, runs_dir, name_suffix, scores_optional)
    except pipeline.TrainingInterrupted as stop:
        print(f"{stop}; run the same command to resume", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except KeyboardInterrupt:
        print(
            "interrupted; run the same command to resume from the newest checkpoint",
            file=sys.stderr,
        )
        raise SystemExit(INTERRUPTED) from None
    except USER_ERRORS as err:
        raise SystemExit(f"error: {common.in_flags(str(err))}") from None


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


def run_job(
    args: argparse.Namespace, load_corpus, runs_dir: Path, name_suffix: str, scores_optional: bool
) -> dict:
    config = common.config_from_args(args)
    # One process speaks and writes the run's files; every process trains and checkpoints.
    main_process = parallel.is_main_process()
    say = print if main_process else _silent
    workdir = args.workdir or runs_dir / (common.run_name(config) + name_suffix)
    benchmark_paths(args.benchmarks_dir)  # a wrong directory is said now, not after training
    # A bad corpus is said before a workdir is made; process 0 encodes it first, so that the
    # others find it in the cache.
    corpus, description = parallel.main_process_first(lambda: load_corpus(config))
    common.ensure_writable(workdir)
    device = common.device_description()
    say(f"workdir: {workdir}")
    prepared = pipeline.prepare_data(config, **corpus)
    say(
        f"data: {description}: {len(prepared.vocab):,} words, "
        f"{prepared.num_centers:,} centers in {len(prepared.dataset.blocks) - 1:,} blocks, "
        f"{prepared.seconds:.2f} s"
    )
    memory = pipeline.state_bytes(config, len(prepared.vocab))
    on_mesh = (
        ""
        if jax.device_count() == 1
        else (
            f", {memory['per_device'] / 2**20:,.1f} MiB on each device of the mesh {memory['mesh']}"
        )
    )
    say(
        f"memory: tables {memory['tables'] / 2**20:,.1f} MiB, {config.optimizer} state "
        f"{memory['optimiser'] / 2**20:,.1f} MiB on {device}{on_mesh}"
    )
    if not args.query:  # the most frequent word (index 0 is <unk>)
        args.query = [prepared.vocab.tokens[1]]

    def report(stats: EpochStats) -> None:
        say(
            f"epoch {stats.epoch}/{config.num_epochs}: loss {stats.loss:.3f}, "
            f"{stats.centers_per_second:,.0f} centers/s, "
            f"{stats.pairs_per_second:,.0f} pairs/s on {device}",
            flush=True,
        )

    def resumed(step: int) -> None:
        say(f"resumed from the checkpoint at step {step} in {workdir}", flush=True)

    with common.StopOnSignals() as stop:
        run = pipeline.train_skipgram(
            config,
            prepared,
            report,
            progress=main_process and not args.no_progress,
            workdir=workdir,
            restart=args.restart,
            on_resume=resumed,
            should_stop=stop,
        )
    # Asked during the last dispatch (on any process): the run is saved, evaluation left undone.
    if parallel.any_process(stop()):
        raise pipeline.TrainingInterrupted(len(run.history), int(run.state.step), saved=True)
    if not main_process:  # process 0 writes the results and evaluates the checkpoint;
        # the others join its read, since Orbax synchronises the processes opening one.
        Embeddings.from_checkpoint(workdir)
        return {}
    metrics = collect_metrics(run, device)
    # The run's results are on disk before anything in evaluation can go wrong.
    common.write_json(workdir / "metrics.json", metrics)
    plot_loss(run, workdir / "loss.png")
    try:
        metrics.update(evaluate(workdir, args, metrics, scores_optional))
    except (BenchmarkError, CheckpointError) as err:
        common.write_json(workdir / "metrics.json", {**metrics, "evaluation_error": str(err)})
        raise SystemExit(
            f"error: evaluation failed: {common.in_flags(str(err))} (the run's "
            f"checkpoint, metrics.json and loss.png are in {workdir})"
        ) from None
    common.write_json(workdir / "metrics.json", metrics)
    print(f"wrote {workdir / 'metrics.json'} and {workdir / 'loss.png'}")
    return metrics


def _silent(*args, **kwargs) -> None:
    """``print`` on the processes that do not speak."""


def evaluate(workdir: Path, args: argparse.Namespace, metrics: dict, scores_optional: bool) -> dict:
    """Neighbours and benchmark scores of the final checkpoint, printed and returned (the
    neighbours go into ``metrics`` first, so a failing score keeps them). With
    ``scores_optional``, benchmarks the vocabulary does not cover are said in one line and
    left unscored."""
    start = time.perf_counter()
    embeddings = Embeddings.from_checkpoint(workdir)  # the final checkpoint, as saved
    neighbours = print_neighbours(embeddings, args.query, args.neighbours)
    metrics["neighbours"] = {
        word: [[token, cosine] for token, cosine in pairs] for word, pairs in neighbours.items()
    }
    try:
        scores = embeddings.evaluate_benchmarks(args.benchmarks_dir)
    except BenchmarkError as err:
        if not scores_optional:
            raise
        print(f"benchmarks not scored: {err}", file=sys.stderr)
        return {"evaluation_skipped": str(err), "evaluation_seconds": time.perf_counter() - start}
    print_scores(scores)
    return {"evaluation": scores, "evaluation_seconds": time.perf_counter() - start}


def print_neighbours(
    embeddings: Embeddings, words: list[str], k: int
) -> dict[str, list[tuple[str, float]]]:
    """Cosine neighbours in the center table, printed in the book's format."""
    found = {}
    for word in words:
        if word not in embeddings:
            print(f"{word}: not in the vocabulary", file=sys.stderr)
            continue
        found[word] = embeddings.most_similar(word, k)
        print(f"neighbours of {word}:")
        for token, cosine in found[word]:
            print(f"cosine sim={cosine:.3f}: {token}")
    return found


def print_scores(scores: dict) -> None:
    for name in ("wordsim353", "simlex999"):
        result = scores[name]
        print(
            f"{name}: Spearman {result['spearman']:.3f}, Pearson {result['pearson']:.3f} "
            f"({result['coverage']:.0%} of pairs known)"
        )
    analogies = scores["google_analogies"]
    print(
        f"google analogies: accuracy {analogies['accuracy']:.3f} "
        f"({analogies['coverage']:.0%} of questions known)"
    )


def collect_metrics(run: pipeline.TrainingRun, device: str) -> dict:
    prepared = run.prepared
    return {
        "config": run.config.to_dict(),
        "versions": common.library_versions(),
        "device": device,
        "vocab_size": len(run.vocab),
        "num_centers": prepared.num_centers,
        # A corpus of one window has the same pairs every epoch; a larger one's examples are
        # drawn as it trains (see "epochs").
        "num_pairs": prepared.examples.num_pairs if prepared.examples is not None else None,
        "blocks": len(prepared.dataset.blocks) - 1,
        "data_seconds": prepared.seconds,
        "compile_seconds": run.compile_seconds,
        "checkpoint_seconds": run.checkpoint_seconds,
        "resumed_from_step": run.resumed_from,
        "epochs": [stats.to_dict() for stats in run.history],
        "final_loss": run.history[-1].loss if run.history else None,
        "loss_curve": run.curve,
    }


def plot_loss(run: pipeline.TrainingRun, path: Path) -> None:
    """The loss of every dispatch against the step, each epoch's mean at its last step."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if run.curve:
        steps, losses = zip(*run.curve)
        ax.plot(steps, losses, lw=1, color="tab:blue", label="per dispatch")
    ends = [stats for stats in run.history if stats.step]
    for stats in ends:
        ax.axvline(stats.step, color="grey", lw=0.5, ls=":")
    ax.plot(
        [s.step for s in ends], [s.loss for s in ends], "o", color="tab:orange", label="epoch mean"
    )
    ax.set_xlabel("step (dotted lines: epoch ends)")
    ax.set_ylabel("loss (masked sigmoid BCE)")
    ax.set_title(f"PTB skip-gram, {len(run.history)} epochs")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)  # a crash never leaves half a picture under the real name


if __name__ == "__main__":
    main()
