"""The command line as a Terraform user types it: aliases, global flags, help, version."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.common import EXAMPLES, sipctl_in_process
from fixtures.state_dir import child_env

from sipctl.cli import run
from sipctl.cli_args import normalize_argv

COMMANDS = [
    "validate",
    "plan",
    "apply",
    "show",
    "force-unlock",
    "drift",
    "import",
    "render",
    "schema",
    "verify",
    "audit",
    "version",
    "docs",
]


def test_terraform_single_dash_spellings_are_aliases() -> None:
    assert normalize_argv(["apply", "-auto-approve", "-target=dns", "-out", "p.json"]) == [
        "apply",
        "--auto-approve",
        "--target=dns",
        "--out",
        "p.json",
    ]
    assert normalize_argv(["plan", "-detailed-exitcode", "-no-color", "-o", "x"]) == [
        "plan",
        "--detailed-exitcode",
        "--no-color",
        "-o",
        "x",
    ]
    # after "--" nothing is touched; unknown single-dash words stay as they are
    assert normalize_argv(["plan", "--", "-out"]) == ["plan", "--", "-out"]
    assert normalize_argv(["plan", "-vv"]) == ["plan", "-vv"]


def test_global_flags_move_in_front() -> None:
    assert normalize_argv(["plan", "--quiet", "-f", "a.yaml", "--debug"]) == [
        "--quiet",
        "--debug",
        "plan",
        "-f",
        "a.yaml",
    ]


def test_flags_before_the_subcommand_and_terraform_spellings_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(EXAMPLES / "mysite.yaml")
    assert run(["-v", "--no-color", "validate", "-f", spec]) == 0
    assert run(["-vv", "--quiet", "validate", "-f", spec]) == 0
    out = tmp_path / "plan.json"
    code = run(["plan", "-f", spec, "-no-color", f"-out={out}", "-detailed-exitcode"])
    assert code in (0, 2), capsys.readouterr().err
    assert json.loads(out.read_text())["format_version"]


_CROSS_BASE = """\
version: 1
domain: mysite.ru
transports: {udp: {port: 5060}, tls: {port: 5061}, wss: {port: 8089}}
servers: [{host: pbx.mysite.ru, ipv4: [192.0.2.10]}]
users: {director: 105, alex: 106}
rooms: {seminar: {}}
asterisk: {target: 'dir:pbx', tls: {cert_file: /k/a.pem, key_file: /k/a.key}}
firewall: {ssh_port: 22}
webrtc: {page: {names: [director, alex]}}
cards: {names: {director: Anna}}
"""


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("names: [director, alex]", "names: [director, nobody]", "webrtc.page.names[1]"),
        ("names: {director: Anna}", "names: {nobody: Anna}", "cards.names.nobody"),
        ("tls: {port: 5061}", "tls: {port: 22}", "transports.tls.port"),
        ("rooms: {seminar: {}}", "rooms: {Alex: {}}", "rooms.Alex"),
        ("cert_file: /k/a.pem", "cert_file: /k/a.key", "asterisk.tls"),
    ],
)
def test_validate_json_names_the_key_of_a_rule_between_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str
) -> None:
    """A rule between keys (a page's name that is no user's, a port that is the SSH port)
    says its key in words: validate --json gave such a problem "key": null, so an editor
    knew the key of schema errors only. Its key is the key at the problem's place."""
    spec = tmp_path / "sipctl.yaml"
    assert old in _CROSS_BASE
    spec.write_text(_CROSS_BASE.replace(old, new))
    assert run(["validate", "--json", "-f", str(spec)]) == 1
    (error,) = json.loads(capsys.readouterr().out)["errors"]
    assert error["key"] == key, error


def test_help_shows_no_python_types(capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        assert run([command, "--help"]) == 0
        text = capsys.readouterr().out
        for python in ("<list[", "<int", "<path>", "<file>", "[[", "{plan", "<text>", "<str"):
            assert python not in text.lower(), (command, python, text)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["version"]) == 0
    assert capsys.readouterr().out.startswith("sipctl ")


