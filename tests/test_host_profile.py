"""The programs sipctl runs on a host are the host's: its root-owned profile, never the spec.

The attack of issue 21: ``asterisk.command: "sh -c 'touch /tmp/pwned' x"`` passed validate
and ran as root at ``plan``, on ``local`` and over SSH. Now a spec names no program at all
(any interpreter, any shell: refused with the YAML to move to the host profile), and the
host profile is trusted only when no one but root can change it, read without following a
link: on ``local`` and through a real sshd.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures import host_profile
from fixtures.host_profile import HostProfileFile
from fixtures.sshd import SshServer

from sipctl.cli import run
from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.transport.host_profile import host_programs

INTERPRETERS = [
    "sh -c 'touch {flag}' x",
    'python3 -c \'open("{flag}", "w")\'',
    "perl -e 'open(F, \">{flag}\")'",
    "env sh -c 'touch {flag}'",
    "busybox sh -c 'touch {flag}'",
    "/usr/bin/touch {flag}",
]
KEYS = ["asterisk:\n  target: local\n  command", "fail2ban:\n  target: local\n  command"]


def sipctl(
    capsys: pytest.CaptureFixture[str], *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """sipctl run in this process from ``cwd`` (a program it started would still leave the
    test's flag file, as from a process of its own)."""
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        capsys.readouterr()
        code = run(list(args))
        said = capsys.readouterr()
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(list(args), code, said.out, said.err)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("program", INTERPRETERS)
def test_no_spec_program_runs_at_plan_on_a_local_target(
    tmp_path: Path, key: str, program: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "pwned"
    spec = tmp_path / "sipctl.yaml"
    value = json.dumps(program.format(flag=flag))
    spec.write_text(f"version: 1\ndomain: mysite.ru\n{key}: {value}\n")
    for command in (["validate"], ["plan"]):
        done = sipctl(capsys, *command, "-f", str(spec), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        assert f"{spec}:5:3: " in done.stderr and "a spec no longer names a program" in done.stderr
    assert not flag.exists()


def test_dns_reload_command_is_refused_and_nothing_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "pwned"
    (tmp_path / "z.zone").write_text("")
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        "version: 1\ndomain: mysite.ru\nservers: [{host: pbx.mysite.ru, ipv4: [192.0.2.1]}]\n"
        f"dns:\n  provider: zonefile\n  file: z.zone\n  reload_command: touch {flag}\n"
    )
    done = sipctl(capsys, "apply", "-f", str(spec), "--auto-approve", cwd=tmp_path)
    assert done.returncode == 1 and "dns.reload_command: a spec no longer" in done.stderr
    assert not flag.exists()


# --- the profile's program runs, and only a trusted profile is read -----------------------------


def _fail2ban_spec(tmp_path: Path, target: str = "local", extra: str = "") -> Path:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: mysite.ru\nfail2ban:\n  target: {target}\n"
        f"  config_dir: {tmp_path}/f2b\n  logpath: {tmp_path}/messages\n{extra}"
    )
    (tmp_path / "f2b").mkdir(exist_ok=True)
    return spec


def test_the_profiles_entry_is_what_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = tmp_path / "ran"
    script = tmp_path / "client"
    script.write_text(f'#!/bin/sh\necho "$@" >> {ran}\necho pong\n')
    script.chmod(0o755)
    host_profile.add("fail2ban", [str(script), "-s", "/run/x.sock"], entry="pbx1")
    spec = _fail2ban_spec(tmp_path, extra="  program: pbx1\n")
    done = sipctl(capsys, "plan", "-f", str(spec), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ran.read_text().splitlines()[0] == "-s /run/x.sock ping"


def _no_profile(profile: HostProfileFile) -> None:
    """No host profile at all: not even what the session's fixtures (a running Asterisk
    started by an earlier module) wrote into every test's copy."""
    profile.entries.clear()
    profile.path.unlink(missing_ok=True)


def test_a_named_entry_that_is_missing_is_an_error_never_a_fallback(
    tmp_path: Path, host_profile: HostProfileFile, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_profile(host_profile)
    spec = _fail2ban_spec(tmp_path, extra="  program: other\n")
    done = sipctl(capsys, "plan", "-f", str(spec), cwd=tmp_path)
    assert done.returncode == 1
    assert "fail2ban.program: 'other' names an entry of the host profile" in done.stderr
    host_profile.add("fail2ban", ["fail2ban-client"], entry="pbx1")
    done = sipctl(capsys, "plan", "-f", str(spec), cwd=tmp_path)
    assert done.returncode == 1
    assert "'other' is not an entry of fail2ban in local:" in done.stderr
    assert "(its entries: pbx1)" in done.stderr


def _untrusted(profile: HostProfileFile, how: str) -> None:
    """Make ``profile`` (already written) untrusted in one of the ways an attacker could."""
    path = profile.path
    if how == "group-writable":
        path.chmod(0o664)
    elif how == "world-writable":
        path.chmod(0o646)
    elif how == "owned by another user":
        os.chown(path, 65534, 65534)
    elif how == "a link":
        real = path.with_name("real.yaml")
        path.rename(real)
        path.symlink_to(real)
    elif how == "a linked directory":
        real = path.parent.with_name(path.parent.name + "-real")
        path.parent.rename(real)
        path.parent.symlink_to(real)
    elif how == "in a directory others may write":
        path.parent.chmod(0o777)
    elif how == "in a directory of another user":
        os.chown(path.parent, 65534, 65534)


# chown to another user needs root; the rest any user can do to its own files
_ROOT = pytest.mark.root
UNTRUSTED = [
    "group-writable",
    "world-writable",
    pytest.param("owned by another user", marks=_ROOT),
    "a link",
    "a linked directory",
    "in a directory others may write",
    pytest.param("in a directory of another user", marks=_ROOT),
]


@pytest.mark.parametrize("how", UNTRUSTED)
def test_an_untrusted_profile_on_local_refuses_the_run(
    tmp_path: Path, host_profile: HostProfileFile, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = tmp_path / "pwned"
    host_profile.add("fail2ban", ["sh", "-c", f"touch {flag}"])
    _untrusted(host_profile, how)
    done = sipctl(capsys, "plan", "-f", str(_fail2ban_spec(tmp_path)), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "is not trusted" in done.stderr, done.stderr
    assert not flag.exists()


def test_without_a_profile_the_stock_program_runs(
    tmp_path: Path, host_profile: HostProfileFile
) -> None:
    _no_profile(host_profile)
    ctx = RunContext(base_dir=tmp_path)
    try:
        loaded = host_programs(ctx, ctx.transports.get("local"))
        assert loaded.profile is None
        assert loaded.program("fail2ban", None, "k") == ("fail2ban-client",)
        assert loaded.program("asterisk", None, "k") == ("asterisk",)
        assert loaded.program("zone_reload", None, "k") is None
    finally:
        ctx.close()


def test_a_dir_target_reads_the_profile_below_its_root(tmp_path: Path) -> None:
    root = tmp_path / "state"
    inside = root / host_profile.current().path.relative_to("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("version: 1\nasterisk: {default: [docker, exec, pbx, asterisk]}\n")
    ctx = RunContext(base_dir=tmp_path)
    try:
        loaded = host_programs(ctx, ctx.transports.get("dir:state"))
        assert loaded.program("asterisk", None, "k") == ("docker", "exec", "pbx", "asterisk")
    finally:
        ctx.close()


# --- over SSH -----------------------------------------------------------------------------------


@pytest.fixture
def ssh_ctx(ssh_server: SshServer, tmp_path: Path) -> Iterator[tuple[RunContext, str]]:
    from sipctl.schemas.spec import Ssh

    ctx = RunContext(base_dir=tmp_path)
    ctx.transports.get(ssh_server.target, Ssh.model_validate(ssh_server.ssh_spec()))
    yield ctx, ssh_server.target
    ctx.close()


@pytest.mark.sshd
def test_over_ssh_the_hosts_profile_is_read(ssh_ctx: tuple[RunContext, str]) -> None:
    ctx, target = ssh_ctx
    host_profile.add("asterisk", ["chroot", "/srv/pbx", "asterisk"])
    loaded = host_programs(ctx, ctx.transports.get(target))
    assert loaded.program("asterisk", None, "k") == ("chroot", "/srv/pbx", "asterisk")


@pytest.mark.sshd
@pytest.mark.parametrize("how", UNTRUSTED)
def test_over_ssh_an_untrusted_profile_is_refused(
    ssh_ctx: tuple[RunContext, str], host_profile: HostProfileFile, how: str
) -> None:
    ctx, target = ssh_ctx
    host_profile.add("asterisk", ["sh", "-c", "touch /tmp/pwned"])
    _untrusted(host_profile, how)
    with pytest.raises(ProviderError, match="is not trusted"):
        host_programs(ctx, ctx.transports.get(target))


@pytest.mark.sshd
def test_over_ssh_no_profile_means_the_stock_programs(
    ssh_ctx: tuple[RunContext, str], host_profile: HostProfileFile
) -> None:
    _no_profile(host_profile)
    ctx, target = ssh_ctx
    loaded = host_programs(ctx, ctx.transports.get(target))
    assert loaded.profile is None and loaded.program("asterisk", None, "k") == ("asterisk",)


# --- the profiles' own schemas -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (
            "host-profile",
            {"version": 1, "asterisk": {"default": ["docker", "exec", "pbx", "asterisk"]}},
            {"version": 1, "asterisk": {"default": "sh -c id"}},
        ),
        (
            "runner-profile",
            {
                "version": 1,
                "credentials": {"K": {"kind": "tsig", "to": ["ns1:53"], "zones": ["*.a.EX."]}},
            },
            {"version": 1, "credentials": {"K": {"kind": "tsig", "zones": ["a b.example"]}}},
        ),
    ],
)
def test_the_profiles_schemas_agree_with_their_models(
    kind: str, good: dict[str, object], bad: dict[str, object]
) -> None:
    import jsonschema

    from sipctl.errors import SpecError
    from sipctl.schemas.outputs import output_text
    from sipctl.schemas.profiles import HostProfile, RunnerProfile, parse_profile

    schema = json.loads(output_text(kind))
    model = HostProfile if kind == "host-profile" else RunnerProfile
    jsonschema.validate(good, schema)
    parse_profile(json.dumps(good), "p.yaml", model)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(SpecError, match=r"p\.yaml: "):
        parse_profile(json.dumps(bad), "p.yaml", model)


def test_over_ssh_a_spec_program_is_refused_before_the_host_is_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same attack on an ssh:// target: refused at load, so no login is even tried."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        f"version: 1\ndomain: mysite.ru\nasterisk:\n  target: 'ssh://root@127.0.0.1:{port}'\n"
        "  command: \"sh -c 'touch /tmp/pwned' x\"\n"
    )
    try:
        done = sipctl(capsys, "plan", "-f", str(spec), cwd=tmp_path)
        assert done.returncode == 1 and "a spec no longer names a program" in done.stderr
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
