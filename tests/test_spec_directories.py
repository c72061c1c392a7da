"""``-f DIR``: every file that is a spec is planned or checked, every other file is named as
skipped with the reason, and a file that looks like a spec but does not load fails the run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.reconciler.gitops.spec_files import skip_reason, spec_keys


def _spec(domain: str) -> str:
    return (
        f"version: 1\ndomain: {domain}\n"
        f"servers: [{{host: pbx.{domain}, ipv4: ['192.0.2.10']}}]\n"
        "users: {director: 105}\n"
        f"dns: {{provider: zonefile, file: ../zones/{domain}.zone, create_file: true}}\n"
    )


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The issue's case: one good spec, one with 'domian:', and YAML and text beside them.
    The zones live beside specs/: the admin allows them in the runner profile."""
    directory = tmp_path / "specs"
    directory.mkdir()
    (tmp_path / "zones").mkdir()
    (tmp_path / "runner-profile.yaml").write_text("version: 1\nzone_files: [zones]\n")
    monkeypatch.setenv("SIPCTL_PROFILE", str(tmp_path / "runner-profile.yaml"))
    (directory / "a.yaml").write_text(_spec("a.example.com"))
    (directory / "b.yaml").write_text(_spec("b.example.com").replace("domain:", "domian:"))
    (directory / "README.md").write_text("# our customers\n")
    (directory / "docker-compose.yml").write_text("services: {}\nversion: '3'\n")
    (directory / ".gitlab-ci.yml").write_text("stages: [plan]\n")
    (directory / "old").mkdir()
    return directory


