"""What reads the formats of earlier versions, in one place: the core modules speak only the
current format and call these readers where something saved or named by an earlier version
comes in. Each is tested against the formats it reads (tests/test_compat.py, and a checkpoint
of each earlier layout resumed in tests/test_checkpoint.py). Read as they are now:

- a flat Config's settings (``lr``, ``num_noise``, ...): at their paths (``MOVED``), in saved
  configs and in calls, which are told the path;
- settings removed (``draw``): dropped; optimisers removed (``sgd``, ``adagrad``): refused,
  naming what replaces them;
- the commands' flags (``--lr``, ``--no-execution.deterministic``, ``--no-vectorise``):
  answered with their names now (``renamed_flags``);
- tables under linen's names (``center_embed/embedding``): renamed, read but not resumed;
- progress without a ``layout`` (epochs from 1, a packed ``capacity``): epochs from 0, the
  layout;
- ``w2v_jax.evaluate``: ``w2v_jax.evaluation.evaluate``, with a DeprecationWarning (that
  module, at the old import path).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MOVED = {
    "num_noise": "noise.count",
    "noise_sharing": "noise.sharing",
    "shared_noise": "noise.shared",
    "noise_groups": "noise.groups",
    "optimizer": "optimizer.name",
    "lr": "optimizer.lr",
    "lr_schedule": "optimizer.schedule",
    "lr_warmup_steps": "optimizer.warmup_steps",
    "adam_b1": "optimizer.b1",
    "adam_b2": "optimizer.b2",
    **{
        name: f"execution.{name}"
        for name in (
            "layout",
            "steps_per_dispatch",
            "checkpoint_every",
            "max_to_keep",
            "mesh",
            "deterministic",
        )
    },
}
"""Settings of earlier versions' flat Config and their paths now: saved configs are read
with them, and a call or a flag that names one is told its path."""

REMOVED_SETTINGS = ("draw",)
"""Settings of earlier versions that changed nothing a step computes, dropped when read."""

REMOVED_OPTIMIZERS = {
    "sgd": "was removed: optimizer.name='sparse_sgd' with optimizer.schedule='constant' makes "
    "the same update on the rows a batch touches",
    "adagrad": "was removed (the panel of real corpora: below rowwise_adagrad on WordSim353 "
    "and the analogies, up to 2.2x the time): use optimizer.name='rowwise_adagrad'",
}
"""Choices of earlier versions, refused with what replaces them."""


def settings_now(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config's top-level entries with the flat settings of earlier versions under
    their paths now (``"lr"`` -> ``"optimizer.lr"``) and removed ones dropped; sections (a
    dict, even under a name that was once a flat setting's: ``"optimizer"``) and current
    settings as they are."""
    return {
        name if isinstance(value, dict) else MOVED.get(name, name): value
        for name, value in saved.items()
        if name not in REMOVED_SETTINGS
    }


def moved_message(path: str) -> str | None:
    """What a call naming a setting of an earlier version is told, or None."""
    if path not in MOVED:
        return None
    return f"Config.{path} is Config.{MOVED[path]} now: set {MOVED[path]}"


def removed_optimizer(name: str) -> str | None:
    """Why an optimiser of an earlier version is refused, or None."""
    if name not in REMOVED_OPTIMIZERS:
        return None
    return f"Config.optimizer.name={name!r} {REMOVED_OPTIMIZERS[name]}"


def renamed_flags(boolean_paths: Iterable[str]) -> dict[str, str]:
    """The commands' flags of earlier versions -> their names now: a flat setting's (``--lr``:
    ``--optimizer.lr``), a section's boolean turned off as argparse spelt it
    (``--no-execution.deterministic``: ``--execution.no-deterministic``, as tyro spells it),
    and the two on/off flags that became choices. ``boolean_paths``: Config's boolean
    settings."""

    def flag(path: str) -> str:
        return path.replace("_", "-")

    renamed = {f"--{flag(old)}": f"--{flag(new)}" for old, new in MOVED.items()}
    for path in boolean_paths:
        section, dot, name = path.rpartition(".")
        if section:
            renamed[f"--no-{flag(path)}"] = f"--{section}{dot}no-{flag(name)}"
    renamed["--no-scores-each-epoch"] = "--scores-each-epoch none"
    renamed["--no-vectorise"] = "--vectorise off"
    return renamed


# ----------------------------------------------------------------------- checkpoints

LINEN_NAMES = {"center": "center_embed", "context": "context_embed"}
"""The names the first releases' linen module gave the tables (two ``nn.Embed``), under which
their checkpoints hold them; each table's draw is still folded with its name there
(``tables.table``), so that every run keeps the values it always had."""


def under_linen_names(metadata: Any) -> bool:
    """Whether a checkpoint step's item metadata (Orbax's) holds the tables under the names a
    linen module gave them (the first releases')."""
    params = metadata["params"]
    return _is_linen_tables(getattr(params, "tree", params))


def tables_from_linen(tree: Any) -> Any:
    """A tree restored from a checkpoint that named the tables as linen did (params
    {"center_embed": {"embedding": ...}, ...}, and optimiser state keyed alike) in the current
    structure; a current tree as it is."""
    import jax  # here: Config's modules import this one, and the numpy data stage loads no JAX

    current = {saved: name for name, saved in LINEN_NAMES.items()}

    def rename(node):
        if not _is_linen_tables(node):
            return node
        return {current[saved]: _unwrapped(value) for saved, value in node.items()}

    return jax.tree.map(rename, tree, is_leaf=_is_linen_tables)


def _is_linen_tables(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == set(LINEN_NAMES.values())


def _unwrapped(value: Any) -> Any:
    """A table under linen's "embedding" key, or a value as it is."""
    if isinstance(value, dict) and set(value) == {"embedding"}:
        return value["embedding"]
    return value


def progress_now(progress: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's progress in the current form: one saved before the pair layout was one
    field ("layout") numbered its epochs from 1 and recorded a packed layout's capacity alone
    (None: the layout is not known)."""
    if "layout" in progress:
        return progress
    epochs = [
        [{**stats, "epoch": stats["epoch"] - 1} for stats in run] for run in progress["epochs"]
    ]
    capacity = progress.get("capacity")
    layout = None if capacity is None else {"name": "packed", "capacity": capacity}
    rest = {key: value for key, value in progress.items() if key != "capacity"}
    return {**rest, "epochs": epochs, "layout": layout}
