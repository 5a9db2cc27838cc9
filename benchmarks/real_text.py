"""gensim and w2v_jax side by side on real English text (5.3M tokens), beside PTB.

    python -m benchmarks.real_text build [--out runs/real_text]
    python -m benchmarks.real_text run [--corpus runs/real_text/dictionaries.txt] [--seeds 3]
        [--out runs/real_text]

``build`` makes the corpus from four of Debian's dictionary packages (``apt-get download``, so
run ``apt-get update`` first; no root needed): GCIDE, the GNU Collaborative International
Dictionary of English (Webster's Revised Unabridged of 1913, public domain, with WordNet;
GNU GPL 2 or later), FOLDOC, the Free On-line Dictionary of Computing (GNU FDL), the Jargon
File and Ambrose Bierce's The Devil's Dictionary (both public domain). Each entry becomes a
line: its pronunciation (GCIDE's ``\\Ab*di"cate\\``) and labels (``[1913 Webster]``,
``[Obs.]``) dropped, accent codes (``na[i^]ve``) read as letters, split into words as gensim's
``simple_preprocess`` splits them (lowercased), so that every system reads the same tokens on
whitespace. Nothing of it is committed. ``dictionaries.txt`` is the corpus,
``dictionaries_one_line.txt`` the same tokens on one line (text8's form).

``run`` trains every system of SYSTEMS on it, each seed in a process of its own, with the
book's hyperparameters (skip-gram, window 5, 5 noise words, t = 1e-4, d = 100) and min count 5;
gensim in its ``corpus_file`` mode (its fastest; a line holds at most 10,000 tokens there, the
rest silently dropped, so the corpus's lines are below it) and its iterable mode, at 5 and 15
epochs, with every core; and gensim fed the one-line file. It records the whole process's wall
time less its evaluation (time to trained vectors: reading the text, the vocabulary, start-up,
training) and peak RSS, and scores every system's vectors with the same evaluator.
"""

from __future__ import annotations

import gzip
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from experiments import flags

RUNS = harness.RUNS / "real_text"
PACKAGES = {"dict-gcide": "gcide", "dict-foldoc": "foldoc", "dict-jargon": "jargon",
            "dict-devil": "devil"}  # fmt: skip
CORPUS = "dictionaries.txt"
MIN_COUNT = 5
LINE_LIMIT = 10_000  # gensim's corpus_file mode drops the rest of a longer line
QUERY_WORDS = ("king", "water", "music", "horse", "iron")

SYSTEMS = {
    "gensim corpus_file, 5 epochs": {"gensim": "corpus_file", "epochs": 5},
    "gensim corpus_file, 15 epochs": {"gensim": "corpus_file", "epochs": 15},
    "gensim iterable, 5 epochs": {"gensim": "iterable", "epochs": 5},
    "gensim iterable, 15 epochs": {"gensim": "iterable", "epochs": 15},
    "gensim corpus_file, the corpus as one line": {
        "gensim": "corpus_file",
        "epochs": 5,
        "one_line": True,
    },
    "w2v_jax, fast, 5 epochs": {"flags": ["--preset", "fast"]},
    "w2v_jax, gpu, 5 epochs": {"flags": ["--preset", "gpu"]},
}


# ----------------------------------------------------------------------- the corpus


_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")
# Sources and usage labels: [1913 Webster], [PJC], [WordNet 1.5], [Obs.], [R.], [Colloq.].
_TAG = re.compile(r"\[(?:\d{4} Webster[^\]]*|PJC|WordNet[^\]]*|Webster[^\]]*|[A-Z][\w ]{0,10}\.)\]")
# An accented letter is written as a code in brackets: na[i^]ve, caf['e], [ae]on.
_ACCENT = re.compile(r"\[([^\]\s]{1,4})\]")


def _letter(code: re.Match) -> str:
    inside = code.group(1)
    if inside.lower() in ("ae", "oe"):  # ligatures
        return inside
    return next((c for c in inside if c.isalpha()), "")


