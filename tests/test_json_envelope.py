"""One JSON envelope for every --json report, whether -f named a file or a directory.

Real runs through the CLI against a zone file and dir: targets: the outputs are validated
with jsonschema against what ``sipctl schema --kind KIND`` publishes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from sipctl.cli import run
from sipctl.cli_boundary import json_commands
from sipctl.reconciler.envelope import KINDS

ZONE = """\
$TTL 3600
@ IN SOA ns1.{d}. hostmaster.{d}. 1 3600 600 86400 300
@ IN NS ns1.{d}.
ns1 IN A 192.0.2.1
"""

SPEC = """\
version: 1
domain: {d}
servers:
  - host: asterisk.{d}
    ipv4: [203.0.113.10]
users:
  director: 105
dns:
  provider: zonefile
  file: {d}.zone
asterisk:
  target: dir:pbx-{d}
"""


def _spec(directory: Path, domain: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / f"{domain}.zone").write_text(ZONE.format(d=domain))
    path = directory / f"{domain}.yaml"
    path.write_text(SPEC.format(d=domain))
    return path


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert run(list(args)) == 0, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def test_a_file_and_a_directory_give_the_same_envelope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "one", "mysite.ru")
    schema = _json(capsys, "schema", "--output", "plan")
    single = _json(capsys, "plan", "-f", str(spec), "--json")
    many = _json(capsys, "plan", "-f", str(spec.parent), "--json")
    jsonschema.validate(single, schema)
    jsonschema.validate(many, schema)
    for data in (single, many):
        [domain] = data["domains"]
        assert (data["kind"], domain["domain"], domain["status"]) == (
            "plan",
            "mysite.ru",
            "planned",
        )
        assert domain["error"] is None and domain["plan"]["summary"]["add"] > 0
    single["domains"][0]["plan"].pop("created_at")
    many["domains"][0]["plan"].pop("created_at")
    assert single["domains"][0]["plan"] == many["domains"][0]["plan"]
    # A directory with a broken spec: the same schema holds the error, and the plan is null.
    (spec.parent / "broken.yaml").write_text("version: 1\ndomain: bad.example\nusers: 5\n")
    assert run(["plan", "-f", str(spec.parent), "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    jsonschema.validate(failed, schema)
    bad = next(d for d in failed["domains"] if d["spec"].endswith("broken.yaml"))
    assert bad["plan"] is None and bad["status"] == "error" and bad["error"]


def test_saved_plans_keep_their_own_format_and_apply_reads_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, "mysite.ru")
    saved = tmp_path / "plan.json"
    assert run(["plan", "-f", str(spec), "--out", str(saved)]) == 0
    capsys.readouterr()
    jsonschema.validate(
        json.loads(saved.read_text()), _json(capsys, "schema", "--output", "plan-file")
    )
    shown = _json(capsys, "show", str(saved), "--json")
    jsonschema.validate(shown, _json(capsys, "schema", "--output", "plan"))
    assert shown["domains"][0]["plan"] == json.loads(saved.read_text())
    # 'plan --json > plan.json; apply plan.json' applies the one plan inside the envelope.
    printed = tmp_path / "printed.json"
    printed.write_text(json.dumps(_json(capsys, "plan", "-f", str(spec), "--json")))
    assert run(["apply", str(printed), "--no-verify"]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert _json(capsys, "plan", "-f", str(spec), "--json")["domains"][0]["status"] == (
        "no changes"
    )
    # An envelope of two domains is not one plan: refused, with the way to save them.
    other = _spec(tmp_path, "other.example")
    two = tmp_path / "two.json"
    two.write_text(json.dumps(_json(capsys, "plan", "-f", str(spec), "-f", str(other), "--json")))
    assert run(["apply", str(two), "--no-verify"]) == 1
    err = capsys.readouterr().err
    assert "holds the plans of 2 domains" in err and "plan -f DIR --out DIR" in err


@pytest.mark.parametrize("kind", KINDS)
def test_every_json_report_has_an_envelope_schema(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = _json(capsys, "schema", "--output", kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["kind"] == {"const": kind}
    item = schema["properties"]["domains"]["items"]
    assert set(item["required"]) == {"spec", "domain", "status", "error", kind}
    assert schema["$defs"][kind]["properties"], "the report itself is described"


def test_a_refused_run_still_prints_one_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json owes stdout a document however the run ends: two specs claiming one name
    refuse the whole run (no domains, the run's error), a spec that does not load fails
    its one domain, for every kind; the exit codes stay the errors'."""
    specs = tmp_path / "specs"
    _spec(specs, "same.example")
    (specs / "again.yaml").write_text(SPEC.format(d="same.example"))
    assert run(["plan", "-f", str(specs), "--json"]) == 1
    out, err = capsys.readouterr()
    refused = json.loads(out)
    jsonschema.validate(refused, _json(capsys, "schema", "--output", "plan"))
    assert refused["domains"] == [] and "is also claimed by" in refused["error"], refused
    assert "is also claimed by" in err  # the text on stderr as before

    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ndomain: bad.example\nusers: 5\n")
    for kind in KINDS:
        assert run([kind, "-f", str(broken), "--json"]) == 1, kind
        out, err = capsys.readouterr()
        data = json.loads(out)
        jsonschema.validate(data, _json(capsys, "schema", "--output", kind))
        [domain] = data["domains"]
        assert (domain["spec"], domain["status"], domain[kind]) == (str(broken), "error", None)
        assert "users" in domain["error"] and "users" in err, (kind, data)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mistake", [["--no-such-option"], ["--target"], ["--no-color=yes"]])
