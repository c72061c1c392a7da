"""The host keys a runner trusts are the admin's: ``ssh.known_hosts`` under a runner profile.

The attack (today's tryout): a merge request's spec names a known_hosts file of its own,
listing a key of its choosing for a host the runner's SSH credential may go to; whoever sits
on that path then has the runner's login trusted. Where the run is strict (a runner profile,
or CI), a spec's known_hosts must be the runner's own ``~/.ssh/known_hosts`` or a file the
profile's ``known_hosts`` lists; else the run is refused before any connection.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from fixtures.common import sipctl_in_process
from fixtures.properties import examples
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_runner_profile import Listener, listener  # noqa: F401  (the fixture)

from sipctl.reconciler.bindings import known_hosts_problems, runner_of
from sipctl.schemas.loader import load_spec_text

BASE = "version: 1\ndomain: mysite.ru\nservers: [{host: pbx.mysite.ru, ipv4: [192.0.2.1]}]\n"
AGENT = {"ssh-agent": {"kind": "ssh_agent", "to": ["pbx.mysite.ru:22"]}}


def _problems(spec_dir: Path, text: str, env: dict[str, str]) -> list[str]:
    loaded = load_spec_text(BASE + text, source="s.yaml", base_dir=spec_dir)
    return known_hosts_problems(loaded, runner_of(env))


def _profile(path: Path, **data: object) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "credentials": AGENT, **data}))
    return path


def _asterisk(known_hosts: str) -> str:
    return (
        f"asterisk: {{target: 'ssh://root@pbx.mysite.ru', ssh: {{known_hosts: '{known_hosts}'}}}}\n"
    )


def test_in_ci_a_spec_s_own_known_hosts_is_refused_with_what_would_allow_it(
    tmp_path: Path,
) -> None:
    (problem,) = _problems(tmp_path, _asterisk("hosts"), {"CI": "true"})
    resolved = (tmp_path / "hosts").resolve()
    assert problem.startswith("s.yaml:4:"), problem
    assert f"asterisk.ssh.known_hosts: hosts is {resolved}, not the runner's own" in problem
    assert "no connection was made" in problem
    pasted = yaml.safe_load(problem.split("add to the runner profile:\n", 1)[1])
    profile = _profile(tmp_path / "runner.yaml", **pasted)
    assert _problems(tmp_path, _asterisk("hosts"), {"SIPCTL_PROFILE": str(profile)}) == []


@pytest.mark.parametrize(
    "written", [None, "~/.ssh/known_hosts", str(Path.home() / ".ssh/known_hosts")]
)
def test_the_runner_s_own_known_hosts_needs_nothing(tmp_path: Path, written: str | None) -> None:
    text = (
        "asterisk: {target: 'ssh://root@pbx.mysite.ru'}\n"
        if written is None
        else _asterisk(written)
    )
    assert _problems(tmp_path, text, {"CI": "true"}) == []


def test_on_an_admins_machine_the_spec_s_known_hosts_is_used_as_before(tmp_path: Path) -> None:
    assert _problems(tmp_path, _asterisk("/tmp/anything"), {}) == []


def test_a_relative_profile_entry_is_from_the_profile_s_directory_links_resolved(
    tmp_path: Path,
) -> None:
    admin = tmp_path / "admin"
    admin.mkdir()
    (admin / "known_hosts").write_text("")
    profile = _profile(admin / "runner.yaml", known_hosts=["known_hosts"])
    env = {"SIPCTL_PROFILE": str(profile)}
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "link").symlink_to(admin / "known_hosts")
    assert _problems(specs, _asterisk("../admin/known_hosts"), env) == []
    assert _problems(specs, _asterisk("link"), env) == []  # the admin's file, through a link
    (specs / "known_hosts").write_text("")  # the same name beside the spec is another file
    (problem,) = _problems(specs, _asterisk("known_hosts"), env)
    assert f"lists {admin / 'known_hosts'}" in problem


def test_every_ssh_section_is_checked_once_where_its_block_is(tmp_path: Path) -> None:
    inherited = (
        _asterisk("a_hosts")
        + "firewall: {target: 'ssh://root@pbx.mysite.ru'}\n"
        + "fail2ban: {target: 'ssh://root@pbx.mysite.ru', ssh: {known_hosts: f_hosts}}\n"
    )
    found = _problems(tmp_path, inherited, {"CI": "true"})
    assert [p.split(": ")[1] for p in found] == [
        "asterisk.ssh.known_hosts",
        "fail2ban.ssh.known_hosts",
    ]


def test_plan_refuses_before_any_connection(tmp_path: Path, listener: Listener) -> None:  # noqa: F811
    hosts = tmp_path / "hosts"
    hosts.write_text(f"[127.0.0.1]:{listener.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttacker\n")
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        BASE + f"asterisk: {{target: 'ssh://root@127.0.0.1:{listener.port}', "
        "ssh: {known_hosts: hosts}}\n"
    )
    agent = {"ssh-agent": {"kind": "ssh_agent", "to": [f"127.0.0.1:{listener.port}"]}}
    profile = tmp_path / "admin" / "runner.yaml"
    profile.parent.mkdir()
    profile.write_text(yaml.safe_dump({"version": 1, "credentials": agent}))
    env = {**os.environ, "SIPCTL_PROFILE": str(profile)}
    done = sipctl_in_process("plan", "-f", str(spec), cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    err = " ".join(done.stderr.split())
    assert f"asterisk.ssh.known_hosts: hosts is {hosts.resolve()}" in err, err
    assert f'known_hosts: ["{hosts.resolve()}"]' in err, err
    assert listener.seen == []


def test_a_link_loop_is_refused_as_a_path_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (problem,) = _problems(tmp_path, _asterisk("loop"), {"CI": "true"})
    assert "asterisk.ssh.known_hosts: loop is " in problem


# --- the one rule as a property, against the file the SSH login opens ------------------------------

_PART = st.sampled_from(["..", ".", "admin", "specs", "known_hosts", "link", "other", "~", ".ssh"])


@settings(max_examples=examples(80), deadline=None)
@given(parts=st.lists(_PART, min_size=1, max_size=5))
def test_what_the_login_would_trust_is_the_runner_s_own_a_listed_file_or_refused(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    """Whatever path a spec writes (``..``, ``~``, a link in its directory), either the file
    the SSH login would open (``SshLogin.known_hosts``) is the runner's own or one the
    profile lists, links resolved, or the run is refused."""
    from sipctl.providers.base import RunContext
    from sipctl.providers.transport.ssh_login import SshLogin
    from sipctl.schemas.targets import parse_target

    root = tmp_path_factory.mktemp("kh")
    admin, specs = root / "admin", root / "specs"
    admin.mkdir()
    specs.mkdir()
    (admin / "known_hosts").write_text("")
    (specs / "link").symlink_to(admin / "known_hosts")
    profile = _profile(admin / "runner.yaml", known_hosts=["known_hosts"])
    written = "/".join(parts)
    text = _asterisk(written)
    loaded = load_spec_text(BASE + text, source="s.yaml", base_dir=specs)
    refused = known_hosts_problems(loaded, runner_of({"SIPCTL_PROFILE": str(profile)}))
    assert loaded.spec.asterisk is not None
    login = SshLogin(
        parse_target(loaded.spec.asterisk.target), loaded.spec.asterisk.ssh, RunContext(specs)
    )
    opened = os.path.realpath(login.known_hosts)
    trusted = {
        os.path.realpath(Path("~/.ssh/known_hosts").expanduser()),
        os.path.realpath(admin / "known_hosts"),
    }
    event("refused" if refused else "trusted")
    assert (opened in trusted) == (refused == []), (written, opened, refused)
