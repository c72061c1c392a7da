"""``sipctl docs``: the pages ship with sipctl, and no message sends a user to a file a pip
install does not have (``docs/security.md``); every ``sipctl docs X`` a text names exists."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from fixtures.common import REPO
from markdown_it import MarkdownIt

from sipctl import manual
from sipctl.cli import run
from sipctl.cli_docs import for_terminal, pages

SOURCES = ("src", "reconciler", "providers", "schemas")
DOCS_FILE = re.compile(r"\bdocs/[A-Za-z0-9_-]+\.md\b")
# Other files of the repository a wheel does not have either: README's sections, the
# CHANGELOG, the examples, the benchmarks and scripts.
REPO_FILE = re.compile(
    r"\b(?:README|CHANGELOG)\b(?:\.md)?|\b(?:examples|bench|scripts|tests)/[\w./-]+"
)
# across one line break too: --help wraps its text (not a blank line: examples)
DOCS_COMMAND = re.compile(r"\bsipctl(?: |\n *)docs(?: |\n *)([a-z][a-z0-9-]*)")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstrings of modules, classes and functions: for a maintainer. A
    typer command's docstring is its --help, which the help walk checks as printed."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def source_strings() -> Iterator[tuple[str, str, bool]]:
    """(where, text, is a docstring) of every string literal in sipctl's source."""
    yield from _source_strings()


@cache
def _source_strings() -> tuple[tuple[str, str, bool], ...]:
    """Parsed once for this module's tests (0.8 s of CPU each time): the source does not
    change while they run."""
    found = []
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    where = f"{path.relative_to(REPO)}:{node.lineno}"
                    found.append((where, node.value, id(node) in docstrings))
    return tuple(found)


def help_texts() -> Iterator[tuple[str, str]]:
    """(command, --help) of the root and every command, as sipctl prints them."""
    for name, text, command, context in manual.commands():
        yield name, text
        if name == "sipctl":
            continue  # the root's commands come next, each with its own help
        # a group's subcommands (fleet status...)
        for sub in getattr(command, "list_commands", lambda _ctx: [])(context):
            child = command.get_command(context, sub)
            child_context = child.context_class(child, info_name=sub, parent=context)
            yield f"{name} {sub}", child.get_help(child_context)


def test_no_user_facing_text_names_a_docs_file() -> None:
    """--help and every string a message is made of say 'sipctl docs NAME': a wheel has no
    docs/ directory beside it."""
    found = [f"{name}: {m}" for name, text in help_texts() for m in DOCS_FILE.findall(text)]
    found += [
        f"{where}: {m}"
        for where, text, docstring in source_strings()
        if not docstring
        for m in DOCS_FILE.findall(text)
    ]
    assert not found, "say 'sipctl docs NAME' instead:\n" + "\n".join(found)


def test_no_user_facing_text_sends_a_user_to_another_file_of_the_repository() -> None:
    """Not README's sections either (a message said 'README: Changing the domain'): what a
    user needs is on a page 'sipctl docs' prints. A string that is only a file's name (the
    README sipctl render writes) sends nobody anywhere."""
    found = [f"{name}: {m}" for name, text in help_texts() for m in REPO_FILE.findall(text)]
    found += [
        f"{where}: {m}"
        for where, text, docstring in source_strings()
        if not docstring and text.strip() != "README"
        for m in REPO_FILE.findall(text)
    ]
    assert not found, "put it on a docs page and say 'sipctl docs NAME':\n" + "\n".join(found)


def test_every_sipctl_docs_topic_named_exists() -> None:
    topics = set(pages())
    texts = [(name, text) for name, text in help_texts()]
    texts += [(where, text) for where, text, _docstring in source_strings()]
    for path in [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]:
        texts.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8")))
    named = [(where, topic) for where, text in texts for topic in DOCS_COMMAND.findall(text)]
    assert named, "the walk found no 'sipctl docs X' at all"
    unknown = [f"{where}: sipctl docs {topic}" for where, topic in named if topic not in topics]
    assert not unknown, f"no such page (topics: {sorted(topics)}):\n" + "\n".join(unknown)


