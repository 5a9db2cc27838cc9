"""The panel's corpora: real English text of different kinds, built from Debian's packages
(``apt-get download``, so run ``apt-get update`` first; no root needed) and PTB, each written
as lines of words as gensim's ``simple_preprocess`` splits them (lowercased), so that every
system reads the same tokens on whitespace. Nothing of them is committed.

| corpus | kind | packages (licence) |
| --- | --- | --- |
| dictionaries | definitions: an entry a line | dict-gcide (GCIDE: Webster's 1913 with WordNet; GPL 2 or later), dict-foldoc (FOLDOC; GNU FDL), dict-jargon (the Jargon File; public domain), dict-devil (Bierce's The Devil's Dictionary; public domain) |
| kernel | technical prose: a paragraph a line | linux-doc-6.1 (the Linux kernel's documentation, reStructuredText sources; GPL 2) |
| commentaries | 17th- to 19th-century literary prose on the Psalms and the Bible: a passage a line | sword-comm-tdavid (C. H. Spurgeon, The Treasury of David, 1869-85), sword-comm-mhcc (Matthew Henry's Concise Commentary, 1706); both public domain |
| manuals | software reference manuals: a paragraph a line | perl-doc (Perl's manual pages; GPL or Artistic), postgresql-doc-15 (PostgreSQL's manual, HTML; PostgreSQL licence) |
| python_docs | technical prose of another project: a paragraph a line | python3.11-doc (Python's documentation, HTML; PSF licence) |
| quotations | short English quotations and jokes: a fortune a line | fortunes, fortunes-min (fortune-mod's data files; BSD) |
| ptb | news (the book's corpus): a sentence a line | PTB's training split from ptb.zip, its ``<unk>`` left out |
"""  # noqa: E501

from __future__ import annotations

import gzip
import html
import re
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

LINE_LIMIT = 10_000  # gensim's corpus_file mode drops the rest of a longer line


def words_lines(texts: Iterable[str]) -> list[str]:
    """Each text as a line of words (simple_preprocess's, lowercased), cut into lines of at
    most LINE_LIMIT words; texts of fewer than 3 words left out."""
    from w2v_jax.data.vocab import Splitter  # numpy only

    words = Splitter("words", lowercase=True)
    lines = []
    for text in texts:
        tokens = words(text.replace("\n", " "))
        for start in range(0, len(tokens), LINE_LIMIT):
            piece = tokens[start : start + LINE_LIMIT]
            if len(piece) >= 3:
                lines.append(" ".join(piece))
    return lines


def paragraphs(text: str) -> list[str]:
    return re.split(r"\n\s*\n", text)


# ----------------------------------------------------------------------- dictionaries

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
    and usage labels dropped, accent codes read as their letters (etymologies kept); the
    database's own header entries ("00-database-...") left out."""
    entries = []
    for entry in paragraphs(dictionary):
        if entry.lstrip().startswith(("00-database", "00database")):
            continue
        text = _PRONUNCIATION.sub(" ", entry)
        entries.append(_ACCENT.sub(_letter, _TAG.sub(" ", text)))
    return words_lines(entries)


def dictionaries(root: Path) -> list[str]:
    lines = []
    for name in ("gcide", "foldoc", "jargon", "devil"):
        # dictzip is gzip with an index in its header: gzip reads it whole. A few bytes are
        # not UTF-8 (cp1252 quotes): read as U+FFFD, which no word holds.
        packed = (root / "usr/share/dictd" / f"{name}.dict.dz").read_bytes()
        lines += entry_lines(gzip.decompress(packed).decode("utf8", errors="replace"))
    return lines


# ----------------------------------------------------------------------- the others

_RST_MARKUP = re.compile(r"^\s*(\.\. .*|[=\-~^\"'`#*+]{3,}\s*)$", re.MULTILINE)


