"""Small things a new user trips over: schema's flags, the plan's counting unit, the
extras a plan needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipctl.cli import run


def test_schema_kind_and_file_cannot_be_confused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["schema", "-o", "plan"]) == 1
    err = capsys.readouterr().err
    assert "did you mean --kind plan?" in err
    assert not (tmp_path / "plan").exists(), "no file named plan"
    assert run(["schema", "--out", "s.json"]) == 1
    assert "did you mean --out-file s.json?" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

    assert run(["schema", "--kind", "plan", "--out-file", "plan.schema.json"]) == 0
    assert json.loads((tmp_path / "plan.schema.json").read_text())["properties"]["kind"] == {
        "const": "plan"
    }
    assert run(["schema", "--output", "validate"]) == 0, "the older spelling of --kind"
    assert "sipctl validate --json" in capsys.readouterr().out
    assert run(["schema", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--out-file FILE" in shown and " -o" not in shown.split("Options:")[1]


def test_schema_out_file_never_replaces_a_spec_nor_writes_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out-file is checked as plan's and drift's --out are: a typo of 'sipctl.schema.json'
    as 'sipctl.yaml' replaced the spec with the schema, and a link was written through."""
    monkeypatch.chdir(tmp_path)
    spec = "version: 1\ndomain: mysite.ru\nusers: {director: 105}\n"
    (tmp_path / "sipctl.yaml").write_text(spec)
    assert run(["schema", "--kind", "spec", "--out-file", "sipctl.yaml"]) == 1
    assert "--out-file sipctl.yaml: is a sipctl spec" in capsys.readouterr().err
    assert (tmp_path / "sipctl.yaml").read_text() == spec

    elsewhere = tmp_path / "authorized_keys"
    elsewhere.write_text("ssh-ed25519 AAAA admin\n")
    (tmp_path / "schema.json").symlink_to(elsewhere)
    assert run(["schema", "--kind", "spec", "--out-file", "schema.json"]) == 1
    assert "is a symbolic link" in capsys.readouterr().err
    assert elsewhere.read_text() == "ssh-ed25519 AAAA admin\n"

    assert run(["schema", "--kind", "man", "--out-file", "sipctl.1"]) == 0
    assert (tmp_path / "sipctl.1").stat().st_mode & 0o777 == 0o644, "a man page others read"


def test_plan_names_the_missing_acme_extra_when_a_certificate_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As validate names a missing octoDNS extra, plan names the [acme] extra: not only
    apply, once it tries to order."""
    import sys

    spec = tmp_path / "s.yaml"
    spec.write_text(  # a DNS provider that answers challenges; only the certificate is read
        "version: 1\ndomain: mysite.test\ntransports: {udp: {port: 5060}, tls: {port: 5061}}\n"
        "servers: [{host: pbx.mysite.test, ipv4: [192.0.2.10]}]\n"
        "dns: {provider: rfc2136, server: 127.0.0.1:9}\n"
        f"asterisk:\n  target: dir:{tmp_path / 'pbx'}\n"
        "  tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key,\n"
        "        acme: {email: a@mysite.test}}\n"
    )
    args = ["plan", "-f", str(spec), "--target", "certificate"]
    assert run(args) == 0
    assert "sipctl[acme]" not in capsys.readouterr().err, "installed here: not named"
    monkeypatch.setitem(sys.modules, "acme", None)  # how Python marks a module unimportable
    assert run(args) == 1
    err = capsys.readouterr().err
    assert "a certificate must be obtained by ACME" in err
    assert "pip install 'sipctl[acme]'" in err


def test_help_texts_say_what_is_true(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["drift", "--help"]) == 0
    drift = " ".join(capsys.readouterr().out.split())
    assert "/var/lib/sipctl" in drift and ".sipctl-state.json" not in drift
    assert run(["import", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("    sipctl import --domain mysite.ru --out sipctl.yaml \\")
    assert lines[start + 1].startswith("      --dns 'rfc2136://"), "the example is not re-wrapped"
    assert lines[start + 2] == "      --asterisk ssh://root@pbx.mysite.ru"


@pytest.mark.parametrize("command", ["verify", "audit"])
@pytest.mark.parametrize("written", ["999.1.1.1", "[::1]:99999", "10.0.0.1:dns", "127.0.0.1:0"])
def test_a_nameserver_address_written_wrong_is_named_not_looked_up(
    command: str, written: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--nameserver takes IP[:PORT]: an address written wrong was sent to the system's
    resolver as a host name ('cannot resolve the host name '[::1]:99999''); audit of a
    spec that asked no DNS took any text."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text("version: 1\ndomain: mysite.ru\nusers: {director: 105}\n")
    assert run([command, "-f", str(spec), "--nameserver", written]) == 1
    err = capsys.readouterr().err
    assert f"--nameserver '{written}': give an IP address with an optional port" in err, err