def _schema(kind: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert run(["schema", "--output", kind]) == 0
    schema: dict[str, object] = json.loads(capsys.readouterr().out)
    return schema


def test_plan_of_a_directory_fails_for_a_broken_spec_and_names_the_skipped(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["plan", "-f", str(specs), "--detailed-exitcode"]) == 1
    out = capsys.readouterr().out
    assert "b.yaml:2:1: domian: unknown key 'domian'; did you mean 'domain'?" in out
    assert "a.example.com  " in out and "planned" in out, "the good spec is still planned"
    assert f"{specs / 'README.md'}: skipped: not *.yaml or *.yml" in out
    assert f"{specs / 'docker-compose.yml'}: skipped: none of its top-level keys" in out
    assert f"{specs / '.gitlab-ci.yml'}: skipped: a dotfile" in out
    assert f"{specs / 'old'}: skipped: a directory" in out
    assert "2 domain(s): 1 ok, 1 failed, 4 file(s) skipped." in out

    assert run(["plan", "-f", str(specs), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, _schema("plan", capsys))
    assert [d["status"] for d in data["domains"]] == ["planned", "error"]
    assert {Path(s["file"]).name for s in data["skipped"]} == {
        "README.md",
        "docker-compose.yml",
        ".gitlab-ci.yml",
        "old",
    }


def test_validate_takes_a_directory(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", "-f", str(specs)]) == 1
    captured = capsys.readouterr()
    assert f"{specs / 'a.yaml'}: valid." in captured.out
    assert "domian: unknown key 'domian'" in captured.err
    assert "2 spec(s): 1 valid, 1 invalid, 4 file(s) skipped." in captured.out

    assert run(["validate", "-f", str(specs), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, _schema("validate", capsys))
    assert [f["valid"] for f in report["files"]] == [True, False]
    assert report["files"][1]["errors"][1]["key"] == "domian"

    (specs / "b.yaml").unlink()
    assert run(["validate", "-f", str(specs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_validate_json_refusal_is_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("version: 1\n")
    assert run(["validate", "-f", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, _schema("validate", capsys))
    assert report["valid"] is False
    assert "no sipctl specs in this directory" in report["errors"][0]["message"]
    assert "notes.txt: not *.yaml or *.yml" in report["errors"][0]["message"]


def test_validate_json_has_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    # sip:105 rings 106 while 105 is director's extension: allowed, and a warning
    spec.write_text("version: 1\ndomain: example.com\nusers: {director: 105, '105': 106}\n")
    assert run(["validate", "-f", str(spec)]) == 0
    warned = capsys.readouterr().err
    assert "Warning:" in warned
    assert run(["validate", "-f", str(spec), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, _schema("validate", capsys))
    assert report["warnings"], "the warnings of the text output are in the JSON"
    assert report["warnings"][0]["message"] in warned


_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@given(keys=st.lists(_KEY, min_size=1, max_size=6, unique=True))
def test_a_file_with_a_key_of_a_spec_is_never_skipped(
    tmp_path_factory: pytest.TempPathFactory, keys: list[str]
) -> None:
    """The rule, against the spec model's own keys: a top-level key of a spec (other than
    a bare version) makes the file a spec to load; otherwise it is skipped, with a reason."""
    path = tmp_path_factory.mktemp("d") / "x.yaml"
    path.write_text("".join(f"{key}: 2\n" for key in keys))
    spec_like = bool(set(keys) & (set(spec_keys()) - {"version"}))
    reason = skip_reason(path)
    assert (reason is None) == spec_like, (keys, reason)
    if reason is not None:
        assert all(key in reason for key in keys)


_STYLES = {
    "block": lambda data: yaml.safe_dump(data, sort_keys=False),
    "json": lambda data: json.dumps(data, indent=2),
    "json, one line": json.dumps,
    "quoted keys": lambda data: yaml.safe_dump(data, sort_keys=False, default_style='"'),
    "flow": lambda data: yaml.safe_dump(data, sort_keys=False, default_flow_style=True),
}


@given(
    keys=st.lists(st.sampled_from(sorted(spec_keys())), min_size=1, max_size=4, unique=True),
    style=st.sampled_from(sorted(_STYLES)),
)
def test_a_spec_in_any_yaml_style_is_never_skipped(
    tmp_path_factory: pytest.TempPathFactory, keys: list[str], style: str
) -> None:
    """-f DIR took a spec written as JSON, or with quoted keys, for 'no top-level keys' and
    skipped it, though it loads on its own: its keys are read as the parser reads them."""
    data = {key: 1 if key == "version" else {} for key in keys}
    path = tmp_path_factory.mktemp("style") / "x.yaml"
    path.write_text(_STYLES[style](data))
    assert yaml.safe_load(path.read_text()) == data  # the style wrote these keys
    spec_like = bool(set(keys) - {"version"}) or data.get("version") == 1
    assert (skip_reason(path) is None) == spec_like, (style, path.read_text())


def test_plan_json_refusals_are_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    assert run(["plan", "-f", str(tmp_path), "--json"]) == 1
    refused = json.loads(capsys.readouterr().out)
    jsonschema.validate(refused, _schema("plan", capsys))
    assert refused["domains"] == [] and "no sipctl specs" in refused["error"]

    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ndomian: x.example\n")
    assert run(["plan", "-f", str(broken), "--json"]) == 1
    captured = capsys.readouterr()
    failed = json.loads(captured.out)
    jsonschema.validate(failed, _schema("plan", capsys))
    [domain] = failed["domains"]
    assert (domain["status"], domain["plan"]) == ("error", None)
    assert "did you mean 'domain'?" in domain["error"]
    assert "did you mean 'domain'?" in captured.err, "and said on stderr, as without --json"


def test_apply_of_a_directory_of_plans_names_what_it_skipped(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (specs / "b.yaml").unlink()
    plans = specs.parent / "plans"
    assert run(["plan", "-f", str(specs), "--out", str(plans)]) == 0
    (plans / "README.md").write_text("the plans of this run\n")
    capsys.readouterr()
    assert run(["apply", str(plans), "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert f"{plans / 'README.md'}: skipped: not a saved plan (*.json)" in out
    assert "1 domain(s): 1 ok, 0 failed, 1 file(s) skipped." in out


def test_read_gate_of_a_directory_names_what_it_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(
        "version: 1\ndomain: a.example.com\nusers: {director: 105}\n"
        "asterisk: {target: 'ssh://root@pbx.a.example.com:22'}\n"
    )
    (tmp_path / "README.md").write_text("specs\n")
    assert run(["read-gate", "-f", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("#!/bin/sh\n"), "stdout is the gate alone"
    assert f"{tmp_path / 'README.md'}: skipped: not *.yaml or *.yml" in captured.err


def test_a_link_to_nothing_is_loaded_so_its_error_is_seen(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A *.yaml link whose file is gone (or a loop) was skipped as 'not a regular file' (a
    hoster's customer, whose file moved, left out of the run): it is loaded and fails,
    saying what it is; a link to a spec is planned once, however it is named."""
    (specs / "b.yaml").unlink()
    (specs / "gone.yaml").symlink_to(specs.parent / "moved.yaml")
    (specs / "loop1.yaml").symlink_to("loop2.yaml")
    (specs / "loop2.yaml").symlink_to("loop1.yaml")
    (specs / "also-a.yaml").symlink_to("a.yaml")
    for command in ("validate", "plan", "drift", "verify"):
        assert run([command, "-f", str(specs), "-f", str(specs / "a.yaml")]) == 1, command
        captured = capsys.readouterr()
        out = captured.out + captured.err
        assert f"a symbolic link to {specs.parent / 'moved.yaml'}, which does not exist" in out
        assert out.count("Too many levels of symbolic links") >= 2, out
        assert "not a regular file" not in out
        assert str(specs / "also-a.yaml") not in out, "a.yaml, once"


def test_an_unreadable_spec_is_the_run_s_error_in_its_json(tmp_path: Path) -> None:
    """An unreadable spec (-f) was click's usage error, with no document on stdout for
    --json: it is the loader's 'cannot read', in the document, as every other refusal.
    Root reads any file: the run drops that capability (setpriv) to be a user's."""
    import subprocess
    import sys

    spec = tmp_path / "a.yaml"
    spec.write_text(_spec("a.example.com"))
    spec.chmod(0)
    drop = "-dac_override,-dac_read_search"
    user = ["setpriv", "--bounding-set", drop, "--inh-caps", drop, sys.executable, "-m"]
    for command in ("validate", "plan", "drift", "verify"):
        args = [*user, "sipctl", command, "-f", str(spec), "--json"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1 and "Usage:" not in done.stderr, done
        data = json.loads(done.stdout)
        (entry,) = data["errors"] if command == "validate" else data["domains"]
        said = entry["message"] if command == "validate" else entry["error"]
        assert said == f"{spec}: cannot read the spec: Permission denied", data


def test_an_unknown_target_is_said_once_before_any_domain_is_read(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--target with a typo was each domain's error, once per domain after its read."""
    (specs / "b.yaml").write_text(_spec("b.example.com"))
    words = "--target dsn: no such layer (layers: dns, asterisk,"
    for command in ("plan", "drift"):
        assert run([command, "-f", str(specs), "--target", "dsn", "-v"]) == 1
        captured = capsys.readouterr()
        assert captured.err.count(words) == 1 and "reading" not in captured.err, captured
        assert captured.out == ""
        assert run([command, "-f", str(specs), "--target", "dsn", "--json"]) == 1
        refused = json.loads(capsys.readouterr().out)
        assert refused["domains"] == [] and refused["error"].startswith(words), refused


def test_a_spec_with_no_end_is_read_no_further_than_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """-f /dev/zero (or a file of gigabytes) was read whole before its size was refused,
    twice with --json (the envelope looked for its domain): the loader's limit, at once."""
    for command in ("validate", "plan", "drift", "verify"):
        assert run([command, "-f", "/dev/zero"]) == 1
        assert "/dev/zero: the spec is larger than 1000000 bytes" in capsys.readouterr().err
    assert run(["plan", "-f", "/dev/zero", "--json"]) == 1
    (entry,) = json.loads(capsys.readouterr().out)["domains"]
    assert entry["error"] == "/dev/zero: the spec is larger than 1000000 bytes"


def test_an_empty_spec_path_is_refused_not_read_as_here(
    specs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-f "$SPECS" with the variable unset gave click '', its path '.': apply planned and
    applied every spec of the current directory. Refused before anything is read."""
    monkeypatch.chdir(specs)
    (specs / "b.yaml").write_text(_spec("b.example.com"))
    commands = [
        ["apply", "-f", "", "--auto-approve"],
        ["plan", "-f", ".", "--file="],
        ["drift", "--file", ""],
        ["verify", "-f", ""],
    ]
    for command in commands:
        assert run(command) == 1, command
        captured = capsys.readouterr()
        option = "--file" if "--file" in " ".join(command) else "-f"
        assert captured.err.startswith(f"Error: {option} '': an empty path"), captured.err
        assert "a.example.com" not in captured.out + captured.err
    assert not (specs.parent / "zones" / "a.example.com.zone").exists(), "nothing applied"
    assert run(["plan", "--", "-f", ""]) != 0  # after '--' nothing is an option
    capsys.readouterr()


_ENTRY_KINDS = ("spec", "other yaml", "text", "directory", "link to a spec", "link to a directory")
_ENTRY_KINDS += ("link to nothing", "link to itself", "link up and back", "fifo")


def _make_entry(directory: Path, name: str, kind: str) -> None:
    import os

    path = directory / name
    if kind == "spec":
        path.write_text(_spec("a.example.com"))
    elif kind == "other yaml":
        path.write_text("services: {}\n")
    elif kind == "text":
        path.write_text("domain: x\n")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        target = {
            "link to a spec": "../elsewhere/spec.yaml",
            "link to a directory": "../elsewhere",
            "link to nothing": "missing.yaml",
            "link to itself": name,
            "link up and back": f"../{directory.name}/../elsewhere/spec.yaml",
        }[kind]
        path.symlink_to(target)


@given(
    entries=st.dictionaries(
        st.sampled_from(["a.yaml", "b.yml", ".c.yaml", "d", "e.json", "f.yaml", "g.txt"]),
        st.sampled_from(_ENTRY_KINDS),
        min_size=1,
    ),
    through_link=st.booleans(),
)
def test_a_listed_file_is_judged_and_named_as_alone(
    tmp_path_factory: pytest.TempPathFactory, entries: dict[str, str], through_link: bool
) -> None:
    """-f DIR asks the directory's listing whether an entry is a directory or a file, and
    names a file that is no link by its directory's resolved path: the same answers as a
    stat and a resolve of each path (links to files, directories, nothing, themselves)."""
    from sipctl.reconciler.gitops.spec_files import _identity

    root = tmp_path_factory.mktemp("listed")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "spec.yaml").write_text(_spec("b.example.com"))
    directory = root / "specs"
    directory.mkdir()
    (root / "via").symlink_to("specs")
    for name, kind in entries.items():
        _make_entry(directory, name, kind)
    listed_dir = root / "via" if through_link else directory
    resolved: dict[Path, Path] = {}
    import os

    with os.scandir(listed_dir) as listing:
        for listed in listing:
            path = listed_dir / listed.name
            assert skip_reason(path, listed) == skip_reason(path), (listed.name, entries)
            for spelled in (path, listed_dir / ".." / listed_dir.name / listed.name):
                try:
                    expected = spelled.resolve()
                except (OSError, RuntimeError):
                    expected = spelled.absolute()
                assert _identity(spelled, resolved) == expected, (spelled, entries)


_TEXT_KEY = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)


@given(keys=st.lists(st.one_of(_KEY, _TEXT_KEY), min_size=1, max_size=5, unique=True))
def test_a_skipped_files_reason_names_only_keys_spelt_like_a_specs(
    tmp_path_factory: pytest.TempPathFactory, keys: list[str]
) -> None:
    """The reason a skipped file gives names its top-level keys (to show a typo) as the
    YAML parser reads them, but only those spelt like a key of a spec could be: any other
    key is text of a file that is no spec, and through a link that may be any file the
    runner can read (see the test below). The others are counted."""
    path = tmp_path_factory.mktemp("keys") / "x.yaml"
    path.write_text(yaml.safe_dump(dict.fromkeys(keys, 1), allow_unicode=True))
    reason = skip_reason(path)
    if reason is None or not reason.startswith("none of its"):
        return  # a spec's key among them (or no mapping): not this rule
    plain = [k for k in keys if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,31}", k)]
    listed = reason.split("(", 1)[1].rsplit(")", 1)[0]
    hidden = len(keys) - len(plain)
    tail = f"and {hidden} spelt like no key of a spec, not shown"
    assert listed == ", ".join([*sorted(plain), *([tail] if hidden else [])]), (keys, reason)


def test_a_link_to_a_file_outside_shows_none_of_its_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A customer's merge request adds evil.yaml, a link to /etc/shadow (git keeps links):
    the hoster's plan job named its lines, hashes and all, as the keys it skipped."""
    outside = tmp_path / "shadow"
    outside.write_text("root:$6$rounds$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000:0::::\n")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(_spec("a.example.com").replace("dns:", "# dns:"))
    (specs / "evil.yaml").symlink_to(outside)
    for command in ("plan", "validate"):
        run([command, "-f", str(specs)])
        out = capsys.readouterr().out
        assert "evil.yaml: skipped: none of its top-level keys (and 2 spelt like" in out, out
        assert "SECRETHASH" not in out and "daemon" not in out, out
