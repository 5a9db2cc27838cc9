"""PTB's training split: fetched from the d2l data hub into the data directory and verified by
its sha1; a damaged or foreign file is never used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from w2v_jax.data import CorpusError, resolve_dir, sha1_of

PTB_URL = "http://d2l-data.s3-accelerate.amazonaws.com/ptb.zip"
PTB_SHA1 = "319d85e578af0cdc590547f26231e4e31cdf1e42"
PTB_TRAIN_MEMBER = "ptb/ptb.train.txt"
DATA_ENV_VAR = "W2V_JAX_DATA"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: the argument, else $W2V_JAX_DATA, else the user's cache directory."""
    return resolve_dir(data_dir, DATA_ENV_VAR, "")


def fetch_ptb(
    data_dir: str | os.PathLike | None = None, url: str = PTB_URL, sha1: str = PTB_SHA1
) -> Path:
    """Path of a verified ``ptb.zip`` in the data directory, downloading it when absent.

    A file whose sha1 differs from ``sha1`` is never used: an existing one raises CorpusError,
    a downloaded one is deleted before the error is raised.
    """
    directory = resolve_data_dir(data_dir)
    path = directory / "ptb.zip"
    if not path.exists():
        download(url, path, sha1)
    actual = sha1_of(path)
    if actual != sha1:
        raise CorpusError(
            f"{path} has sha1 {actual}, expected {sha1}: the file is damaged or not the PTB "
            f"archive, so it is not used. Delete it to download again from {url}, or replace it "
            f"with a good copy."
        )
    return path


def download(url: str, dest: Path, sha1: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file; only a verified file is moved in."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise CorpusError(
            f"cannot write to the data directory {dest.parent}: {err}. "
            f"Choose another with the data_dir argument or ${DATA_ENV_VAR}."
        ) from err
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _stream_to(url, out)
        if actual != sha1:
            raise CorpusError(
                f"the file downloaded from {url} has sha1 {actual}, expected "
                f"{sha1}; it was discarded. Try again, or put a good copy of "
                f"{dest.name} into {dest.parent}."
            )
        os.replace(tmp, dest)
    except OSError as err:
        raise CorpusError(
            f"could not download {url} ({err}). Offline, put {dest.name} (sha1 {sha1}) into "
            f"{dest.parent}, or point ${DATA_ENV_VAR} (or the data_dir argument) at a directory "
            f"that holds it."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def _stream_to(url: str, out) -> str:
    """Copy ``url`` into the open file ``out`` with a progress bar; returns the bytes' sha1."""
    from tqdm.auto import tqdm  # the progress bar is only needed when downloading

    digest = hashlib.sha1()
    with urllib.request.urlopen(url, timeout=30) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {url}") as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def read_zip_text(path: Path, member: str = PTB_TRAIN_MEMBER) -> str:
    """The text of ``member`` inside the archive ``path``, read without extracting to disk."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.read(member).decode("utf-8")
    except (zipfile.BadZipFile, KeyError, EOFError, UnicodeDecodeError) as err:
        raise CorpusError(
            f"{path} is not a readable corpus archive holding {member} ({err}); "
            f"delete it and download it again."
        ) from err


def read_ptb(data_dir: str | os.PathLike | None = None) -> str:
    """The text of PTB's training split (one sentence a line), fetched and verified if needed."""
    return read_zip_text(fetch_ptb(data_dir))