def entry_lines(dictionary: str) -> list[str]:
    """The dictionary's entries (blank-line separated), one line each: pronunciations, sources
    and usage labels dropped, accent codes read as their letters (etymologies kept), words
    as simple_preprocess splits them, lowercased; the
    database's own header entries ("00-database-...") and entries of fewer than 3 words left
    out, and an entry longer than LINE_LIMIT words cut into lines of at most that."""
    from w2v_jax.data.vocab import Splitter  # numpy only

    words = Splitter("words", lowercase=True)
    lines = []
    for entry in re.split(r"\n\s*\n", dictionary):
        if entry.lstrip().startswith("00-database") or entry.lstrip().startswith("00database"):
            continue
        text = _PRONUNCIATION.sub(" ", entry)
        text = _ACCENT.sub(_letter, _TAG.sub(" ", text)).replace("\n", " ")
        tokens = words(text)
        for start in range(0, len(tokens), LINE_LIMIT):
            piece = tokens[start : start + LINE_LIMIT]
            if len(piece) >= 3:
                lines.append(" ".join(piece))
    return lines


def build(out: Path) -> Path:
    """Download the dictionaries, write ``out/dictionaries.txt`` and its one-line twin;
    returns the first."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["apt-get", "download", *PACKAGES], cwd=tmp, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(
                f"error: apt-get download {' '.join(PACKAGES)} failed "
                f"({done.stderr.strip()[-300:]}): run apt-get update first"
            )
        for package, name in PACKAGES.items():
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
            # dictzip is gzip with an index in its header: gzip reads it whole. A few bytes
            # are not UTF-8 (cp1252 quotes): read as U+FFFD, which no word holds.
            packed = (Path(tmp) / "x" / "usr/share/dictd" / f"{name}.dict.dz").read_bytes()
            lines += entry_lines(gzip.decompress(packed).decode("utf8", errors="replace"))
    corpus = out / CORPUS
    one_line = corpus.with_name(f"{corpus.stem}_one_line.txt")
    for path, text in ((corpus, "\n".join(lines)), (one_line, " ".join(lines))):
        tmp_path = path.with_name(f".{path.name}.tmp")
        tmp_path.write_text(text + "\n")
        tmp_path.replace(path)
    tokens = sum(len(line.split()) for line in lines)
    print(f"wrote {corpus} ({len(lines):,} lines, {tokens:,} tokens) and {one_line}")
    return corpus


# ----------------------------------------------------------------------- the systems


def run_gensim(mode: str, path: str, epochs: int, seed: int) -> dict:
    """gensim's Word2Vec on ``path`` in ``mode`` ("corpus_file" or "iterable": LineSentence)
    with every core; its evaluation timed apart from its training."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    start = time.perf_counter()
    settings = dict(
        sg=1,
        vector_size=100,
        window=5,
        negative=5,
        sample=1e-4,
        min_count=MIN_COUNT,
        workers=os.cpu_count(),
        seed=seed,
        epochs=epochs,
    )
    if mode == "corpus_file":
        model = Word2Vec(corpus_file=path, **settings)
    else:
        model = Word2Vec(LineSentence(path), **settings)
    train_seconds = time.perf_counter() - start
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    from w2v_jax.evaluate import Embeddings

    scores = quality(Embeddings(tuple(model.wv.index_to_key), model.wv.vectors))
    return {
        "train_seconds": train_seconds,
        "peak_rss_mib": peak_rss_mib,
        "vocab_size": len(model.wv),
        "evaluation_seconds": time.perf_counter() - start,
        **scores,
    }


def quality(embeddings) -> dict:
    neighbours = {
        w: [n for n, _ in embeddings.most_similar(w, 5)] for w in QUERY_WORDS if w in embeddings
    }
    return {
        **harness.quality(embeddings.evaluate_benchmarks()),
        "neighbours": neighbours,
    }


