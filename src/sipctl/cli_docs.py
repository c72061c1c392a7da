"""``sipctl docs``: the user's documentation (docs/*.md), read from the installed package.

A wheel installed with pip has no docs/ directory; the pages ship in it as ``sipctl.docs``,
and every message that sends a user to a page says ``sipctl docs TOPIC``."""

from __future__ import annotations

import sys
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


def docs_command(
    topic: Annotated[
        str | None,
        typer.Argument(
            help="The page to print (a name the list shows, e.g. security); none: list them.",
            metavar="TOPIC",
            show_default=False,
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
    sys.stdout.write(page.read_text(encoding="utf-8"))
