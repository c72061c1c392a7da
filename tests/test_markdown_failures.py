"""plan --markdown of a run that fails is still a merge request's comment that says why: a
failed domain's section carries its marker (the pipeline updates its comment by it), a
multi-line reason keeps its lines (the YAML fix to paste) in one code block, and a run that
fails before any domain's section (a wrong --shard, an unreadable runner profile) says so
on stdout too, with the exit code unchanged."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from sipctl.cli import run
from sipctl.errors import hint_line
from sipctl.reconciler.views import markdown_reason

SECRET = "c2lwY3RsLXNlY3JldC1zaXBjdGwtc2VjcmV0LXNpcGN0bA=="
BASE = "version: 1\ndomain: {domain}\nservers: [{{host: pbx.{domain}, ipv4: [192.0.2.1]}}]\n"
TSIG = "dns: {server: '127.0.0.1:9', tsig: {name: k, secret_env: SIPCTL_TSIG_SECRET}}\n"
_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"

# Text as a merge request or a host writes it into an error: mentions, references, quick
# actions, Markdown, HTML, fences of its own, indentation.
_piece = st.one_of(
    st.sampled_from(list("@/-+#1.)a_ \t`*[]<>!|~&%$\\:\"'")),
    st.sampled_from(["@all", "@group/team", "/merge", "<!--", "-->", "```", "~~~", "  ", "1. "]),
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"], exclude_characters=_BREAKS),
)
_line = st.lists(_piece, max_size=12).map("".join)


def _refused_spec(work: Path, domain: str) -> Path:
    spec = work / f"{domain}.yaml"
    spec.write_text(BASE.format(domain=domain) + TSIG)
    return spec


def _fences(markdown: str) -> list[str]:
    return [t.content for t in MarkdownIt("commonmark").parse(markdown) if t.type == "fence"]


@settings(max_examples=examples(300), deadline=None)
@given(first=_line.filter(str.strip), rest=st.lists(_line, min_size=1, max_size=6))
def test_a_reason_s_lines_after_the_first_stay_verbatim_in_one_code_block(
    first: str, rest: list[str]
) -> None:
    """A failure's first line is prose (neutralised), the lines after it (a YAML fix to
    paste) are one code block holding them as written; nothing outside the block is a
    mention, a link, an image or HTML, whatever the lines hold."""
    message = "\n".join([first, *rest])
    while rest and not rest[-1].strip():
        rest.pop()
    while rest and not rest[0].strip():
        rest.pop(0)
    markdown = "\n".join(markdown_reason("refused", message))
    tokens = MarkdownIt("commonmark").parse(markdown)
    fences = [t for t in tokens if t.type == "fence"]
    if rest:
        assert len(fences) == 1, markdown
        assert fences[0].content == "\n".join(rest) + "\n", markdown
    else:
        assert not fences, markdown
    outside = [t for t in tokens if t.type != "fence"]
    assert {t.type for t in outside} <= {"paragraph_open", "inline", "paragraph_close"}, markdown
    children = [c for t in outside if t.type == "inline" for c in t.children or []]
    assert {c.type for c in children} <= {"text", "code_inline"}, markdown
    assert all(c.content.startswith("@") for c in children if c.type == "code_inline")
    prose = "".join(c.content if c.type == "text" else "\x00" for c in children)
    assert not re.search(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]", prose), markdown
    assert "".join(c.content for c in children) == f"refused: {first}".strip()


def test_a_refused_credential_s_fix_is_one_code_block_alone_and_in_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner profile's refusal ends with the YAML an admin pastes: it keeps its lines
    and indentation in the comment, of one spec and of a directory's."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", SECRET)
    one = _refused_spec(tmp_path, "mysite.ru")
    assert run(["plan", "-f", str(one), "--markdown", "--no-color"]) == 3
    alone = capsys.readouterr().out
    (tmp_path / "dir").mkdir()
    _refused_spec(tmp_path / "dir", "mysite.ru")
    _refused_spec(tmp_path / "dir", "other.ru")
    assert run(["plan", "-f", str(tmp_path / "dir"), "--markdown", "--no-color"]) == 3
    several = capsys.readouterr().out
    fix = '    credentials:\n      "SIPCTL_TSIG_SECRET":\n        kind: tsig\n'
    assert SECRET not in alone + several
    assert len(_fences(alone)) == 1 and _fences(alone)[0].startswith(fix), alone
    fixes = [f for f in _fences(several) if f.startswith(fix)]
    assert len(fixes) == 2 and 'zones: ["other.ru"]' in fixes[1], several
    # each failed section carries its domain's marker, as its plan would
    for domain in ("mysite.ru", "other.ru"):
        marker = f"<!-- sipctl-plan:{domain} -->\n### sipctl plan for `{domain}`\n\nrefused: "
        assert marker in several, several
    assert alone.startswith("<!-- sipctl-plan:mysite.ru -->\n"), alone


@pytest.mark.parametrize("why", ["shard", "profile"])
def test_a_run_that_fails_before_any_domain_still_says_why_in_the_comment(
    why: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the arguments parse, a run can fail before any domain has a section (a
    --shard out of range, a runner profile it cannot read): stdout, the comment, says why
    (of one spec under its marker), stderr as before, the exit code the error's."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE.format(domain="mysite.ru") + TSIG)  # a credential: the profile's
    if why == "shard":
        args, marker = ["-f", str(tmp_path), "--shard", "5/2"], None
    else:
        monkeypatch.setenv("SIPCTL_PROFILE", str(tmp_path / "missing.yaml"))
        args, marker = ["-f", str(spec)], "<!-- sipctl-plan:mysite.ru -->"
    assert run(["plan", *args, "--markdown", "--no-color"]) == 1
    captured = capsys.readouterr()
    out = captured.out
    said = "--shard '5/2'" if why == "shard" else "cannot read the runner profile"
    assert said in captured.err
    if marker is None:
        assert out.startswith("### sipctl plan\n\nerror: "), out
    else:
        assert out.startswith(f"{marker}\n### sipctl plan for `mysite.ru`\n\nerror: "), out
    html = MarkdownIt("commonmark").render(out)
    assert html.count("<!--") == (marker is not None), html
    text = re.sub(r"<[^>]+>", "", html).replace("\\", "")
    assert said.replace("'", "&#x27;") in text or said in text, html


def test_a_command_line_s_mistake_stays_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json with --markdown is the command line's mistake, told before any comment is
    promised: stderr only (a pipeline's fixed command line, not a merge request's)."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE.format(domain="mysite.ru"))
    code = run(["plan", "-f", str(spec), "--markdown", "--json"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == "", captured


def _hint_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  hint: ")]


def _comment_text(markdown: str) -> str:
    """What a reader sees of a comment: its rendered text, without tags or escapes."""
    return html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(markdown)))


@pytest.mark.parametrize(
    "case",
    ["one spec", "a directory", "a directory in workers", "--out's directory", "--out device"],
)
def test_the_comment_ends_with_the_hint_the_terminal_prints(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure the terminal follows with a ``hint:`` line (what to do) has that line in
    its comment too, in the terminal's words: a domain's refusal (alone, and each domain's
    of a directory) and a run's failure before any domain (a --out that cannot be)."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
    monkeypatch.setenv("SIPCTL_TSIG_SECRET", SECRET)
    spec = _refused_spec(tmp_path, "mysite.ru")
    args = ["-f", str(spec)]
    if case.startswith("--out"):
        spec.write_text(BASE.format(domain="mysite.ru"))  # plans; only its --out fails
        out = tmp_path / "missing" / "plan.json" if case == "--out's directory" else "/dev/null"
        args += ["--out", str(out)]
    run(["plan", *args, "--no-color"])
    terminal = _hint_lines(capsys.readouterr().err)
    assert len(terminal) == 1, terminal
    several = case.startswith("a directory")
    if several:  # each failed domain's section says it, planned here or in a worker process
        (tmp_path / "dir").mkdir()
        _refused_spec(tmp_path / "dir", "mysite.ru")
        _refused_spec(tmp_path / "dir", "other.ru")
        workers = "2" if case == "a directory in workers" else "1"
        args = ["-f", str(tmp_path / "dir"), "--parallel", workers]
    code = run(["plan", *args, "--markdown", "--no-color"])
    captured = capsys.readouterr()
    assert code == (1 if case.startswith("--out") else 3), captured
    assert _comment_text(captured.out).count(terminal[0]) == (2 if several else 1)
    if several:  # and the terminal's summary, of a plan made in either way
        run(["plan", *args, "--no-color"])
        shown = capsys.readouterr()
        assert shown.out.splitlines().count(terminal[0]) == 2, shown
    assert SECRET not in captured.out


@settings(max_examples=examples(100), deadline=None)
@given(message=_line.filter(str.strip), hint=_line.filter(str.strip))
def test_a_hint_is_the_reason_s_last_line_as_prose(message: str, hint: str) -> None:
    """Whatever a hint holds (a command, a path, text an error quotes), it is the reason's
    last paragraph, the terminal's line, acted on never: no mention, link or HTML."""
    markdown = "\n".join(markdown_reason("error", message, hint))
    tokens = MarkdownIt("commonmark").parse(markdown)
    inline = [t for t in tokens if t.type == "inline"]
    children = inline[-1].children or []
    assert {c.type for c in children} <= {"text", "code_inline"}, markdown
    assert "".join(c.content for c in children) == hint_line(hint).strip(), markdown