def test_validate_json_gives_file_line_col_key_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndomain: mysite.ru\nusres: {}\ntransports:\n  udp: {port: '5060'}\n")
    assert run(["validate", "--json", "-f", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    by_key = {e["key"]: e for e in report["errors"]}
    assert by_key["usres"] == {
        "file": str(bad),
        "line": 3,
        "col": 1,
        "key": "usres",
        "message": by_key["usres"]["message"],
    }
    assert "did you mean 'users'?" in by_key["usres"]["message"]
    assert by_key["transports.udp.port"]["line"] == 5
    assert (
        by_key["transports.udp.port"]["message"]
        == "remove the quotes: this is a whole number from 1 to 65535"
    )
    assert run(["validate", "--json", "-f", str(EXAMPLES / "mysite.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_shell_completion_script_is_offered() -> None:
    # --show-completion is a flag: typer finds the shell among the process's ancestors, so
    # the test runs it from bash (a list, so bash forks rather than execs it), not from
    # whatever started pytest.
    command = f"{shlex.quote(sys.executable)} -m sipctl --show-completion; exit $?"
    done = subprocess.run(
        ["/bin/bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env({"PATH": "/usr/bin:/bin", "SHELL": "/bin/bash", "HOME": "/tmp"}),
    )
    assert done.returncode == 0, done.stderr
    assert "_SIPCTL_COMPLETE" in done.stdout


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        ("sipctl plan --target f", ["firewall", "fail2ban"]),
        ("sipctl apply --target ", ["dns", "asterisk", "certificate", "firewall"]),
        ("sipctl docs ho", ["hosting"]),
        ("sipctl schema --kind plan", ["plan", "plan-file"]),
    ],
)
def test_shell_completion_offers_the_values_of_layers_topics_and_kinds(
    words: str, offered: list[str]
) -> None:
    """The completion script completed commands and options but no value: --target,
    docs TOPIC and schema --kind offered nothing at <TAB>."""
    done = sipctl_in_process(
        env=child_env(
            {
                "PATH": "/usr/bin:/bin",
                "_SIPCTL_COMPLETE": "complete_bash",
                "COMP_WORDS": words,
                "COMP_CWORD": str(len(words.split(" ")) - 1),
            }
        ),
    )
    assert done.returncode == 0, done.stderr
    assert set(offered) <= set(done.stdout.split()), done.stdout


def test_a_directory_of_specs_takes_only_specs(tmp_path: Path) -> None:
    from sipctl.reconciler.gitops.spec_files import spec_paths

    spec = "version: 1\ndomain: {}\n"
    (tmp_path / "a.yaml").write_text(spec.format("a.example.com"))
    (tmp_path / "b.yml").write_text("# customer b\n" + spec.format("b.example.com"))
    (tmp_path / ".gitlab-ci.yml").write_text("stages: [plan]\n")
    (tmp_path / ".hidden.yaml").write_text(spec.format("h.example.com"))
    (tmp_path / "docker-compose.yml").write_text("services: {}\nversion: '3'\n")
    (tmp_path / "notes.txt").write_text(spec.format("n.example.com"))
    assert [p.name for p in spec_paths([tmp_path])] == ["a.yaml", "b.yml"]


def test_a_spec_error_names_the_reference_the_user_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndomain: mysite.ru\nusres: {}\n")
    assert run(["validate", "-f", str(bad)]) == 1
    err = capsys.readouterr().err
    assert (
        "hint: every key, its type, default and an example: sipctl schema --kind reference" in err
    )
    assert err.count("hint:") == 1
    assert run(["schema", "--output", "reference"]) == 0  # the installed sipctl prints it
    assert "users" in capsys.readouterr().out


SIPCTL = Path(sys.executable).with_name("sipctl")  # the console script pip installed


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["version"], ["plan", "--help"], ["schema"]]
)
def test_a_reader_gone_away_ends_sipctl_quietly(args: list[str], tmp_path: Path) -> None:
    """``sipctl ... | head``: exit 1, no traceback, whatever the command."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before sipctl writes a byte
    try:
        done = subprocess.run(
            [str(SIPCTL), *args],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


def wait_for_confirmation(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``sipctl apply`` of the README's example (local targets) on a terminal, at its question;
    returns the process and the terminal's other end."""
    shutil.copy(EXAMPLES / "mysite.yaml", tmp_path / "sipctl.yaml")
    terminal, its_end = pty.openpty()
    process = subprocess.Popen(
        [str(SIPCTL), "apply", "--no-verify"],
        cwd=tmp_path,
        stdin=its_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(its_end)
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"Enter a value:" not in seen:
        assert time.monotonic() < deadline and process.poll() is None, seen.decode()
        if select.select([process.stdout], [], [], 0.5)[0]:
            seen += os.read(process.stdout.fileno(), 65536)
    return process, terminal


def test_end_of_input_at_the_question_aborts(tmp_path: Path) -> None:
    process, terminal = wait_for_confirmation(tmp_path)
    try:
        os.write(terminal, b"\x04")  # Ctrl-D on an empty line: end of input
        _, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
    assert process.returncode == 1
    assert err.decode().strip() == "Error: aborted"


def test_ctrl_c_at_the_question_exits_130_silently(tmp_path: Path) -> None:
    process, terminal = wait_for_confirmation(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        os.close(terminal)
    assert (process.returncode, err.decode()) == (130, "")


def test_schema_help_names_every_kind_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """--help offers what --kind accepts: it once left out commands, man, fleet-status and
    both profiles, which only the error of a wrong --kind listed."""
    from sipctl.schemas.outputs import KINDS

    assert run(["schema", "--help"]) == 0
    words = " ".join(capsys.readouterr().out.split())
    missing = [kind for kind in KINDS if f"{kind} " not in words and f"{kind}," not in words]
    assert missing == []


def test_quiet_keeps_the_result_warnings_and_errors_and_drops_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--quiet: stdout's result unchanged but for a report's note lines; warnings and
    errors on stderr always, notes and progress never (one rule, in output.Console)."""
    from sipctl.output import Console

    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.ru\nusers: {director: 105}\n"
        "servers: [{host: pbx.mysite.ru, ipv4: [127.0.0.1]}]\n"
        "asterisk: {target: 'dir:pbx', unknown_callers: reject}\n"
    )
    verify = ["verify", "-f", str(spec), "--nameserver", "127.0.0.1:9", "--timeout", "0.3"]
    assert run(verify) == 1
    loud = capsys.readouterr().out
    assert "note: unknown_callers is reject" in loud
    assert run(["--quiet", *verify]) == 1
    out, err = capsys.readouterr()
    assert "note:" not in out and "note:" not in err
    assert out == "".join(line for line in loud.splitlines(True) if not line.startswith("note:"))
    assert "verify: FAILED" in out
    assert run(["--quiet", "-v", *verify]) == 1  # -v outranks --quiet
    assert "note: unknown_callers is reject" in capsys.readouterr().out

    # a plan's note lines too (what a dir: target skips), which plan and apply printed
    # with --quiet; its warnings stay
    spec.write_text(spec.read_text() + "firewall: {}\n")
    assert run(["plan", "-f", str(spec)]) == 0
    loud = capsys.readouterr().out
    assert "note: asterisk: dir target, reload skipped" in loud, loud
    assert "warning: firewall: nothing loads" in loud, loud
    for command in (["plan"], ["apply", "--auto-approve", "--no-verify"]):
        assert run(["--quiet", *command, "-f", str(spec)]) == 0
        out, err = capsys.readouterr()
        assert "note:" not in out and "note:" not in err, out
        assert "warning: firewall: nothing loads" in out, out

    quiet = Console(quiet=True)
    quiet.info("Recorded the applied state in DNS record x.")
    quiet.info("note: the credentials and where they go are the spec's own")
    quiet.progress("reading dns")
    quiet.info("Warning: could not record the applied state")  # the engine's warning line
    quiet.warn("the spec cannot express this")
    quiet.error("refused")
    assert capsys.readouterr().err == (
        "Warning: could not record the applied state\n"
        "Warning: the spec cannot express this\n"
        "Error: refused\n"
    )


def test_no_message_sends_a_user_to_a_file_of_the_repository() -> None:
    """An installed sipctl has no examples/, bench/, scripts/ or docs/*.md: a message that
    says "see examples/" sends its user nowhere ('sipctl docs TOPIC' has the pages). Every
    string of the product's code but a docstring is checked."""
    import ast
    import re

    from fixtures.common import REPO

    pattern = re.compile(r"(?<![\w.])(examples|bench|scripts)/|(?<![\w.])docs/[\w-]+\.md")
    found = []
    for root in ("src", "reconciler", "providers", "schemas"):
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
            }
            found += [
                f"{path.relative_to(REPO)}:{node.lineno}: {node.value[:80]!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and pattern.search(node.value)
            ]
    assert not found, "\n".join(found)


def test_a_missing_tsig_secret_is_said_before_the_pbx_is_connected_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TSIG secret was checked when the DNS layer read, after the PBX's files were
    fetched over SSH: with the secret unset, plan connected to the PBX (and said only that
    the connection failed when it did). Every provider's preflight comes before any read."""
    from fixtures.ports import release_ports, reserve_port

    monkeypatch.delenv("SIPCTL_TSIG_SECRET", raising=False)
    port = reserve_port()  # nothing listens there: a connection would be refused
    try:
        spec = tmp_path / "sipctl.yaml"
        spec.write_text(
            "version: 1\ndomain: mysite.example\nusers: {director: 105}\n"
            "servers: [{host: pbx.mysite.example, ipv4: [192.0.2.10]}]\n"
            f"dns: {{provider: rfc2136, server: '127.0.0.1:{port}', timeout: 1,\n"
            "  tsig: {name: sipctl, secret_env: SIPCTL_TSIG_SECRET}}\n"
            f"asterisk: {{target: 'ssh://root@127.0.0.1:{port}', ssh: {{connect_timeout: 2}}}}\n"
        )
        assert run(["plan", "-f", str(spec)]) == 1
        err = capsys.readouterr().err
        assert "the environment variable SIPCTL_TSIG_SECRET is not set" in err, err
        assert "connection refused" not in err, err
    finally:
        release_ports(port)