def kernel(root: Path) -> list[str]:
    """The documentation's reStructuredText sources, a paragraph a line, directives and
    section underlines left out."""
    texts = []
    for path in sorted((root / "usr/share/doc/linux-doc-6.1/Documentation").rglob("*.rst.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf8", errors="replace")
        texts += paragraphs(_RST_MARKUP.sub("", text))
    return words_lines(texts)


def sword_blocks(module: Path) -> Iterable[str]:
    """The text of a SWORD zCom module: zlib blocks, each found by a 12-byte index entry
    (offset, size, size uncompressed) of its ``*.?zs`` file in its ``*.?zz`` file."""
    for index in sorted(module.glob("*.?zs")):
        data = index.with_name(index.name[:-1] + "z").read_bytes()
        entries = index.read_bytes()
        for at in range(0, len(entries) - 11, 12):
            offset, size, _ = struct.unpack("<III", entries[at : at + 12])
            if size:
                yield zlib.decompress(data[offset : offset + size]).decode("utf8", "replace")


_TAGS = re.compile(r"<[^>]*>")
# OSIS marks a paragraph's bounds (and a chapter's, a title's, a table row's) with these.
_OSIS_BREAK = re.compile(r"<(?:div|chapter|/?title|/?row|/?item|/?l)\b[^>]*>")


def commentaries(root: Path) -> list[str]:
    """Each commentary's paragraphs, markup left out."""
    texts = []
    for name in ("tdavid", "mhcc"):
        module = root / "usr/share/sword/modules/comments/zcom" / name
        for block in sword_blocks(module):
            text = _TAGS.sub(" ", _OSIS_BREAK.sub("\n", block))
            texts += html.unescape(text).split("\n")
    return words_lines(texts)


_POD_COMMAND = re.compile(r"^=\w+.*$", re.MULTILINE)
_POD_CODE = re.compile(r"[A-Z]<+([^<>]*)>+")


def manuals(root: Path) -> list[str]:
    """Perl's pod pages and PostgreSQL's HTML manual, a paragraph a line (pod commands and
    HTML markup left out; code examples kept as they read)."""
    texts = []
    for path in sorted(root.rglob("*.pod")):
        text = _POD_CODE.sub(r"\1", _POD_COMMAND.sub("", path.read_text("utf8", "replace")))
        texts += paragraphs(text)
    for path in sorted(root.rglob("postgresql-doc-15/html/*.html")):
        texts += html_paragraphs(path.read_text("utf8", "replace"))
    return words_lines(texts)


def html_paragraphs(text: str) -> list[str]:
    """An HTML page's paragraphs (a block element a paragraph; scripts, styles and the head
    left out, entities read)."""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
    text = re.sub(r"(?i)</?(p|div|pre|h\d|li|dt|dd|tr|table)\b[^>]*>", "\n\n", text)
    return paragraphs(html.unescape(_TAGS.sub(" ", text)))


def python_docs(root: Path) -> list[str]:
    """Python's documentation (the tutorial, the library and language references, the HOWTOs),
    HTML, a paragraph a line; each page's navigation and the generated index pages left out."""
    texts = []
    for path in sorted(root.rglob("usr/share/doc/python3.11/html/**/*.html")):
        if path.name in (
            "genindex.html",
            "py-modindex.html",
            "search.html",
        ) or path.name.startswith("genindex-"):
            continue
        texts += html_paragraphs(_sphinx_body(path.read_text("utf8", "replace")))
    return words_lines(texts)


def _sphinx_body(page: str) -> str:
    """A Sphinx page's text without its navigation (the header links, the sidebar, the
    footer, repeated on every page): from its main body to the sidebar."""
    start = page.find('role="main"')
    if start < 0:
        return page
    end = page.find('class="sphinxsidebar"', start)
    return page[page.rfind("<", 0, start) : end if end > 0 else len(page)]


def quotations(root: Path) -> list[str]:
    """Every fortune of fortune-mod's data files (``%`` lines between them) as a line; the
    index files (``.dat``), their UTF-8 links (``.u8``) and the ASCII drawings left out."""
    fortunes = []
    for path in sorted((root / "usr/share/games/fortunes").iterdir()):
        if path.suffix or path.is_symlink() or path.name == "ascii-art":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        fortunes += re.split(r"^%$", text, flags=re.MULTILINE)
    return words_lines(fortunes)


def ptb(data_dir: Path | None) -> list[str]:
    """PTB's training split as the book reads it (fetched and verified into ``data_dir``),
    its ``<unk>`` left out."""
    from w2v_jax.data.ptb import read_ptb  # numpy only

    text = read_ptb(data_dir)
    return words_lines(line.replace("<unk>", " ") for line in text.splitlines())


BUILDERS: dict[str, tuple[tuple[str, ...], Callable[[Path], list[str]]]] = {
    "dictionaries": (("dict-gcide", "dict-foldoc", "dict-jargon", "dict-devil"), dictionaries),
    "kernel": (("linux-doc-6.1",), kernel),
    "commentaries": (("sword-comm-tdavid", "sword-comm-mhcc"), commentaries),
    "manuals": (("perl-doc", "postgresql-doc-15"), manuals),
    "python_docs": (("python3.11-doc",), python_docs),
    "quotations": (("fortunes", "fortunes-min"), quotations),
}
CORPORA = (*BUILDERS, "ptb")


def build(name: str, out: Path, data_dir: Path | None = None) -> Path:
    """Write ``out/<name>.txt`` (whole or not at all) from its packages; its path."""
    out.mkdir(parents=True, exist_ok=True)
    if name == "ptb":
        lines = ptb(data_dir)
    else:
        packages, builder = BUILDERS[name]
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run(
                ["apt-get", "download", *packages], cwd=tmp, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise SystemExit(
                    f"error: apt-get download {' '.join(packages)} failed "
                    f"({done.stderr.strip()[-300:]}): run apt-get update first"
                )
            root = Path(tmp) / "x"
            for deb in Path(tmp).glob("*.deb"):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            lines = builder(root)
    path = out / f"{name}.txt"
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)
    return path
