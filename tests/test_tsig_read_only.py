"""A read-only TSIG key plans and checks drift; only the writing key applies (real BIND).

The CI pipelines (examples/gitops/) give merge-request jobs a key the zone's update-policy
does not name, and the apply job the one it does. The spec names one ``secret_file``; each
job writes its own BIND key file there, and the key file names its key.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.bind import BindServer

from sipctl.cli import run


def _spec(bind: BindServer, zone: str, tmp_path: Path) -> Path:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: {zone}\n"
        f"servers: [{{host: asterisk.{zone}, ipv4: [203.0.113.10]}}]\n"
        "users: {director: 105}\n"
        "dns:\n  provider: rfc2136\n"
        f"  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, algorithm: {bind.algorithm}, "
        "secret_file: .sipctl/tsig.key}\n  timeout: 3\n"
    )
    (tmp_path / ".sipctl").mkdir()
    return spec


def _use_key(tmp_path: Path, bind: BindServer, name: str, secret: str) -> None:
    key = tmp_path / ".sipctl" / "tsig.key"
    key.write_text(bind.key_file(name, secret))
    key.chmod(0o600)


def test_a_read_only_key_plans_and_is_refused_on_apply(
    bind: BindServer, bind_zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(_spec(bind, bind_zone, tmp_path))
    before = bind.zone_records(bind_zone)
    _use_key(tmp_path, bind, bind.read_key_name, bind.read_secret)
    assert run(["plan", "-f", spec, "--no-color", "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert f"+ dns SRV _sip._udp.{bind_zone}" in out

    assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, captured.err
    assert f"key '{bind.read_key_name}'" in errors[0] and "read-only key" in errors[0]
    assert bind.read_secret not in captured.out + captured.err
    assert bind.zone_records(bind_zone) == before, "nothing written, not even a lock"

    _use_key(tmp_path, bind, bind.key_name, bind.secret)
    assert run(["apply", "-f", spec, "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    _use_key(tmp_path, bind, bind.read_key_name, bind.read_secret)
    assert run(["plan", "-f", spec, "--detailed-exitcode"]) == 0
    assert run(["drift", "-f", spec]) == 0
    bind.update(bind_zone, delete=[("_sip._udp", "SRV")])
    assert run(["drift", "-f", spec]) == 2
    assert "_sip._udp" in capsys.readouterr().out


def test_a_key_file_with_two_keys_is_refused_before_anything_is_sent(
    bind: BindServer, bind_zone: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(_spec(bind, bind_zone, tmp_path))
    key = tmp_path / ".sipctl" / "tsig.key"
    key.write_text(
        bind.key_file(bind.key_name, bind.secret) + bind.key_file("other", bind.read_secret)
    )
    key.chmod(0o600)
    assert run(["plan", "-f", spec]) == 1
    err = capsys.readouterr().err
    assert f"holds 2 keys ({bind.key_name}, other)" in err
    assert bind.secret not in err and bind.read_secret not in err
