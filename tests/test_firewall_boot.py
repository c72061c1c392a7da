"""Persist defaults, the refused main nftables file, and the check that something loads the
persist file at boot (ifupdown, netfilter-persistent, nftables.service)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.providers.firewall.boot import boot_warnings

IFACES = """\
auto eth0
iface eth0 inet static
    address 192.0.2.5/24
    # post-up iptables-restore < /etc/commented.up
    post-up /sbin/iptables-restore < /etc/iptables.up
    post-up ip6tables-restore </etc/ip6tables.up
"""


def test_ifupdown_lines_load_the_iptables_files() -> None:
    paths = {"ipv4": "/etc/iptables.up", "ipv6": "/etc/ip6tables.up"}
    assert boot_warnings("iptables", paths, {"boot interfaces": IFACES}) == []
    [warning] = boot_warnings(
        "iptables",
        paths,
        {
            "boot interfaces": IFACES.split("    post")[0]
            + "    post-up iptables-restore < /etc/iptables.up\n"
        },
    )
    assert "'post-up ip6tables-restore < /etc/ip6tables.up'" in warning
    other = {"ipv4": "/etc/commented.up"}
    [warning] = boot_warnings("iptables", other, {"boot interfaces": IFACES})
    assert (
        "post-up iptables-restore < /etc/commented.up" in warning
        and "/etc/network/interfaces" in warning
    )


def test_netfilter_persistent_loads_its_own_files_only() -> None:
    paths = {"ipv4": "/etc/iptables/rules.v4", "ipv6": "/etc/iptables/rules.v6"}
    assert boot_warnings("iptables", paths, {"boot netfilter-persistent": "installed\n"}) == []
    assert len(boot_warnings("iptables", paths, {"boot netfilter-persistent": ""})) == 2


def test_nftables_conf_includes_by_path_or_glob() -> None:
    paths = {"inet": "/etc/nftables.d/sipctl.nft"}
    glob = '#!/usr/sbin/nft -f\nflush ruleset\ninclude "/etc/nftables.d/*.nft"\n'
    assert boot_warnings("nftables", paths, {"boot nftables": glob}) == []
    relative = 'include "nftables.d/sipctl.nft"\n'
    assert boot_warnings("nftables", paths, {"boot nftables": relative}) == []
    [warning] = boot_warnings("nftables", paths, {"boot nftables": "flush ruleset\n"})
    assert 'include "/etc/nftables.d/sipctl.nft" to /etc/nftables.conf' in warning


SPEC = """\
version: 1
domain: mysite.ru
firewall:
  target: "dir:host"
  backend: BACKEND
"""


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_plan_warns_with_the_line_to_add_until_it_is_there(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sipctl.yaml").write_text(SPEC.replace("BACKEND", backend))
    assert run(["plan"]) == 0
    out, err = capsys.readouterr()
    if backend == "iptables":
        assert "post-up iptables-restore < /etc/iptables.up" in out + err
        assert "post-up ip6tables-restore < /etc/ip6tables.up" in out + err
        etc = tmp_path / "host" / "etc" / "network"
        etc.mkdir(parents=True)
        (etc / "interfaces").write_text(IFACES)
    else:
        assert 'include "/etc/nftables.d/sipctl.nft"' in out + err
        (tmp_path / "host" / "etc").mkdir(parents=True)
        (tmp_path / "host" / "etc" / "nftables.conf").write_text(
            'flush ruleset\ninclude "/etc/nftables.d/*.nft"\n'
        )
    assert run(["apply", "--auto-approve"]) == 0
    out, err = capsys.readouterr()
    assert "nothing loads" not in out + err
    default = "etc/iptables.up" if backend == "iptables" else "etc/nftables.d/sipctl.nft"
    assert (tmp_path / "host" / default).is_file()


def test_the_distributions_main_nftables_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = SPEC.replace("BACKEND", "nftables") + "  persist: /etc/nftables.conf\n"
    (tmp_path / "sipctl.yaml").write_text(text)
    assert run(["validate"]) == 1
    err = capsys.readouterr().err
    assert "sipctl.yaml:" in err
    assert 'include "/etc/nftables.d/sipctl.nft"' in err


def test_persist_null_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sipctl.schemas.loader import load_spec_text

    text = SPEC.replace("BACKEND", "iptables").replace('"dir:host"', "local") + "  persist: null\n"
    spec = load_spec_text(text, base_dir=tmp_path).spec
    assert spec.firewall is not None and spec.firewall.persist is None


SECRET = "root:$y$j9T$TOPSECRET-hash:19700:0:99999:7:::\n-----BEGIN OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
@pytest.mark.parametrize("view", [[], ["-v"], ["--json"], ["--markdown"]])
def test_a_persist_path_at_another_file_never_shows_its_content(
    backend: str,
    view: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A merge request may set firewall.persist to any path: plan showed the file it found
    there line by line as the old side of the diff (found with /etc/shadow). A file sipctl
    did not write is shown by size and digest only; apply would still replace it."""
    monkeypatch.chdir(tmp_path)
    shadow = tmp_path / "host" / "etc" / "shadow"
    shadow.parent.mkdir(parents=True)
    shadow.write_text(SECRET)
    text = SPEC.replace("BACKEND", backend) + "  persist: /etc/shadow\n"
    (tmp_path / "sipctl.yaml").write_text(text)
    assert run(["plan", *view]) == 0
    out, err = capsys.readouterr()
    assert "TOPSECRET" not in out + err and "PRIVATE KEY" not in out + err
    if view == ["-v"]:
        assert f"- (a file sipctl did not write: {len(SECRET)} bytes, sha256 " in out

    # a file sipctl wrote is still shown whole: the plan against it says no change
    assert run(["apply", "--auto-approve"]) == 0
    capsys.readouterr()
    assert run(["plan", "--detailed-exitcode"]) == 0
