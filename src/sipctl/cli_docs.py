"""``sipctl docs``: the user's documentation (docs/*.md), read from the installed package.

A wheel installed with pip has no docs/ directory; the pages ship in it as ``sipctl.docs``,
and every message that sends a user to a page says ``sipctl docs TOPIC``. A page's links to
another file are printed as what a terminal reader can follow (``for_terminal``)."""

from __future__ import annotations

import re
import sys
import unicodedata
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Annotated

import typer

_PACKAGE = "sipctl.docs"


def pages() -> dict[str, Traversable]:
    """Each topic (a page's file stem) and its page, sorted by topic."""
    found = [entry for entry in files(_PACKAGE).iterdir() if entry.name.endswith(".md")]
    return {entry.name.removesuffix(".md"): entry for entry in sorted(found, key=_name)}


def _name(entry: Traversable) -> str:
    return entry.name


def title(page: Traversable) -> str:
    """A page's first heading, without its '#'s."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def topics_text() -> str:
    """One line per topic: its name, then its title."""
    known = pages()
    width = max(map(len, known))
    return "".join(f"{name.ljust(width)}  {title(page)}\n" for name, page in known.items())


# A Markdown inline link whose target is no URL: [text](target), target without spaces.
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]*)\]\((?P<target>(?![a-z][a-z0-9+.-]*:)[^)\s]+)\)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# Where a page's link leads out of docs/: as a reader of the source finds it
_OUTSIDE = "../"


def for_terminal(text: str, topics: set[str]) -> str:
    """A page as ``sipctl docs`` prints it: each link to a page that ships becomes the
    command that prints it (``[Tutorial](tutorial.md)`` -> ``Tutorial (sipctl docs
    tutorial)``, a section named by its heading), a link out of docs/ names the file in
    sipctl's source. URLs, other files and code (fenced blocks, `spans`) stay as written."""
    out: list[str] = []
    fence = ""
    for line in text.splitlines(keepends=True):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
                fence = ""
            out.append(line)
        elif opened:
            fence = opened[1]
            out.append(line)
        else:
            # odd parts of a split on backticks are code spans
            parts = line.split("`")
            parts[::2] = [_LINK.sub(lambda m: _link(m, text, topics), p) for p in parts[::2]]
            out.append("`".join(parts))
    return "".join(out)


def _link(match: re.Match[str], page: str, topics: set[str]) -> str:
    text, target = match["text"], match["target"]
    path, _, anchor = target.partition("#")
    if path.startswith(_OUTSIDE) and path.endswith(".md"):
        return f"{text} ({path.removeprefix(_OUTSIDE)} in sipctl's source)"
    topic = path.removesuffix(".md")
    if path and (not path.endswith(".md") or topic not in topics):
        return match[0]  # an image, a file beside the page: as written
    where = f"sipctl docs {topic}" if path else ""
    if anchor:
        pages_text = page if not path else _page_text(topic)
        heading = _heading(pages_text, anchor)
        if heading is not None:
            where = f"{where}, section {heading!r}" if where else f"section {heading!r}"
    if not where:
        return match[0]
    if text.removesuffix(".md") == topic:
        return where
    return f"{text} ({where})"


def _page_text(topic: str) -> str:
    return pages()[topic].read_text(encoding="utf-8")


def _heading(text: str, anchor: str) -> str | None:
    """The heading of ``text`` whose anchor (as the documentation site makes it) is
    ``anchor``."""
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if _slug(heading) == anchor:
                return heading
    return None


def _slug(heading: str) -> str:
    """The anchor the site (MkDocs' toc) gives a heading."""
    ascii_text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    words = re.sub(r"[^\w\s-]", "", ascii_text).strip().lower()
    return re.sub(r"[-\s]+", "-", words)


def docs_command(
    topic: Annotated[
        str | None,
        typer.Argument(
            help="The page to print (a name the list shows, e.g. security); none: list them.",
            metavar="TOPIC",
            show_default=False,
            autocompletion=lambda incomplete: [t for t in pages() if t.startswith(incomplete)],
        ),
    ] = None,
) -> None:
    """Print sipctl's documentation: without TOPIC the list of pages, with one that page.

    The pages are the Markdown of the documentation site, installed with sipctl, so they
    match this version. Messages that say "see: sipctl docs NAME" mean one of them.

    Examples:

      sipctl docs

      sipctl docs security

      sipctl docs hosting | less
    """
    if topic is None:
        sys.stdout.write(topics_text())
        return
    page = pages().get(topic.removesuffix(".md"))
    if page is None:
        raise typer.BadParameter(
            f"no page {topic!r}; the topics:\n{topics_text().rstrip()}", param_hint="TOPIC"
        )
    sys.stdout.write(for_terminal(page.read_text(encoding="utf-8"), set(pages())))
