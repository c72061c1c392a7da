"""The DNS layer through ``sipctl plan/apply``, against the real BIND and a zone file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.bind import BindServer, bind_env, dns_spec
from fixtures.common import EXAMPLES, run_sipctl

pytestmark = pytest.mark.bind


def sipctl(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_sipctl(*args, env=env, cwd=cwd, timeout=60)


def test_plan_apply_plan_against_bind(bind: BindServer, bind_zone: str, tmp_path: Path) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(dns_spec(bind, bind_zone))
    env = bind_env(bind)
    first = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert first.returncode == 2, first.stdout + first.stderr
    assert "NAPTR" in first.stdout
    applied = sipctl("apply", "-f", str(spec), "--auto-approve", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = sipctl("plan", "-f", str(spec), "--detailed-exitcode", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert bind.query(f"_sip._udp.{bind_zone}", "SRV") == [f"10 0 5060 asterisk.{bind_zone}."]
    for result in (first, applied, again):
        assert bind.secret not in result.stdout + result.stderr


def test_a_saved_plan_made_stale_is_refused_with_exit_3(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    z = bind_zone
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(dns_spec(bind, z))
    env = bind_env(bind)
    plan_file = tmp_path / "plan.json"
    made = sipctl("plan", "-f", str(spec), "--out", str(plan_file), env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert bind.secret not in plan_file.read_text()
    bind.update(z, add=[(f"_sip._tcp.{z}.", 300, "SRV", f"1 1 5060 elsewhere.{z}.")])
    snapshot = bind.zone_records(z)
    refused = sipctl("apply", str(plan_file), "--auto-approve", env=env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    assert bind.zone_records(z) == snapshot
    assert bind.secret not in refused.stdout + refused.stderr


def test_a_wrong_key_is_one_line_and_exit_1(
    bind: BindServer, bind_zone: str, tmp_path: Path
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(dns_spec(bind, bind_zone, key_name="not-the-key"))
    result = sipctl("plan", "-f", str(spec), env=bind_env(bind))
    assert result.returncode == 1
    assert "not-the-key" in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert bind.secret not in result.stdout + result.stderr


def test_the_readme_example_on_a_zone_file(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "mysite.yaml", tmp_path / "mysite.yaml")
    spec = str(tmp_path / "mysite.yaml")
    plan = sipctl("plan", "-f", spec, "--target", "dns", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "does not exist" in plan.stdout + plan.stderr
    applied = sipctl("apply", "-f", spec, "--target", "dns", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    again = sipctl("plan", "-f", spec, "--target", "dns", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    zone = (tmp_path / "state" / "mysite.ru.zone").read_text()
    assert '"SIP+D2U" "" _sip._udp' in zone
    assert "asterisk 3600 IN A 203.0.113.10" in [
        " ".join(line.split()) for line in zone.splitlines()
    ]


def test_render_writes_the_dns_artefacts(bind: BindServer, tmp_path: Path) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(dns_spec(bind, "mysite.test"))
    result = sipctl("render", "-f", str(spec), "--dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    policy = (tmp_path / "out" / "dns" / "mysite.test.update-policy.conf").read_text()
    assert f'grant "{bind.key_name}" name _sip._udp.mysite.test. SRV;' in policy
    assert (tmp_path / "out" / "dns" / "mysite.test.zone-snippet").exists()


def test_the_bind_example_against_the_test_server(bind: BindServer, tmp_path: Path) -> None:
    zone = bind.new_zone("mysite.ru")
    try:
        text = (EXAMPLES / "bind.yaml").read_text()
        text = text.replace("server: 127.0.0.1:53", f"server: '{bind.server}'")
        text = text.replace("tsig: {name: sipctl,", f"tsig: {{name: {bind.key_name},")
        spec = tmp_path / "bind.yaml"
        spec.write_text(text)
        env = bind_env(bind)
        args = ("-f", str(spec), "--target", "dns")
        applied = sipctl("apply", *args, "--auto-approve", env=env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        again = sipctl("plan", *args, "--detailed-exitcode", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert bind.query(f"_sip._udp.{zone}", "SRV")
    finally:
        bind.delete_zone(zone)
