"""``sipctl drift --out FILE``: the JSON document --json prints, kept in a file from the same
run whose text goes to stdout (the nightly job reads the live systems once); and a host's
file alone given to drift or verify with --json: the envelope of several domains. On the
hoster's example directory (zone files and dir: PBXs, no programs)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sipctl.cli import run
from sipctl.cli_report_file import save_report
from sipctl.errors import EXIT_CHANGES, EXIT_ERROR
from sipctl.output import Console
from sipctl.schemas.outputs import output_text


def _valid(kind: str, text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    jsonschema.validate(data, json.loads(output_text(kind)))
    return data


def _without_summary(out: str) -> str:
    """The text before the summary table (whose TIME column differs from run to run)."""
    return out.split("DOMAIN ", 1)[0]


def test_drift_out_keeps_the_json_document_while_stdout_gets_the_text(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = Path("state/alpha.example.zone")
    zone.write_text("".join(line for line in zone.open() if "NAPTR" not in line))
    assert run(["drift", "-f", "."]) == EXIT_CHANGES
    text = capsys.readouterr().out
    assert run(["drift", "-f", ".", "--json"]) == EXIT_CHANGES
    printed = _valid("drift", capsys.readouterr().out)

    saved = Path("drift.json")
    assert run(["drift", "-f", ".", "--out", str(saved), "-v"]) == EXIT_CHANGES
    captured = capsys.readouterr()
    assert _without_summary(captured.out) == _without_summary(text), "stdout: the text"
    assert "5 domain(s): 1 drifted, 4 no drift, 1 file(s) skipped." in captured.out
    assert _valid("drift", saved.read_text()) == printed, "the file: what --json prints"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert f"Saved the drift report as JSON to {saved}." in captured.err
    # one run reads each live target once, for the text and the file alike
    assert captured.err.count("reading dns at zonefile:state/alpha.example.zone") == 1
    assert captured.err.count("reading asterisk at dir:state/pbx1") == 1

    # --json and --out: the same document in both places; one spec alone, its envelope
    assert run(["drift", "-f", "alpha.example.yaml", "--json", "-o", str(saved)]) == 2
    assert _valid("drift", capsys.readouterr().out) == _valid("drift", saved.read_text())
    assert run(["drift", "-f", "beta.example.yaml", "-o", str(saved)]) == 0
    assert capsys.readouterr().out.startswith("No drift. The live systems of beta.example")
    (entry,) = _valid("drift", saved.read_text())["domains"]
    assert (entry["domain"], entry["status"]) == ("beta.example", "no drift")


def test_drift_out_refuses_a_file_it_cannot_write_before_reading_anything(
    hosting_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("a-file").write_text("")
    Path("a-link").symlink_to("a-file")
    os.mkfifo("a-pipe")  # as /dev/null is a device: replaced by a regular file, as root
    spec = Path("alpha.example.yaml").read_text()
    refusals = {
        "no-such-dir/drift.json": "--out no-such-dir/drift.json: no-such-dir does not exist; "
        "sipctl creates no directory for a report",
        "a-file/drift.json": "--out a-file/drift.json: a-file is not a directory",
        "state": "--out state: is a directory; --out names the file for the drift report",
        "a-link": "--out a-link: is a symbolic link; sipctl writes nothing through a link",
        "a-pipe": "--out a-pipe: is not a regular file (a device, a pipe or a socket)",
        "./alpha.example.yaml": "--out alpha.example.yaml: is a sipctl spec; the drift report",
        "beta.example.yaml": "--out beta.example.yaml: is a sipctl spec; the drift report",
    }
    for out, words in refusals.items():
        assert run(["drift", "-f", "alpha.example.yaml", "--out", out, "-v"]) == EXIT_ERROR
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith(f"Error: {words}"), captured.err
        assert captured.err.count(words) == 1, "told once (not again as the file's warning)"
        assert "reading" not in captured.err, "refused before anything is read"
        assert run(["drift", "-f", ".", "--out", out, "--json"]) == EXIT_ERROR
        data = _valid("drift", capsys.readouterr().out)
        assert data["domains"] == [] and data["error"].startswith(words), data
    assert Path("alpha.example.yaml").read_text() == spec, "the spec is never the report"
    assert "host: pbx1" in Path("beta.example.yaml").read_text(), "nor a spec beside it"
    assert Path("a-file").read_text() == "" and Path("a-link").is_symlink()
    # plan --out is refused a spec alike (here a customer's, beside the host's file named)
    assert run(["plan", "-f", "pbx1.yaml", "--out", "alpha.example.yaml", "-v"]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert "--out alpha.example.yaml: is a sipctl spec; the plan would replace it" in captured.err
    assert "reading" not in captured.err and Path("alpha.example.yaml").read_text() == spec
    assert run(["plan", "-f", "alpha.example.yaml", "--out", "a-pipe", "-v"]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert "--out a-pipe: is not a regular file" in captured.err and "reading" not in captured.err
    assert stat.S_ISFIFO(os.lstat("a-pipe").st_mode)
    # and a directory that is not there, or a link, as drift --out (was: after the read)
    for out, words in (
        ("no-such-dir/plan.json", "--out no-such-dir/plan.json: no-such-dir does not exist"),
        ("no-such-dir/plans", "--out no-such-dir/plans: no-such-dir does not exist"),
        ("a-link", "--out a-link: is a symbolic link; sipctl writes nothing through a link"),
        ("a-file", "--out a-file: is a file; with several specs --out names the directory"),
    ):
        given = "." if out == "a-file" else "alpha.example.yaml"
        assert run(["plan", "-f", given, "--out", out, "-v"]) == EXIT_ERROR
        captured = capsys.readouterr()
        assert captured.err.startswith(f"Error: {words}") and "reading" not in captured.err

    # a run that fails after the check leaves its error in the file, as --json prints it
    beta = Path("beta.example.yaml")
    beta.write_text(beta.read_text() + "bogus: 1\n")
    saved = tmp_path / "drift.json"
    assert run(["drift", "-f", str(beta), "--out", str(saved)]) == EXIT_ERROR
    assert "bogus" in capsys.readouterr().err
    (entry,) = _valid("drift", saved.read_text())["domains"]
    assert entry["status"] == "error" and "bogus" in entry["error"], entry


def test_the_saved_document_is_scrubbed_as_the_console_scrubs(tmp_path: Path) -> None:
    console = Console(no_color=True)
    console.add_secrets(["s3cr3t-tsig"])
    console.json_file = tmp_path / "drift.json"
    save_report(console, '{"error": "key s3cr3t-tsig refused"}\n')
    assert console.json_file.read_text() == '{"error": "key *** refused"}\n'


def test_a_host_file_alone_with_json_is_its_customers_envelope(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify: a host's file alone stands for its customers (not a SIP domain itself), as
    among other host files; drift: it is the host's own domain, as in a run of several."""
    quick = ["--nameserver", "127.0.0.1:9", "--timeout", "0.2"]  # nothing answers there
    assert run(["verify", "-f", "pbx1.yaml", "-f", "pbx2.yaml", *quick, "--json"]) == EXIT_ERROR
    among = _valid("verify", capsys.readouterr().out)["domains"]
    assert run(["verify", "-f", "pbx1.yaml", *quick, "--json"]) == EXIT_ERROR
    alone = _valid("verify", capsys.readouterr().out)
    assert alone["domains"] == [e for e in among if e["spec"] == "pbx1.yaml"]
    assert [e["domain"] for e in alone["domains"]] == ["alpha.example", "beta.example"]
    assert run(["verify", "-f", "pbx1.yaml", *quick]) == EXIT_ERROR  # the text as before
    out = capsys.readouterr().out
    assert out.startswith("=== alpha.example ===\n") and "=== beta.example ===\n" in out
    assert "DOMAIN " not in out

    assert run(["drift", "-f", "pbx1.yaml", "-f", "pbx2.yaml", "--json"]) == 0
    among = _valid("drift", capsys.readouterr().out)["domains"]
    assert run(["drift", "-f", "pbx1.yaml", "--json"]) == 0
    alone = _valid("drift", capsys.readouterr().out)
    assert alone["domains"] == [e for e in among if e["spec"] == "pbx1.yaml"]


def test_a_host_that_serves_no_customer_is_named_in_verify_of_several(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host's file whose customers' files are all gone was dropped from verify of a
    directory without a word (exit 0, '0 domain(s)'): it is named as skipped, with the
    words a host's file alone prints."""
    words = "no customer file of this directory names this host"
    lone = Path("lone")
    lone.mkdir()
    Path("pbx1.yaml").rename(lone / "pbx1.yaml")
    assert run(["verify", "-f", "lone/pbx1.yaml"]) == 0
    assert capsys.readouterr().out == f"lone/pbx1.yaml: {words}\n"
    assert run(["verify", "-f", "lone"]) == 0
    assert f"lone/pbx1.yaml: skipped: {words}" in capsys.readouterr().out
    for args in (["-f", "lone"], ["-f", "lone/pbx1.yaml"]):
        assert run(["verify", *args, "--json"]) == 0
        data = _valid("verify", capsys.readouterr().out)
        assert data["domains"] == [] and data["skipped"] == [
            {"file": "lone/pbx1.yaml", "reason": words}
        ]
