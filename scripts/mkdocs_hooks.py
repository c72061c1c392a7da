"""MkDocs hooks (mkdocs.yml): the pages that have one source elsewhere are generated at build
time, never copied into docs/, so the site cannot say something the source does not.

- index.md: README.md, its links made relative to the site;
- pipelines.md: examples/gitops/README.md, then the two pipeline files themselves;
- changelog.md: CHANGELOG.md;
- commands.md: every command's --help (sipctl schema --kind commands);
- sipctl.1: the man page from the same source (sipctl schema --kind man).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
_DOCS_LINK = re.compile(r"\]\(docs/")
_CODE_PATH = re.compile(r"\]\((?!https?:|#)([^)]+)\)")


def _site_links(text: str) -> str:
    """README's links as the site has them: docs/X.md -> X.md, CHANGELOG.md -> the page."""
    text = _DOCS_LINK.sub("](", text)
    return text.replace("](CHANGELOG.md)", "](changelog.md)")


def _pipelines() -> str:
    gitops = ROOT / "examples" / "gitops"
    readme = (gitops / "README.md").read_text(encoding="utf-8")
    readme = readme.replace("`docs/read-only-plan.md`", "[Read-only plan jobs](read-only-plan.md)")
    parts = [readme.rstrip("\n"), ""]
    for name, title in (("github-actions.yml", "GitHub Actions"), ("gitlab-ci.yml", "GitLab CI")):
        text = (gitops / name).read_text(encoding="utf-8")
        parts += [
            f"## {title}: `examples/gitops/{name}`",
            "",
            "```yaml",
            text.rstrip("\n"),
            "```",
            "",
        ]
    return "\n".join(parts)


def _generated() -> dict[str, str]:
    from sipctl.schemas.outputs import output_text

    return {
        "index.md": _site_links((ROOT / "README.md").read_text(encoding="utf-8")),
        "pipelines.md": _pipelines(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"),
        "commands.md": output_text("commands"),
        "sipctl.1": output_text("man"),
    }


# A page of docs/ links the pipelines' source, which is what a reader of the repository finds;
# the site has it as its generated page.
_PIPELINES_SOURCE = "](../examples/gitops/README.md"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return markdown.replace(_PIPELINES_SOURCE, "](pipelines.md")


def on_files(files: Files, config: Any) -> Files:
    for uri, content in _generated().items():
        files.append(File.generated(config, uri, content=content))
    return files
