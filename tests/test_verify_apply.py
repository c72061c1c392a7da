"""The whole chain: `sipctl apply` on real BIND + real Asterisk 22, ending in verify.

apply writes DNS (RFC 2136) and the guest setup, then verifies against the spec's own DNS
server: every user answers 200 over UDP and TCP. A defect made afterwards by hand makes
`sipctl verify` exit 1 and name it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.asterisk import AsteriskInstance
from fixtures.bind import SECRET_ENV, BindServer

from sipctl.cli import run

pytestmark = [pytest.mark.asterisk, pytest.mark.bind]


def _with_verify_command() -> None:
    from sipctl.cli import app
    from sipctl.cli_verify import verify_command

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "verify" not in names and "verify_command" not in names:
        app.command("verify")(verify_command)


def spec_text(bind: BindServer, zone: str, ast: AsteriskInstance, unknown: str) -> str:
    ast.use()
    return (
        f"version: 1\ndomain: {zone}\n"
        f"transports: {{udp: {{port: {ast.sip_port}}}, tcp: {{port: {ast.sip_port}}}}}\n"
        f"servers: [{{host: pbx.{zone}, ipv4: [127.0.0.1], priority: 10}}]\n"
        "users: {director: 105, alex: 106, '101': 101}\n"
        f"dns:\n  provider: rfc2136\n  server: '{bind.server}'\n"
        f"  tsig: {{name: {bind.key_name}, algorithm: {bind.algorithm}, secret_env: {SECRET_ENV}}}\n"
        "  timeout: 3\n"
        "asterisk:\n"
        "  target: local\n"
        f"  config_dir: {ast.config_dir}\n"
        f"  unknown_callers: {unknown}\n"
        "  rtp: {start: 30000, end: 30100}\n"
    )


@pytest.mark.parametrize("unknown", ["not-found", "reject"])
def test_apply_ends_with_a_passing_verify_then_a_defect_is_named(
    unknown: str,
    bind: BindServer,
    bind_zone: str,
    asterisk: AsteriskInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _with_verify_command()
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(spec_text(bind, bind_zone, asterisk, unknown))
    code = run(["apply", "-f", str(spec), "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    # the post-apply verify printed its table and every probe held
    assert "SIP+D2U" in out and "verify: OK" in out, out
    assert out.count("200 OK") >= 6, out  # 3 users x udp, tcp

    args = ["verify", "-f", str(spec), "--nameserver", bind.server, "--json", "--timeout", "2"]
    assert run(args) == 0
    data = json.loads(capsys.readouterr().out)["domains"][0]["verify"]
    statuses = {(p["transport"], p["user"]): p["status"] for p in data["probes"]}
    for user in ("director", "alex", "101"):
        assert statuses[("udp", user)] == 200 and statuses[("tcp", user)] == 200
    canary = [p["status"] for p in data["probes"] if p["role"] == "canary"]
    assert set(canary) == ({404} if unknown == "not-found" else {200})

    # A defect by hand in BIND: the TCP SRV points at the wrong port.
    bind.update(
        bind_zone,
        delete=[("_sip._tcp", "SRV")],
        add=[("_sip._tcp", 3600, "SRV", f"10 0 {asterisk.sip_port + 1} pbx")],
    )
    assert run([*args[:-3], "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert "[port-differs]" in out, out


def test_apply_exits_1_when_the_post_apply_verify_fails(
    bind: BindServer,
    bind_zone: str,
    asterisk: AsteriskInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # DNS sends callers to 127.0.0.2, where no PBX listens: apply works, the caller would not.
    monkeypatch.setenv(SECRET_ENV, bind.secret)
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        spec_text(bind, bind_zone, asterisk, "not-found").replace("127.0.0.1]", "127.0.0.2]")
    )
    code = run(["apply", "-f", str(spec), "--auto-approve", "--no-color"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "Apply complete!" in out
    assert "applied, but verify failed:" in err
    assert "target-unreachable" in out and "127.0.0.2" in out
    # --no-verify skips it: the same apply (now a no-op) exits 0
    assert run(["apply", "-f", str(spec), "--auto-approve", "--no-verify"]) == 0
