"""Plans in the spec's words: what a reviewer reads first, the file lines under it.

The plans are real: a zone file and dir: targets (no servers needed), planned, applied and
planned again through the CLI, so the 'before' side is what sipctl reads back.
"""

from __future__ import annotations

import itertools
import json
import pickle
import re
from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.errors import UnsafePlanError
from sipctl.reconciler.views import MARKDOWN_LIMIT, render_markdown

ZONE = """\
$TTL 3600
@ IN SOA ns1.mysite.ru. hostmaster.mysite.ru. 1 3600 600 86400 300
@ IN NS ns1.mysite.ru.
ns1 IN A 192.0.2.1
"""

SPEC = """\
version: 1
domain: mysite.ru
servers:
  - host: asterisk.mysite.ru
    ipv4: [203.0.113.10]
users:
  director: 105
  sales: {SALES}
rooms:
  seminar: {max_members: 20}
dns:
  provider: zonefile
  file: mysite.ru.zone
asterisk:
  target: dir:pbx
firewall:
  target: dir:pbx
  persist: /etc/iptables.up
  extra: [EXTRA]
"""


def _spec(tmp_path: Path, sales: str = "{ring: [106, 107], fallback: 101}", extra: str = "") -> str:
    (tmp_path / "mysite.ru.zone").write_text(ZONE) if not (
        tmp_path / "mysite.ru.zone"
    ).exists() else None
    path = tmp_path / "sipctl.yaml"
    path.write_text(SPEC.replace("{SALES}", sales).replace("[EXTRA]", f"[{extra}]"))
    return str(path)