def test_a_usage_error_with_json_is_one_document_too(
    kind: str, mistake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown option or a missing value ends the run in the argument parser, before the
    command could promise its document: stdout still gets one, with the parser's error, and
    the exit code is 1 (not click's 2, which means "changes present" here)."""
    from sipctl.schemas.outputs import output_text

    assert run([kind, "--json", *mistake]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    jsonschema.validate(data, json.loads(output_text(kind)))
    assert data["domains"] == [] and data["error"], data
    assert data["error"] in captured.err, captured


# Each command's option with a value out of its range, or of the wrong kind.
BAD_VALUES = {
    "plan": ["--parallel", "0"],
    "drift": ["--parallel", "0"],
    "verify": ["--timeout", "soon"],
    "audit": ["--fail-on", "never"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_option_value_with_json_is_one_document_too(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sipctl.schemas.outputs import output_text

    assert run([kind, "--json", *BAD_VALUES[kind]]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    jsonschema.validate(data, json.loads(output_text(kind)))
    assert "Invalid value" in data["error"] and data["error"] in captured.err, data


# An unknown option; an option's value missing; a value given to a flag that takes none.
USAGE_MISTAKES = [["--no-such-option"], ["-f"], ["--no-color=yes"], ["--verbose=2"]]


@pytest.mark.parametrize("mistake", USAGE_MISTAKES)
def test_validate_json_with_a_usage_error_is_its_own_document(
    mistake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """validate's document has a shape of its own (sipctl schema --kind validate): a
    wrong command line is the run's own error, tied to no file, valid false, exit 1."""
    from sipctl.schemas.outputs import output_text

    assert run(["validate", "--json", *mistake]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    jsonschema.validate(data, json.loads(output_text("validate")))
    assert (data["valid"], data["files"], data["skipped"]) == (False, [], []), data
    [problem] = data["errors"]
    assert problem["file"] is None and problem["line"] is None, problem
    assert problem["message"] and problem["message"] in captured.err, captured


@settings(max_examples=examples(60), deadline=None)
@given(
    command=st.sampled_from(json_commands()),
    option=st.from_regex(r"--zz-[a-z][a-z0-9-]{0,20}", fullmatch=True),
    value=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    flag=st.sampled_from(["--no-color", "--verbose"]),
)
def test_any_usage_error_with_json_prints_the_command_s_one_document(
    command: str, option: str, value: str | None, flag: str
) -> None:
    """Whatever the parser refuses (an option it does not know, a value given to a flag),
    each command whose --json promises a document prints exactly one, valid by that
    command's schema, and exits 1 (never click's 2, which means "changes present")."""
    import contextlib
    import io

    from sipctl.schemas.outputs import output_text

    mistake = [option] if value is None else [f"{flag}={value}"]
    if command == "fleet-status":  # fleet status has no --verbose
        mistake = [option] if value is None else [f"--json={value}"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([*command.split("-"), "--json", *mistake])  # fleet-status: fleet status
    assert code == 1, (command, mistake, err.getvalue())
    data = json.loads(out.getvalue())  # one document: a second would not parse
    jsonschema.validate(data, json.loads(output_text(command)))


@pytest.mark.parametrize(
    "mistake",
    [["--no-such-option"], ["--address"], ["--json=yes"], ["--address", "127.0.0.1:1"]],
)
def test_fleet_status_json_that_ends_early_is_its_own_document(mistake: list[str]) -> None:
    """fleet status --json's document (schema --kind fleet-status) holds the error when the
    command line is wrong, or Temporal is not reached (port 1 of loopback: refused), exit 1.
    In a process of its own: a fleet command ends its process when it is done."""
    from fixtures.common import run_sipctl

    from sipctl.schemas.outputs import output_text

    done = run_sipctl("fleet", "status", "--json", *mistake)
    assert done.returncode == 1, done
    data = json.loads(done.stdout)
    jsonschema.validate(data, json.loads(output_text("fleet-status")))
    assert data["domains"] == [] and data["error"] in done.stderr, done