def run_w2v_jax(job_flags: list[str], path: str, seed: int) -> dict:
    """``python -m experiments.train`` on ``path`` with ``job_flags``, timed from outside."""
    import json

    with tempfile.TemporaryDirectory() as workdir:
        command = [
            sys.executable,
            "-m",
            "experiments.train",
            "--corpus",
            path,
            *job_flags,
            "--min-freq",
            str(MIN_COUNT),
            "--seed",
            str(seed),
            "--workdir",
            workdir,
            "--no-progress",
            "--query",
            *QUERY_WORDS,
        ]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
        metrics = json.loads((Path(workdir) / "metrics.json").read_text())
    return {
        # To trained vectors, as gensim's: the process less its evaluation.
        "process_seconds": seconds - metrics["evaluation_seconds"],
        "evaluation_seconds": metrics["evaluation_seconds"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "train_seconds": sum(e["seconds"] for e in metrics["epochs"]),
        "vocab_size": metrics["vocab_size"],
        "final_loss": metrics["final_loss"],
        **harness.quality(metrics["evaluation"]),
        "neighbours": {w: [n for n, _ in p] for w, p in metrics["neighbours"].items()},
    }


def run_system(system: str, corpus: Path, seed: int) -> dict:
    """One seed of ``system``, in a process of its own."""
    spec = SYSTEMS[system]
    if "gensim" in spec:
        path = corpus.with_name(f"{corpus.stem}_one_line.txt") if spec.get("one_line") else corpus
        # Its peak RSS is its own (measured inside: the harness's is the most of any child).
        result, wall, _ = harness.in_fresh_process(
            run_gensim, spec["gensim"], str(path), spec["epochs"], seed
        )
        result["process_seconds"] = wall - result["evaluation_seconds"]
    else:
        result = harness.in_fresh_process(run_w2v_jax, spec["flags"], str(corpus), seed)[0]
    return {"system": system, "seed": seed, **result}


# ----------------------------------------------------------------------- the report

TIMED = ("process_seconds", "train_seconds", "peak_rss_mib")
MEASURED = ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy")


def summarise(runs: list[dict]) -> dict[str, dict]:
    systems = {}
    for system in SYSTEMS:
        mine = [run for run in runs if run["system"] == system]
        if mine:
            systems[system] = harness.over_seeds(mine, TIMED, MEASURED)
            systems[system]["seeds"] = len(mine)
    return systems


def report(results: dict) -> str:
    systems = results["systems"]
    peer = systems.get("gensim corpus_file, 5 epochs", {}).get("process_seconds")

    def score(entry: dict, name: str) -> str:
        value = entry[name]
        return "not scored" if value is None else f"{value['mean']:.3f} ± {value['sd']:.3f}"

    rows = [
        [
            system,
            entry["seeds"],
            f"{entry['process_seconds']:.1f} s",
            f"{entry['process_seconds'] / peer:.2f}x" if peer else "",
            f"{entry['peak_rss_mib']:,.0f} MiB",
            *(score(entry, name) for name in MEASURED),
        ]
        for system, entry in systems.items()
    ]
    columns = ["system", "seeds", "whole process", "against gensim corpus_file 5", "peak RSS"]
    lines = [
        "# Real text: four English dictionaries",
        "",
        f"`{results['command']}` on {results['machine']} ({results['device']}); the corpus: "
        f"{results['corpus']['tokens']:,} tokens in {results['corpus']['lines']:,} lines, built "
        f"by `python -m benchmarks.real_text build` from Debian's {', '.join(PACKAGES)}. "
        f"Medians of the times, mean ± sd of the scores over the seeds.",
        "",
        *harness.table([*columns, "WordSim353", "SimLex-999", "analogies"], rows),
        "",
    ]
    return "\n".join(lines)


def corpus_counts(corpus: Path) -> dict:
    lines = tokens = 0
    with open(corpus) as text:
        for line in text:
            lines += 1
            tokens += len(line.split())
    return {"path": str(corpus), "lines": lines, "tokens": tokens}


def parse_args(argv: list[str] | None = None):
    parser = flags.ArgumentParser(description=flags.summary(__doc__))
    parser.add_argument("what", choices=["build", "run"])
    parser.add_argument("--corpus", type=Path, default=RUNS / CORPUS)
    parser.add_argument("--seeds", type=flags.at_least_one, default=3)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--out", type=Path, default=RUNS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.what == "build":
        build(args.out)
        return None
    if not args.corpus.is_file():
        raise SystemExit(
            f"error: no corpus at {args.corpus}: run python -m benchmarks.real_text build first"
        )
    runs = []
    for seed in range(args.seeds):
        for system in args.systems:
            runs.append(run_system(system, args.corpus, seed))
            print(f"{system}, seed {seed}: {runs[-1]['process_seconds']:.1f} s", flush=True)
    results = {
        **harness.header("benchmarks.real_text", argv),
        "corpus": corpus_counts(args.corpus),
        "systems": summarise(runs),
        "runs": runs,
    }
    harness.write_results(args.out, "real_text", results, report(results))
    print(report(results))
    return results


if __name__ == "__main__":
    main()