def test_the_plan_speaks_in_the_spec_s_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path)
    assert run(["plan", "-f", spec, "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "+ user sales → 106 & 107 (20 s), then 101" in out
    assert "+ user director → 105" in out
    assert "+ room seminar → room (ConfBridge), at most 20 members" in out
    assert out.count("room seminar") == 1, "a room is one line of the plan"
    assert "+ dns SRV _sip._udp.mysite.ru 10 0 5060 asterisk.mysite.ru" in out
    assert "+ firewall allow udp/10000-20000" in out
    assert "+ firewall base rules" in out  # boilerplate in one line
    assert "exten =>" not in out and "Dial(" not in out and "h,1" not in out
    assert run(["plan", "-f", spec, "--no-color", "-v"]) == 0
    detailed = capsys.readouterr().out
    assert "+ user sales → 106 & 107 (20 s), then 101" in detailed
    assert "Dial(PJSIP/106&PJSIP/107,20)" in detailed  # the file lines, under -v


def test_a_change_is_told_against_what_is_live(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path)
    assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 0, capsys.readouterr()
    capsys.readouterr()
    spec = _spec(tmp_path, sales="{ring: [106, 108], fallback: 101}", extra="udp/4000-4999")
    assert run(["plan", "-f", spec, "--no-color", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    described = [
        line for t in data["targets"] for c in t["changes"] for line in c.get("described", [])
    ]
    assert "~ user sales → 106 & 108 (20 s), then 101 (was 106 & 107 (20 s), then 101)" in described
    assert "+ firewall allow udp/4000-4999" in described
    assert not any("director" in line for line in described)  # unchanged names stay out
    assert not any(line.startswith("+ dns") for line in described)


def test_markdown_has_marker_details_refusals_and_notes_as_a_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path)
    assert run(["plan", "-f", spec, "--markdown"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("<!-- sipctl-plan:mysite.ru -->\n")
    head, _, details = md.partition("<details>")
    assert "+ user sales → 106 & 107 (20 s), then 101" in head
    assert "Dial(PJSIP/106&PJSIP/107,20)" in details
    assert "\n> " not in md  # notes are a list: GitLab merges '>' lines into one
    assert "\n- " in md.split("Notes:")[1]
    assert run(["plan", "-f", spec, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["domains"][0]["plan"]
    data["refusals"] = ["dns zonefile:x: the plan deletes or replaces 3 of 4 managed records"]
    refused = render_markdown(data)
    assert "**apply will refuse this plan**" in refused
    assert "- dns zonefile:x: the plan deletes or replaces 3 of 4" in refused


def test_a_refusal_for_safety_pickles_whole() -> None:
    """Its reasons are kept apart from its message (a plan's view lists them, the error then
    points there), and it still crosses a process boundary as every error does."""
    refusal = UnsafePlanError("refused for safety (use --force if this is really meant)", ["a"])
    assert refusal.message.endswith(":\n  a")
    for error in (refusal, refusal.listed_above()):
        copy = pickle.loads(pickle.dumps(error))
        assert (copy.message, copy.reasons, copy.exit_code) == (error.message, ["a"], 3)
    assert refusal.listed_above().message.endswith("): see the reasons above")


def test_markdown_stays_below_github_s_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MARKDOWN_LIMIT < 65_536
    users = "".join(f"  user{i}: {1000 + i}\n" for i in range(3000))
    path = tmp_path / "big.yaml"
    (tmp_path / "mysite.ru.zone").write_text(ZONE)
    path.write_text(_spec_text_with_users(users))
    assert run(["plan", "-f", str(path), "--markdown"]) == 0
    md = capsys.readouterr().out
    assert len(md) <= MARKDOWN_LIMIT
    assert "the whole plan is in the pipeline's artefact" in md
    assert md.rstrip().endswith("</sub>")


def _spec_text_with_users(users: str) -> str:
    return SPEC.replace("users:\n  director: 105\n  sales: {SALES}\n", "users:\n" + users).replace(
        "[EXTRA]", "[]"
    )


def test_plan_json_follows_its_published_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    spec = _spec(tmp_path)
    assert run(["schema", "--output", "plan"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert run(["plan", "-f", spec, "--json"]) == 0
    jsonschema.validate(json.loads(capsys.readouterr().out), schema)
    assert run(["schema", "--output", "audit"]) == 0
    assert "properties" in json.loads(capsys.readouterr().out)


def test_drift_of_a_file_is_a_diff_not_the_whole_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import jsonschema

    spec = tmp_path / "pbx.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.ru\nusers:\n  director: 105\n  alex: 106\n"
        "asterisk:\n  target: dir:pbx\n"
    )
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    dialplan = tmp_path / "pbx" / "etc" / "asterisk" / "extensions_sipctl.conf"
    dialplan.write_text(dialplan.read_text().replace("Dial(PJSIP/105,30)", "Dial(PJSIP/999,30)"))
    assert run(["drift", "-f", str(spec), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert run(["schema", "--output", "drift"]) == 0
    jsonschema.validate(report, json.loads(capsys.readouterr().out))
    report = report["domains"][0]["drift"]
    [item] = [d for t in report["targets"] for d in t["drift"]]
    assert item["name"] == "extensions_sipctl.conf"
    assert any("Dial(PJSIP/999,30)" in line and line.startswith("+") for line in item["diff"])
    assert any("Dial(PJSIP/105,30)" in line and line.startswith("-") for line in item["diff"])
    assert not any("alex" in line and "director" in line for line in item["diff"])
    assert run(["drift", "-f", str(spec), "--no-color"]) == 2
    out = capsys.readouterr().out
    assert "Dial(PJSIP/999,30)" in out and "unchanged" in out


_RECORDS = st.lists(st.sampled_from(["192.0.2.1", "192.0.2.2", "192.0.2.3"]), unique=True)


@given(before=_RECORDS, after=_RECORDS)
@settings(max_examples=examples(60), deadline=None)
def test_the_summary_counts_the_lines_of_the_plan(before: list[str], after: list[str]) -> None:
    """The summary's numbers are the +, ~ and - lines the plan shows: one unit, whatever the
    records beneath; the safety limit keeps counting records."""
    from sipctl.reconciler.describe import describe_change, describe_dns
    from sipctl.reconciler.plan import Change
    from sipctl.reconciler.resources import Address
    from sipctl.reconciler.views import described_lines, render_human, summary_line

    def value(records: list[str]) -> dict[str, object] | None:
        return {"ttl": 300, "records": records} if records else None

    old, new = value(before), value(after)
    if old == new:
        return
    action = "create" if old is None else "delete" if new is None else "update"
    change = Change(Address("dns", "A", "sip"), action, old, new)
    change.described = describe_change(describe_dns, change)
    added, changed, removed = change.unit_counts()
    shown = [line[:1] for line in described_lines(change.to_json())]
    assert (added, changed, removed) == (shown.count("+"), shown.count("~"), shown.count("-"))
    assert removed == change.removed_units() or action == "update"
    line = summary_line({"summary": {"add": added, "change": changed, "destroy": removed}})
    assert line == f"Plan: {added} to add, {changed} to change, {removed} to destroy."
    del render_human


_md_name = st.text(alphabet="ab`<>!-[]()|*_~&\\ @:#", min_size=1, max_size=24)


def _inline_children(markdown: str, tag: str) -> list[list[tuple[str, str]]]:
    """(type, content) of the inline tokens of each ``tag`` block (h2, p) as CommonMark
    (markdown-it, as GitHub and GitLab) reads them."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    found = []
    for opening, inline in itertools.pairwise(tokens):
        if opening.tag == tag and opening.nesting == 1 and inline.type == "inline":
            found.append([(child.type, child.content) for child in inline.children or []])
    return found


@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
@given(name=_md_name)
def test_a_merge_requests_file_name_and_errors_are_shown_not_acted_on(
    name: str, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A merge request names the files of a spec directory and writes the values its errors
    quote: in the comment's prose they make no link, image, HTML ('<!--' hid the rest of
    the plan from its reviewers), code span or emphasis, and read as they are."""
    from markdown_it import MarkdownIt

    work = tmp_path_factory.mktemp("md")
    spec = work / f"{name}.yaml"
    quoted = name.replace("'", "''")
    spec.write_text(f"version: 1\ndomain: mysite.ru\nusers: {{director: '{quoted}'}}\n")
    (work / "0.yaml").write_text("version: 1\ndomain: other.ru\nusers: {alex: 106}\n")
    assert run(["plan", "-f", str(work), "--markdown"]) == 1
    out = capsys.readouterr().out
    html = MarkdownIt("commonmark").render(out)
    assert "<img" not in html and "<a " not in html, html
    assert html.count("<!--") == out.count("<!-- sipctl-plan:"), html
    titles = [c for c in _inline_children(out, "h2") if str(spec) in "".join(t for _, t in c)]
    assert titles, out
    for children in titles + [
        c for c in _inline_children(out, "p") if "".join(t for _, t in c).startswith("error:")
    ]:
        assert {kind for kind, _ in children} <= {"text", "softbreak", "code_inline"}, children
        assert all(t.startswith("@") for kind, t in children if kind == "code_inline"), children
    assert "".join(t for _, t in titles[0]) == f"mysite.ru ({spec})"


# Text as a merge request or a host writes it: mentions, references, quick actions, Markdown,
# line breaks of every kind, list and heading starts.
_prose = st.lists(
    st.one_of(
        st.sampled_from(list("@/-+#1.)a_ \t\n\r\u2028`*[]<>!|~&%$\\:")),
        st.sampled_from(["@all", "@group/team", "/merge", "/approve", "\n/assign @me", "1. "]),
        st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
    ),
    max_size=30,
).map("".join)
_FORGE_MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]")


@settings(max_examples=examples(300), deadline=None)
@given(text=_prose)
def test_prose_in_a_comment_pings_no_one_and_runs_no_quick_action(text: str) -> None:
    """Whatever a spec or a host puts into a note, a refusal or a file name, its Markdown
    line (as a list item of the comment) reads, by CommonMark as GitHub and GitLab read it,
    as one item holding the text as written: every mention in code (where neither forge
    reads it), no line a quick action, no link, HTML, list or heading of its own."""
    from markdown_it import MarkdownIt

    from sipctl.reconciler.views import markdown_prose

    line = f"- {markdown_prose(text)}"
    assert not any(part.lstrip().startswith("/") for part in line.splitlines()[1:])
    assert len(line.splitlines()) == 1
    tokens = MarkdownIt("commonmark").parse(line)
    if text.strip():
        assert [t.type for t in tokens if t.type != "inline"] == [
            "bullet_list_open",
            "list_item_open",
            "paragraph_open",
            "paragraph_close",
            "list_item_close",
            "bullet_list_close",
        ], line
    children = [c for t in tokens if t.type == "inline" for c in t.children or []]
    assert {c.type for c in children} <= {"text", "code_inline"}, line
    assert all(c.content.startswith("@") for c in children if c.type == "code_inline")
    prose = "".join(c.content if c.type == "text" else "\x00" for c in children)
    assert not _FORGE_MENTION.search(prose), line
    shown = "".join(c.content for c in children)
    assert shown == re.sub("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]", " ", text).strip(), line


def test_a_line_read_from_a_host_cannot_close_the_code_block() -> None:
    """A file line holding a fence of its own (a live file holds any text) stays inside the
    block, so what follows it is never read as prose (a mention, a quick action)."""
    from markdown_it import MarkdownIt

    from sipctl.reconciler.views import markdown_code_block

    lines = ["  ```", "/merge", "  ````` @all", "+ x"]
    tokens = MarkdownIt("commonmark").parse("\n".join(markdown_code_block(lines, "diff")))
    assert [t.type for t in tokens] == ["fence"]
    assert tokens[0].content == "\n".join(lines) + "\n"


@pytest.mark.parametrize("why", ["invalid", "refused"])
def test_a_refused_plan_of_one_spec_still_posts_a_comment(
    why: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pipeline posts plan --markdown's stdout as the merge request's comment: a spec named
    alone that fails says so there (it printed nothing), laid out as its plan would be (the
    marker first: the pipeline replaces the domain's last comment by it), its reason shown
    and not acted on, and the exit code stays the refusal's."""
    from markdown_it import MarkdownIt

    monkeypatch.chdir(tmp_path)
    spec = Path("sipctl.yaml")
    secret = "c2lwY3RsLXNlY3JldC1zaXBjdGwtc2VjcmV0LXNpcGN0bA=="
    base = "version: 1\ndomain: mysite.ru\nservers: [{host: pbx.mysite.ru, ipv4: [192.0.2.1]}]\n"
    if why == "invalid":
        spec.write_text(base + "users: {director: '@all /merge'}\n")
        code, status = 1, "error"
    else:  # a credential the runner may not send: refused before anything is sent
        spec.write_text(
            base + "dns: {server: '127.0.0.1:9', tsig: {name: k, secret_env: SIPCTL_TSIG_SECRET}}\n"
        )
        monkeypatch.setenv("CI", "true")
        monkeypatch.delenv("SIPCTL_PROFILE", raising=False)
        monkeypatch.setenv("SIPCTL_TSIG_SECRET", secret)
        code, status = 3, "refused"
    assert run(["plan", "-f", str(spec), "--markdown", "--no-color"]) == code
    out = capsys.readouterr().out
    head = "<!-- sipctl-plan:mysite.ru -->\n### sipctl plan for `mysite.ru`\n\n"
    assert out.startswith(f"{head}{status}: "), out
    assert secret not in out
    paragraphs = [
        c for c in _inline_children(out, "p") if "".join(t for _, t in c).startswith(status)
    ]
    assert len(paragraphs) == 1, out
    for kind, text in paragraphs[0]:
        assert kind in ("text", "softbreak") or (kind == "code_inline" and text == "@all")
    assert MarkdownIt("commonmark").render(out).count("<!--") == 1, "the marker alone"
