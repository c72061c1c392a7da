"""The click-to-call page as files: rendered by the CLI, self-contained, escaped, published,
and its vendored SIP.js exactly what scripts/vendor-sipjs builds from the pinned npm package."""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fixtures.common import EXAMPLES, REPO, require
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sipctl.cli import app
from sipctl.reconciler.render.webrtc import page_files
from sipctl.schemas.loader import load_spec, load_spec_text

VENDOR = REPO / "reconciler" / "render" / "webrtc_page" / "vendor"

SPEC = """\
version: 1
domain: mysite.ru
transports:
  udp: {port: 5060}
  wss: {port: 8089}
servers:
  - host: asterisk.mysite.ru
    ipv4: [203.0.113.10]
users:
  director: 105
  alex: 106
  "101": 101
webrtc:
  page: {title: "Call us", names: [director, alex]}
"""


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.status = 0
        self.hangup = 0
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-sipctl-call" in found:
            self.calls.append(str(found["data-sipctl-call"]))
        self.status += "data-sipctl-status" in found
        self.hangup += "data-sipctl-hangup" in found
        for key in ("src", "href"):
            if found.get(key):
                self.sources.append(str(found[key]))


def test_render_writes_the_page_for_the_example(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["render", "-f", str(EXAMPLES / "mysite.yaml"), "--dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    page = tmp_path / "webrtc"
    for name in ("index.html", "sipctl-call.js", "sipctl-call.css", "vendor/sip.js"):
        assert (page / name).is_file(), name
    parsed = _Collect()
    parsed.feed((page / "index.html").read_text())
    spec = load_spec(EXAMPLES / "mysite.yaml").spec
    assert parsed.calls == list(spec.page_names())
    assert parsed.status == 1 and parsed.hangup == 1


def test_page_loads_nothing_from_another_host() -> None:
    files = page_files(load_spec_text(SPEC).spec)
    parsed = _Collect()
    parsed.feed(files["index.html"])
    assert parsed.sources and all(not re.match(r"[a-z]+:|//", s) for s in parsed.sources)
    assert "connect-src wss://asterisk.mysite.ru:8089/ws;" in files["index.html"]
    for name in ("sipctl-call.js", "sipctl-call.css"):
        assert not re.search(r"https?://|//[a-z]", files[name]), name
    imports = re.findall(r'from "([^"]+)"', files["sipctl-call.js"])
    assert imports == ["./vendor/sip.js"]
    assert "password" not in files["index.html"].lower()
    assert 'data-sipctl-from="sip:guest@webrtc.mysite.ru"' in files["index.html"]


def test_title_is_text_never_markup() -> None:
    hostile = SPEC.replace('title: "Call us"', "title: '</title><script>alert(1)</script>'")
    index = page_files(load_spec_text(hostile).spec)["index.html"]
    assert "<script>alert" not in index
    assert "&lt;/title&gt;&lt;script&gt;" in index


def test_publish_writes_the_page_and_a_second_plan_is_empty(tmp_path: Path) -> None:
    data = yaml.safe_load(SPEC)
    data["webrtc"]["publish"] = "dir:web:/var/www/html/call"
    spec_file = tmp_path / "sipctl.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    applied = runner.invoke(app, ["apply", "-f", str(spec_file), "--auto-approve"])
    assert applied.exit_code == 0, applied.output
    published = tmp_path / "web" / "var" / "www" / "html" / "call"
    files = page_files(load_spec(spec_file).spec)
    for name, text in files.items():
        assert (published / name).read_bytes() == text.encode()
    again = runner.invoke(app, ["plan", "-f", str(spec_file), "--detailed-exitcode"])
    assert again.exit_code == 0, again.output
    # publish removed: the page and sipctl's record of it (on this machine) go again
    del data["webrtc"]["publish"]
    spec_file.write_text(yaml.safe_dump(data))
    removed = runner.invoke(app, ["apply", "-f", str(spec_file), "--auto-approve", "--force"])
    assert removed.exit_code == 0, removed.output
    assert not (published / "index.html").exists()


@pytest.mark.programs
def test_vendored_sipjs_is_the_scripts_output(tmp_path: Path) -> None:
    require(shutil.which("npm") is not None, "npm (Debian package npm)")
    done = subprocess.run(
        [str(REPO / "scripts" / "vendor-sipjs"), str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("sip.js", "LICENSE.sip.js"):
        assert (tmp_path / name).read_bytes() == (VENDOR / name).read_bytes(), name


@pytest.mark.parametrize("name", ["sip.js", "LICENSE.sip.js"])
def test_vendored_files_ship_in_the_package(name: str) -> None:
    from importlib import resources

    packaged = resources.files("sipctl.reconciler.render") / "webrtc_page" / "vendor" / name
    assert packaged.read_bytes() == (VENDOR / name).read_bytes()


class _Texts(html.parser.HTMLParser):
    """The text of the page's <title> and <h1>, as a browser's parser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open = tag if tag in ("title", "h1") else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.texts[self._open] = self.texts.get(self._open, "") + data


# Any one-line title, and the page's own placeholders most of all.
TITLES = (
    st.lists(
        st.sampled_from(["{{", "}}", "buttons", "csp", "assets", "title", "<", "&", " "])
        | st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf")),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(lambda title: title.strip() != "")
)


@settings(max_examples=examples(200), deadline=None)
@given(TITLES)
def test_any_title_is_the_pages_title_and_heading_as_written(title: str) -> None:
    # a title "{{buttons}}" put the call buttons' markup into <title> and <h1>: the page was
    # filled in placeholder by placeholder, each value searched again for the next ones
    text = SPEC.replace('title: "Call us"', f"title: {json.dumps(title, ensure_ascii=False)}")
    index = page_files(load_spec_text(text).spec)["index.html"]
    texts, calls = _Texts(), _Collect()
    texts.feed(index)
    calls.feed(index)
    assert texts.texts == {"title": title, "h1": title}
    assert calls.calls == ["director", "alex"]
