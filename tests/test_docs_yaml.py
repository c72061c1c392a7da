"""Every ```yaml block of README.md and docs/ is a document sipctl accepts, loaded by the loader
a user's file goes through: a spec (whole, or an excerpt merged into the file it belongs to),
the host profile, the runner profile or the fleet configuration. A block of two files side by
side (``# pbx1.yaml    # alpha.example.yaml``) is two documents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.common import REPO

from sipctl.cli import run
from sipctl.cli_common import offline_problems
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.profiles import HostProfile, RunnerProfile, parse_profile

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
# The second file's heading of a block that shows two files side by side.
SECOND_COLUMN = re.compile(r"^#\s.*?\S\s{2,}(#\s)")


@dataclass(frozen=True)
class Document:
    page: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def heading(self) -> str:
        first = self.text.lstrip().splitlines()[0] if self.text.strip() else ""
        return first if first.startswith("#") else ""


def _blocks(page: Path) -> list[tuple[int, str]]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if opened is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].strip().startswith("```"):
            end += 1
        if opened.group(2) in ("yaml", "yml"):
            indent = len(opened.group(1))
            body = [line[indent:] for line in lines[index + 1 : end]]
            blocks.append((index + 2, "\n".join(body) + "\n"))
        index = end + 1
    return blocks


def _columns(text: str) -> list[str]:
    lines = text.splitlines()
    second = SECOND_COLUMN.match(lines[0]) if lines else None
    if second is None:
        return [text]
    cut = second.start(1)

    # Past the headings, a comment in the second column still belongs to the first's line.
    def its_own(line: str) -> bool:
        return len(line) > cut and not line[cut:].startswith("#")

    left = [lines[0][:cut].rstrip()]
    left += [line[:cut].rstrip() if its_own(line) else line for line in lines[1:]]
    right = [lines[0][cut:]] + [line[cut:] for line in lines[1:] if its_own(line)]
    return ["\n".join(left) + "\n", "\n".join(right) + "\n"]


def _documents() -> list[Document]:
    found = []
    for page in PAGES:
        for line, text in _blocks(page):
            for column in _columns(text):
                found.append(Document(page.relative_to(REPO).as_posix(), line, column))
    return found


DOCUMENTS = _documents()


def _merged(base: dict[str, Any], excerpt: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in excerpt.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _file_name(document: Document) -> str | None:
    """The file a block headed ``# NAME.yaml`` (a hosting directory's file) shows."""
    words = document.heading.split()
    return words[1] if len(words) > 1 and words[1].endswith(".yaml") else None


def _hosting_directory(document: Document, data: dict[str, Any], directory: Path) -> None:
    """The page's whole files in ``directory``, with this block in the file it shows."""
    for other in DOCUMENTS:
        name = _file_name(other)
        if other.page == document.page and name and "version" in yaml.safe_load(other.text):
            (directory / name).write_text(other.text)
    # The files of one block side by side go together (a customer's page needs the host's wss).
    for column in DOCUMENTS:
        if (column.page, column.line) != (document.page, document.line):
            continue
        name = _file_name(column)
        assert name is not None, f"{column.where}: a block side by side names both files"
        whole = directory / name
        assert whole.exists(), f"{column.where}: no whole {name} on the page for this excerpt"
        excerpt = yaml.safe_load(column.text)
        if "version" in excerpt:
            whole.write_text(column.text)
        else:
            merged = _merged(yaml.safe_load(whole.read_text()), excerpt)
            whole.write_text(yaml.safe_dump(merged, sort_keys=False))


def _spec_text(data: dict[str, Any]) -> str:
    """An excerpt of a spec, in the example spec (without its browsers' WSS and page: an
    excerpt may set what does not go with them yet, as unknown_callers: challenge)."""
    base = yaml.safe_load((REPO / "examples" / "mysite.yaml").read_text())
    del base["transports"]["wss"], base["webrtc"]
    return yaml.safe_dump(_merged(base, data), sort_keys=False)


def test_the_docs_have_the_yaml_blocks_this_test_knows() -> None:
    # Blocks side by side are split, so a lost column shows as a lower count.
    assert len(DOCUMENTS) >= 12, [document.where for document in DOCUMENTS]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.where for d in DOCUMENTS])
def test_every_yaml_block_of_the_docs_is_accepted(document: Document, tmp_path: Path) -> None:
    data = yaml.safe_load(document.text)
    assert isinstance(data, dict), f"{document.where}: not a mapping"
    if "/etc/sipctl/host.yaml" in document.heading:
        parse_profile(document.text, document.where, HostProfile)
    elif "credentials" in data or "local_layers" in data:
        parse_profile(document.text, document.where, RunnerProfile)
    elif "namespace" in data:
        from sipctl.reconciler.fleet.config import load_config

        config = tmp_path / "fleet.yaml"
        config.write_text(document.text)
        load_config(config)
    elif _file_name(document) is not None:
        _hosting_directory(document, data, tmp_path)
        assert run(["validate", "-f", str(tmp_path)]) == 0, document.where
    else:
        text = document.text if "version" in data else _spec_text(data)
        loaded = load_spec_text(text, document.where, tmp_path)
        assert offline_problems(loaded) == [], document.where


def test_the_fleet_configuration_shown_holds_the_defaults(tmp_path: Path) -> None:
    """docs/fleet.md says a key left out has the value its example shows, but for three."""
    from sipctl.reconciler.fleet.config import FleetConfig, load_config

    [shown] = [d for d in DOCUMENTS if d.page == "docs/fleet.md" and "namespace" in d.text]
    config = tmp_path / "fleet.yaml"
    config.write_text(shown.text)
    others = {"address", "namespace", "rate_limits"}
    assert load_config(config).model_dump(exclude=others) == FleetConfig().model_dump(
        exclude=others
    )
