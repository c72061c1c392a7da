"""The fail2ban layer's pure parts (renderer, ini values, proof judge) and the provider on
targets without a running server: ``dir:``, a host where fail2ban does not run, and a
filter that fails its proof. fail2ban-regex is the real program throughout.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from fixtures import host_profile
from fixtures.common import require

from sipctl.errors import StalePlanError
from sipctl.providers import fail2ban as fail2ban_provider
from sipctl.providers.base import RunContext
from sipctl.providers.fail2ban import Fail2banProvider
from sipctl.reconciler.diff import diff
from sipctl.reconciler.fail2ban_proof import judge, proof_lines
from sipctl.reconciler.layers import layer_named
from sipctl.reconciler.render.fail2ban import (
    FILTER_TEXT,
    fail2ban_artefacts,
    jail_text,
    normalize_ini,
    render_fail2ban,
)
from sipctl.reconciler.resources import Resource
from sipctl.schemas.loader import LoadedSpec, load_spec_text

BASE = """\
version: 1
domain: mysite.ru
"""


def spec_of(extra: str, base_dir: Path | None = None) -> LoadedSpec:
    return load_spec_text(BASE + textwrap.dedent(extra), base_dir=base_dir)


def jail_values(extra: str) -> dict[str, str]:
    jail = normalize_ini(jail_text(spec_of(extra).spec))
    items: list[str] = jail["[sipctl-asterisk]"]
    return dict(item.split(" = ", 1) for item in items)


def test_jail_defaults_ban_both_protocols_with_iptables() -> None:
    jail = jail_values("fail2ban: {}\n")
    assert jail["enabled"] == "true"
    assert jail["filter"] == "sipctl-asterisk"
    assert jail["logpath"] == "/var/log/asterisk/messages.log"
    assert (jail["maxretry"], jail["findtime"], jail["bantime"]) == ("5", "600", "3600")
    assert jail["port"] == "5060"  # udp and tcp share the default port
    assert jail["protocol"] == "tcp,udp"
    assert jail["banaction"] == "iptables-multiport"  # no firewall section: iptables
    assert jail["ignoreip"] == "127.0.0.1/8 ::1"


def test_jail_follows_spec() -> None:
    jail = jail_values(
        """\
        transports: {udp: {port: 5070}, tls: {port: 5071}}
        firewall: {backend: nftables}
        fail2ban:
          enabled: false
          logpath: /var/log/asterisk/full
          maxretry: 3
          findtime: 60
          bantime: -1
          ignoreip: [192.0.2.0/24, "::1"]
        """
    )
    assert jail["enabled"] == "false"
    assert jail["port"] == "5070,5071"
    assert jail["banaction"] == "nftables-multiport"
    assert jail["ignoreip"] == "127.0.0.1/8 ::1 192.0.2.0/24"
    assert (jail["maxretry"], jail["findtime"], jail["bantime"]) == ("3", "60", "-1")
    assert jail["logpath"] == "/var/log/asterisk/full"


def test_resources_and_artefacts() -> None:
    spec = spec_of("fail2ban: {config_dir: /srv/f2b}\n").spec
    resources = render_fail2ban(spec)
    assert [str(r.address) for r in resources] == [
        "fail2ban.file[/srv/f2b/filter.d/sipctl-asterisk.conf]",
        "fail2ban.file[/srv/f2b/jail.d/sipctl.conf]",
    ]
    assert all(r.value == normalize_ini(r.payload) for r in resources)
    assert layer_named("fail2ban").render(spec) == resources
    assert sorted(fail2ban_artefacts(spec)) == [
        "filter.d/sipctl-asterisk.conf",
        "jail.d/sipctl.conf",
    ]
    assert render_fail2ban(spec_of("").spec) == []
    assert fail2ban_artefacts(spec_of("").spec) == {}


def test_values_ignore_comments_spacing_and_order() -> None:
    text = jail_text(spec_of("fail2ban: {}\n").spec)
    lines = text.splitlines()
    shuffled = "\n".join(
        ["; an admin's comment", lines[1], *reversed(lines[2:]), "", "# end"]
    ).replace(" = ", "   =\t")
    assert normalize_ini(shuffled) == normalize_ini(text)
    assert normalize_ini(text.replace("maxretry = 5", "maxretry = 6")) != normalize_ini(text)
    assert "unparsable" in normalize_ini("not ini at all [")


def test_judge_names_what_went_wrong() -> None:
    lines = proof_lines()
    right = [line.expect for line in lines if line.expect]
    assert judge(lines, "\n".join(right)) == []
    smuggled = [a if a != "198.51.100.5" else "6.6.6.5" for a in right]
    assert "6.6.6.5" in judge(lines, "\n".join(smuggled))[0]
    missing = judge(lines, "\n".join(right[1:]))
    assert "dialplan, v4:port (203.0.113.1)" in missing[0]
    assert "must not count: 198.51.100.8" in judge(lines, "\n".join([*right, "198.51.100.8"]))[0]


# -- the provider without a running fail2ban ----------------------------------------------------


def provider(loaded: LoadedSpec, tmp_path: Path) -> Fail2banProvider:
    return Fail2banProvider(loaded, RunContext(base_dir=tmp_path))


def test_dir_target_writes_files_only(tmp_path: Path) -> None:
    loaded = spec_of("fail2ban: {target: 'dir:state'}\n", base_dir=tmp_path)
    desired = render_fail2ban(loaded.spec)
    p = provider(loaded, tmp_path)
    assert p.target_id == "dir:state"
    live = p.read(desired)
    assert live.problems == []
    assert live.skipped == [
        "dir:state: files only; 'fail2ban-client reload' is skipped (a directory target "
        "runs no programs)"
    ]
    changes = diff(desired, live)
    assert [c.action for c in changes] == ["create", "create"]
    lines = p.apply(changes, live)
    assert lines[-1] == "dir:state: reload skipped (a directory target runs no programs)"
    written = tmp_path / "state/etc/fail2ban/filter.d/sipctl-asterisk.conf"
    assert written.read_text() == FILTER_TEXT
    mtime = written.stat().st_mtime_ns

    again = provider(loaded, tmp_path)
    assert diff(desired, again.read(desired)) == []
    assert written.stat().st_mtime_ns == mtime

    # An admin's comment is no change; an edited value is.
    jail = tmp_path / "state/etc/fail2ban/jail.d/sipctl.conf"
    jail.write_text("# checked by the admin\n" + jail.read_text())
    assert diff(desired, provider(loaded, tmp_path).read(desired)) == []
    jail.write_text(jail.read_text().replace("maxretry = 5", "maxretry = 50"))
    live = provider(loaded, tmp_path).read(desired)
    (change,) = diff(desired, live)
    assert change.action == "update"
    assert change.before["[sipctl-asterisk]"] == [
        "maxretry = 50" if item == "maxretry = 5" else item
        for item in change.after["[sipctl-asterisk]"]
    ]
    assert [(d["before"], d["after"]) for d in change.details] == [
        ("maxretry = 50", "maxretry = 5")
    ]
    # Edited again between read and apply: nothing is written.
    jail.write_text(jail.read_text() + "\n")
    with pytest.raises(StalePlanError):
        provider(loaded, tmp_path).apply([change], live)


@pytest.mark.fail2ban
def test_server_not_running_or_missing(tmp_path: Path) -> None:
    config = tmp_path / "etc"
    host_profile.add("fail2ban", ["fail2ban-client", "-s", f"{tmp_path}/no.sock"])
    host_profile.add("fail2ban", [f"{tmp_path}/no-such-fail2ban-client"], entry="missing")
    not_running = spec_of(
        f"""\
        fail2ban:
          target: local
          config_dir: {config}
          logpath: {tmp_path}/messages
        """
    )
    desired = render_fail2ban(not_running.spec)
    live = provider(not_running, tmp_path).read(desired)
    assert live.problems == []
    assert live.skipped == [
        "local: fail2ban is not running; the files are written and 'fail2ban-client reload' "
        "is skipped"
    ]
    assert live.notes == [
        f"local: the log file {tmp_path}/messages does not exist yet; fail2ban refuses a "
        "jail without its log file (have Asterisk write it, see logger.conf)"
    ]
    lines = provider(not_running, tmp_path).apply(diff(desired, live), live)
    assert lines[-1] == "local: fail2ban is not running; reload skipped"
    assert (config / "jail.d/sipctl.conf").exists()

    missing = spec_of(
        f"""\
        fail2ban:
          target: local
          config_dir: {config}
          program: missing
        """
    )
    live = provider(missing, tmp_path).read(render_fail2ban(missing.spec))
    assert live.skipped == [
        f"local: '{tmp_path}/no-such-fail2ban-client' was not found; the files are written and "
        "the reload is skipped (is fail2ban installed?)"
    ]


@pytest.mark.fail2ban
def test_a_filter_that_can_be_fooled_never_passes_read(tmp_path: Path) -> None:
    """The proof runs the real fail2ban-regex: a lazy From pattern (as in the stock filter)
    lets a display name choose the address, and read reports it as a problem."""
    loaded = spec_of("fail2ban: {target: 'dir:state'}\n", base_dir=tmp_path)
    good = render_fail2ban(loaded.spec)
    strict_from = next(ln for ln in FILTER_TEXT.splitlines() if ln.startswith("_from = "))
    lazy = FILTER_TEXT.replace(strict_from, "_from = '.*?'")
    assert lazy != FILTER_TEXT
    bad = [Resource(good[0].address, normalize_ini(lazy), lazy), good[1]]
    live = provider(loaded, tmp_path).read(bad)
    assert (
        "a crafted name made the filter take an address the caller wrote: 6.6.6.5"
        in (live.problems[0])
    )
    assert all(problem.endswith("nothing was written") for problem in live.problems)

    broken = FILTER_TEXT.replace("failregex = ", "failregex = (")
    live = provider(loaded, tmp_path).read([Resource(good[0].address, {}, broken)])
    assert live.problems and "refused the filter" in live.problems[0]


@pytest.mark.fail2ban
def test_a_filter_is_proven_once_per_process_until_fail2ban_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fail2ban-regex takes a quarter of a second of CPU: the same filter read again in one
    process (a plan and its apply, each domain of a directory) keeps the first answer, a good
    one or a bad one; another filter, or a fail2ban-regex that changed, is proven again."""
    real = shutil.which("fail2ban-regex")
    require(real is not None, "fail2ban-regex (package fail2ban)")
    runs = tmp_path / "runs"
    counting = tmp_path / "bin" / "fail2ban-regex"  # the real one, counting its runs
    counting.parent.mkdir()
    counting.write_text(f'#!/bin/sh\necho run >> {runs}\nexec {real} "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setenv("PATH", f"{counting.parent}:{os.environ['PATH']}")
    loaded = spec_of("fail2ban: {target: 'dir:state'}\n", base_dir=tmp_path)
    good = render_fail2ban(loaded.spec)
    strict_from = next(ln for ln in FILTER_TEXT.splitlines() if ln.startswith("_from = "))
    lazy = FILTER_TEXT.replace(strict_from, "_from = '.*?'")
    bad = [Resource(good[0].address, normalize_ini(lazy), lazy), good[1]]

    def read(desired: list[Resource]) -> tuple[list[str], int]:
        said: list[str] = []
        live = Fail2banProvider(loaded, RunContext(base_dir=tmp_path, log=said.append)).read(
            desired
        )
        proven = [line for line in said if "proven" in line]
        return proven + live.problems, len(runs.read_text().splitlines())

    first = read(good)
    assert first == (["fail2ban filter proven with fail2ban-regex on this machine"], 1)
    assert read(good) == first
    wrong, ran = read(bad)
    assert ran == 2 and "a crafted name made the filter take" in wrong[0], wrong
    assert read(bad) == (wrong, 2)
    later = counting.stat().st_mtime_ns + 10**9  # fail2ban upgraded: its answer may differ
    os.utime(counting, ns=(later, later))
    assert read(good) == (first[0], 3)


@pytest.mark.fail2ban
def test_proof_runs_on_the_target_without_a_local_fail2ban_regex(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where this machine has no fail2ban-regex, the target's runs the proof (here: local,
    through the transport's shell); a ``dir:`` target cannot, and the plan says so."""
    monkeypatch.setattr(fail2ban_provider, "local_fail2ban_regex", lambda: None)
    host_profile.add("fail2ban", ["fail2ban-client", "-s", f"{tmp_path}/no.sock"])
    loaded = spec_of(
        f"""\
        fail2ban:
          target: local
          config_dir: {tmp_path}/etc
        """
    )
    said: list[str] = []
    ctx = RunContext(base_dir=tmp_path, log=said.append)
    desired = render_fail2ban(loaded.spec)
    live = Fail2banProvider(loaded, ctx).read(desired)
    assert live.problems == []
    assert "fail2ban filter proven with fail2ban-regex on local" in said

    strict_from = next(ln for ln in FILTER_TEXT.splitlines() if ln.startswith("_from = "))
    lazy = FILTER_TEXT.replace(strict_from, "_from = '.*?'")
    bad = [Resource(desired[0].address, normalize_ini(lazy), lazy), desired[1]]
    live = Fail2banProvider(loaded, ctx).read(bad)
    assert live.problems[0].startswith(
        "the fail2ban filter sipctl would write is wrong (proven with fail2ban-regex on local)"
    )

    on_dir = spec_of("fail2ban: {target: 'dir:state'}\n", base_dir=tmp_path)
    live = provider(on_dir, tmp_path).read(render_fail2ban(on_dir.spec))
    assert live.problems == []
    assert live.notes == [
        "fail2ban filter NOT proven: fail2ban-regex is not installed on this machine and "
        "dir:state runs no programs; install fail2ban here to have it checked"
    ]


def test_a_client_that_answers_otherwise_is_quoted(tmp_path: Path) -> None:
    """Not "not running" but something else (here a command that fails without a word)."""
    host_profile.add("fail2ban", ["false"])
    loaded = spec_of(
        f"""\
        fail2ban:
          target: local
          config_dir: {tmp_path}/etc
        """
    )
    live = provider(loaded, tmp_path).read(render_fail2ban(loaded.spec))
    assert live.skipped == [
        "local: fail2ban-client ping failed (exit status 1); the files are written and the "
        "reload is skipped"
    ]


def test_sshd_jail_uses_the_stock_filter_on_the_ssh_port() -> None:
    from sipctl.reconciler.render.fail2ban import jail_text, normalize_ini
    from sipctl.schemas.spec import Spec

    def jail(**extra: object) -> dict[str, list[str]]:
        data = {"version": 1, "domain": "mysite.ru", "fail2ban": {"sshd": True}, **extra}
        value = normalize_ini(jail_text(Spec.model_validate(data)))
        assert isinstance(value, dict)
        return value

    plain = jail()["[sipctl-sshd]"]
    for item in ("filter = sshd", "port = 22", "protocol = tcp", "logpath = %(sshd_log)s"):
        assert item in plain, plain
    assert "banaction = iptables-multiport" in plain
    moved = jail(firewall={"ssh_port": 2222, "backend": "nftables"})["[sipctl-sshd]"]
    assert "port = 2222" in moved and "banaction = nftables-multiport" in moved
    off = normalize_ini(
        jail_text(Spec.model_validate({"version": 1, "domain": "mysite.ru", "fail2ban": {}}))
    )
    assert isinstance(off, dict) and "[sipctl-sshd]" not in off