def test_the_installed_pages_are_docs_markdown() -> None:
    assert set(pages()) == {path.stem for path in (REPO / "docs").glob("*.md")}


def test_docs_lists_the_topics_with_their_titles(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["docs"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert set(lines) == set(pages())
    assert "Trust model: the spec says what, the admin says how" in lines["security"]


def test_docs_topic_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["docs", "hosting"]) == 0
    page = Path(REPO / "docs" / "hosting.md").read_text()
    assert capsys.readouterr().out == for_terminal(page, set(pages()))
    # a page that links to no other page is printed as written
    plain = next(t for t in sorted(pages()) if not _raw_page_links(_source(t)))
    assert run(["docs", plain]) == 0
    assert capsys.readouterr().out == _source(plain)
    assert run(["docs", "security.md"]) == 0  # the file's name as the old messages said it
    assert capsys.readouterr().out.startswith("# Trust model")


def test_an_unknown_topic_is_a_usage_error_listing_the_topics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["docs", "securty"]) == 1
    captured = capsys.readouterr()
    assert not captured.out
    assert "no page 'securty'" in captured.err
    assert "read-only-plan" in captured.err and "security" in captured.err


def _source(topic: str) -> str:
    return (REPO / "docs" / f"{topic}.md").read_text(encoding="utf-8")


def _raw_page_links(markdown: str) -> list[str]:
    """The targets of the links a CommonMark parser finds in ``markdown`` that name a
    file's page (``*.md``, with or without ``#section``), not a URL."""
    found = []
    for token in MarkdownIt("commonmark").parse(markdown):
        for child in token.children or []:
            href = str(child.attrs.get("href", "")) if child.type == "link_open" else ""
            if href.partition("#")[0].endswith(".md") and "://" not in href:
                found.append(href)
    return found


@pytest.mark.parametrize("topic", sorted(pages()))
def test_docs_prints_no_link_to_a_page_raw(topic: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A page's [hosting](hosting.md) means nothing in a terminal: it is printed as the
    command that shows that page, and each such topic exists."""
    source = (REPO / "docs" / f"{topic}.md").read_text(encoding="utf-8")
    assert run(["docs", topic]) == 0
    printed = capsys.readouterr().out
    assert _raw_page_links(printed) == []
    # a page that names another as a path (`docs/security.md`) is a link to it instead
    assert DOCS_FILE.findall(printed) == [], "link the page: [security](security.md)"
    named = set(DOCS_COMMAND.findall(printed)) - set(DOCS_COMMAND.findall(source))
    assert named <= set(pages()), named
    if _raw_page_links(source):  # the page linked to others: each is named now
        assert named or "in sipctl's source" in printed
    # code is printed as written: the fenced blocks are the same
    fences = [t.content for t in MarkdownIt("commonmark").parse(source) if t.type == "fence"]
    assert fences == [
        t.content for t in MarkdownIt("commonmark").parse(printed) if t.type == "fence"
    ]


def test_a_link_to_a_section_names_its_heading() -> None:
    heading = next(
        line.lstrip("#").strip()
        for line in (REPO / "docs" / "security.md").read_text().splitlines()[1:]
        if line.startswith("## ")
    )
    anchor = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower())
    page = (
        f"# T\n\nSee [the profiles](security.md#{anchor}), [spec.md](spec.md), "
        "[the site](https://example.com/x.md), `[code](spec.md)`, ![shot](webrtc-page.png)\n"
        "and [gone](nowhere.md).\n\n```\n[NAME](+)\n[x](spec.md)\n```\n"
    )
    printed = for_terminal(page, set(pages()))
    assert printed == (
        f"# T\n\nSee the profiles (sipctl docs security, section {heading!r}), sipctl docs "
        "spec, [the site](https://example.com/x.md), `[code](spec.md)`, "
        "![shot](webrtc-page.png)\nand [gone](nowhere.md).\n\n```\n[NAME](+)\n[x](spec.md)\n```\n"
    )
