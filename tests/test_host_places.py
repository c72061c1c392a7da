"""Where on a PBX reached by ssh:// a spec may have sipctl write (reconciler/host_places.py).

Before, only the runner's places were bound: on an ``ssh://`` PBX a merge request could set
``firewall.persist: /etc/ssh/sshd_config`` (apply overwrites it with iptables-save output),
``asterisk.config_dir: /etc/cron.d``, a certificate into ``/root/.ssh/authorized_keys``...
Now each such path, resolved on the host through the real sshd (``realpath -m``, in the
round trip that reads the host profile), must be in the host profile's ``places``, else
(strict runs) the stock places, and never in a guarded directory unless listed itself.
The property test holds the rule to a containment oracle over a real tree with links.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures import host_profile as profiles
from fixtures.common import run_sipctl
from fixtures.host_profile import HostProfileFile
from fixtures.properties import examples
from fixtures.sshd import SshServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.providers.base import RunContext
from sipctl.providers.transport.host_profile import host_programs
from sipctl.reconciler.host_places import HostPlaces, host_place_problems, host_places_of
from sipctl.schemas.loader import load_spec_text
from sipctl.schemas.spec import Ssh

pytestmark = pytest.mark.sshd

DOMAIN = "mysite.test"


def spec(server: SshServer, **sections: Any) -> dict[str, Any]:
    """A spec whose layers are on ``server``, with ``sections`` merged in."""
    base: dict[str, Any] = {
        "version": 1,
        "domain": DOMAIN,
        "users": {"director": 105},
        "servers": [{"host": f"pbx.{DOMAIN}", "ipv4": ["192.0.2.1"]}],
        "transports": {"udp": {"port": 5060}},
        "asterisk": {"target": server.target, "ssh": server.ssh_spec()},
    }
    for name, section in sections.items():
        if name in base and isinstance(base[name], dict):
            base[name] = {**base[name], **section}
        else:
            base[name] = section
    return base


def problems(
    server: SshServer, tmp_path: Path, data: dict[str, Any], strict: bool = False
) -> list[str]:
    loaded = load_spec_text(yaml.safe_dump(data, sort_keys=False), "spec.yaml", tmp_path)
    env = {**os.environ, "CI": "1"} if strict else {"PATH": os.environ["PATH"]}
    env = {k: v for k, v in env.items() if strict or k != "CI"}
    env[profiles.ENV] = str(profiles.current().path)
    ctx = RunContext(base_dir=tmp_path, env=env)
    try:
        return host_place_problems(loaded, ctx)
    finally:
        ctx.close()


TLS = {"cert_file": "/etc/asterisk/keys/asterisk.pem", "key_file": "/etc/asterisk/keys/a.key"}
WSS = {"udp": {"port": 5060}, "wss": {"port": 8089}}


def attacks(server: SshServer) -> dict[str, tuple[dict[str, Any], str, str]]:
    """name -> (spec sections, the key refused, the guarded directory named)."""
    acme = {"directory": "https://acme.example/dir"}
    publish = f"{server.target}:/root/.ssh"
    return {
        "persist sshd_config": (
            {"firewall": {"persist": "/etc/ssh/sshd_config"}},
            "firewall.persist",
            "/etc/ssh",
        ),
        "persist authorized_keys": (
            {"firewall": {"persist": "/root/.ssh/authorized_keys"}},
            "firewall.persist",
            "/root",
        ),
        "certificate into authorized_keys": (
            {
                "asterisk": {
                    "tls": {**TLS, "cert_file": "/root/.ssh/authorized_keys", "acme": acme}
                },
                "transports": {"udp": {"port": 5060}, "tls": {"port": 5061}},
                "dns": {"provider": "rfc2136", "server": "127.0.0.1"},
            },
            "asterisk.tls.cert_file",
            "/root",
        ),
        "config_dir cron.d": (
            {"asterisk": {"config_dir": "/etc/cron.d"}},
            "asterisk.config_dir",
            "/etc/cron.d",
        ),
        "config_dir sudoers.d": (
            {"asterisk": {"config_dir": "/etc/sudoers.d"}},
            "asterisk.config_dir",
            "/etc/sudoers.d",
        ),
        "fail2ban config_dir": (
            {"fail2ban": {"config_dir": "/etc/ssh/sshd_config.d"}},
            "fail2ban.config_dir",
            "/etc/ssh",
        ),
        "fail2ban logpath": (
            {"fail2ban": {"logpath": "/etc/shadow"}},
            "fail2ban.logpath",
            "/etc/shadow",
        ),
        "publish": (
            {"webrtc": {"publish": publish}, "transports": WSS, "asterisk": {"tls": TLS}},
            "webrtc.publish",
            "/root",
        ),
    }


ATTACKS = (
    "persist sshd_config",
    "persist authorized_keys",
    "certificate into authorized_keys",
    "config_dir cron.d",
    "config_dir sudoers.d",
    "fail2ban config_dir",
    "fail2ban logpath",
    "publish",
)


@pytest.mark.parametrize("strict", [False, True], ids=["own-machine", "strict"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_refused_on_the_real_host(
    ssh_server: SshServer, tmp_path: Path, attack: str, strict: bool
) -> None:
    sections, key, guarded = attacks(ssh_server)[attack]
    said = problems(ssh_server, tmp_path, spec(ssh_server, **sections), strict)
    assert len(said) == 1, said
    assert said[0].startswith("spec.yaml:") and f": {key}" in said[0]
    assert f"inside {guarded}" in said[0] and ssh_server.target in said[0]
    assert "nothing was read or written" in said[0] and "\n    places: [" in said[0]


def test_the_documented_places_are_allowed_in_a_strict_run(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    """Every default and every documented path (docs, examples) on an ssh:// PBX, without
    a places key, in a pipeline."""
    documented = spec(
        ssh_server,
        asterisk={"config_dir": "/etc/asterisk", "tls": TLS},
        transports=WSS,
        fail2ban={},
        webrtc={"publish": f"{ssh_server.target}:/var/www/html/call"},
    )
    assert problems(ssh_server, tmp_path, documented, strict=True) == []
    for persist in ("/etc/iptables.up", "/etc/iptables/rules.v4"):
        data = spec(ssh_server, firewall={"persist": persist})
        assert problems(ssh_server, tmp_path, data, strict=True) == []
    nft = spec(ssh_server, firewall={"backend": "nftables"})
    assert problems(ssh_server, tmp_path, nft, strict=True) == []
    certbot = {**TLS, "cert_file": "/etc/letsencrypt/live/pbx/fullchain.pem"}
    data = spec(ssh_server, asterisk={"tls": certbot}, transports=WSS)
    assert problems(ssh_server, tmp_path, data, strict=True) == []


def test_an_unusual_place_needs_the_host_profiles_entry(
    ssh_server: SshServer, tmp_path: Path, host_profile: HostProfileFile
) -> None:
    """A place outside the stock ones is refused in a pipeline, with the line to add; once
    the host profile lists it, allowed, and the list binds every run (not only strict)."""
    unusual = tmp_path / "srv" / "pbx" / "asterisk"
    data = spec(ssh_server, asterisk={"config_dir": str(unusual)})
    assert problems(ssh_server, tmp_path, data) == []  # an admin's own run
    said = problems(ssh_server, tmp_path, data, strict=True)
    assert len(said) == 1 and "outside the stock places (/etc/asterisk" in said[0]
    line = said[0].rsplit("\n", 1)[1].strip()
    assert line.startswith('places: ["/etc/asterisk"') and str(unusual) in line
    host_profile.write(line + "\n")
    assert problems(ssh_server, tmp_path, data, strict=True) == []
    host_profile.write(f"places: [{tmp_path / 'elsewhere'}]\n")
    said = problems(ssh_server, tmp_path, data)  # listed: binding, strict or not
    assert len(said) == 1 and "outside the host profile's places" in said[0]


def test_the_host_profile_is_never_a_place_wherever_it_is(
    ssh_server: SshServer, tmp_path: Path, host_profile: HostProfileFile
) -> None:
    """A host profile moved by SIPCTL_HOST_PROFILE, in a directory its places list: still
    not a file a spec's path may name (/etc/sipctl is guarded, a moved one by this rule)."""
    host_profile.write(f"places: [/etc/asterisk, {host_profile.path.parent}]\n")
    data = spec(ssh_server, firewall={"persist": str(host_profile.path)})
    for strict in (False, True):
        said = problems(ssh_server, tmp_path, data, strict=strict)
        assert len(said) == 1 and "is the host profile itself" in said[0], said
    other = spec(ssh_server, firewall={"persist": str(host_profile.path.parent / "rules.v4")})
    assert problems(ssh_server, tmp_path, other) == []


def test_a_link_on_the_host_out_of_a_place_is_refused(
    ssh_server: SshServer, tmp_path: Path, host_profile: HostProfileFile
) -> None:
    """The host's own resolution counts: a link inside a listed place that points out of
    it (and one into a .ssh directory) is refused, naming where it leads."""
    place, outside = tmp_path / "place", tmp_path / "outside"
    (place / "sub").mkdir(parents=True)
    (outside / ".ssh").mkdir(parents=True)
    (place / "out").symlink_to(outside)
    (place / "keys").symlink_to(outside / ".ssh")
    host_profile.write(f"places: [{place}, {outside}]\n")
    data = spec(ssh_server, asterisk={"config_dir": f"{place}/keys"})
    said = problems(ssh_server, tmp_path, data)
    assert len(said) == 1 and f"is {outside}/.ssh on {ssh_server.target}" in said[0]
    assert f"inside {outside}/.ssh, where sipctl reads and writes nothing" in said[0]
    host_profile.write(f"places: [{place}]\n")
    data = spec(ssh_server, asterisk={"config_dir": f"{place}/out/asterisk"})
    said = problems(ssh_server, tmp_path, data)
    assert len(said) == 1 and f"is {outside}/asterisk" in said[0]
    assert "outside the host profile's places" in said[0]
    data = spec(ssh_server, asterisk={"config_dir": f"{place}/sub"})
    assert problems(ssh_server, tmp_path, data) == []


def test_plan_refuses_before_reading_with_exit_3(ssh_server: SshServer, tmp_path: Path) -> None:
    """``sipctl plan`` (and apply, which makes the plan again) refuses at once: exit 3, the
    file:line:col of the key, the resolved path, the line for host.yaml."""
    data = spec(ssh_server, firewall={"persist": "/etc/ssh/sshd_config"})
    (tmp_path / "sipctl.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    for args in (["plan"], ["apply", "-f", "sipctl.yaml", "--auto-approve"]):
        done = run_sipctl(*args, env=env, cwd=tmp_path)
        said = done.stdout + done.stderr
        assert done.returncode == 3, said
        assert "sipctl.yaml:" in said and "firewall.persist: /etc/ssh/sshd_config" in said
        assert "inside /etc/ssh" in said and "places: [" in said
        assert "Traceback" not in said


@pytest.fixture
def host(ssh_server: SshServer, tmp_path: Path) -> Iterator[tuple[RunContext, Any]]:
    ctx = RunContext(base_dir=tmp_path)
    transport = ctx.transports.get(ssh_server.target, Ssh.model_validate(ssh_server.ssh_spec()))
    yield ctx, transport
    ctx.close()


def test_the_places_ride_in_the_profiles_round_trip(host: tuple[RunContext, Any]) -> None:
    ctx, transport = host
    before = transport.round_trips
    loaded = host_programs(ctx, transport, ["/etc/asterisk/../ssh", "/etc/asterisk"])
    assert transport.round_trips == before + 1
    assert loaded.resolved["/etc/asterisk/../ssh"] == os.path.realpath("/etc/ssh")
    host_programs(ctx, transport, ["/etc/asterisk"])  # cached: no round trip
    assert transport.round_trips == before + 1


# --- the rule, as a property -------------------------------------------------------------------

PARTS = ("..", ".", "a", "b", "to_b", "to_root", ".ssh", ".git", "x")


def _tree(root: Path) -> tuple[Path, Path]:
    """root/a (a place), root/b (not), links between them and to root; a .ssh in each."""
    for name in ("a", "b", "a/.ssh", "b/.ssh", "a/x"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, to in (("a/to_b", "../b"), ("b/to_root", ".."), ("a/x/to_root", "../..")):
        if not (root / name).is_symlink():
            (root / name).symlink_to(to)
    return root / "a", root / "b"


def _oracle(path: str, places: tuple[str, ...]) -> bool:
    """Containment by pathlib: inside a place, no .ssh/.git strictly below it."""
    for place in places:
        if Path(path).is_relative_to(place):
            below = Path(path).relative_to(place).parts
            if not any(part in (".ssh", ".git") for part in below):
                return True
    return False


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.sampled_from(PARTS), min_size=0, max_size=7))
def test_containment_on_the_host_agrees_with_an_oracle(
    host: tuple[RunContext, Any], tmp_path_factory: pytest.TempPathFactory, parts: list[str]
) -> None:
    ctx, transport = host
    root = Path(os.path.realpath(tmp_path_factory.getbasetemp())) / "host-places-tree"
    place, _other = _tree(root)
    written = posixpath.join(str(place), *parts)
    loaded = host_programs(ctx, transport, [written])
    where = loaded.resolved[written]
    assert where == os.path.realpath(written)  # the sshd's host is this machine
    places = HostPlaces("ssh://h", (str(place),), True, "/etc/sipctl/host.yaml")
    assert places.hold(where) == _oracle(where, (str(place),))


GUARD_PARTS = ("etc", "ssh", "cron.d", "crontab", "sudoers", "root", ".ssh", "asterisk", "x")


def _guarded(directory: str) -> bool:
    """The oracle's guarded directories (those GUARD_PARTS can spell)."""
    guarded = ("/root", "/etc/ssh", "/etc/sudoers", "/etc/cron.d", "/etc/crontab")
    return directory in guarded or directory.rsplit("/", 1)[1] == ".ssh"


@settings(max_examples=examples(300))
@given(
    st.lists(st.sampled_from(GUARD_PARTS), max_size=5),
    st.lists(st.lists(st.sampled_from(GUARD_PARTS), max_size=3), min_size=1, max_size=3),
)
def test_the_guarded_directories_hold_under_any_places(
    parts: list[str], listed: list[list[str]]
) -> None:
    """Whatever the places, a path in a guarded directory strictly below the place that
    holds it is refused; a place listed at or inside a guarded directory allows it."""
    path = "/" + "/".join(parts)
    places = tuple(dict.fromkeys("/" + "/".join(p) for p in listed))
    rule = HostPlaces("ssh://h", places, True, "/etc/sipctl/host.yaml")

    def oracle() -> bool:
        for place in places:
            if Path(path).is_relative_to(place):
                below = Path(path).relative_to(place).parts
                steps = [str(Path(place, *below[: i + 1])) for i in range(len(below))]
                if not any(_guarded(step) for step in steps):
                    return True
        return False

    assert rule.hold(path) == oracle()


def test_no_places_key_and_not_strict_is_anywhere_but_the_guarded() -> None:
    from sipctl.providers.transport.host_profile import LoadedHostProfile

    profile = LoadedHostProfile("ssh://h", "/etc/sipctl/host.yaml", None)
    own, strict = host_places_of(profile, False), host_places_of(profile, True)
    assert own.hold("/srv/anything") and not own.hold("/root/.bashrc")
    assert not strict.hold("/srv/anything") and strict.hold("/etc/asterisk/pjsip.conf")
    for guarded in ("/root", "/etc/ssh", "/etc/sudoers.d", "/etc/cron.d", "/etc/sipctl"):
        assert not own.hold(guarded + "/x") and not strict.hold(guarded + "/x")
        assert f"inside {guarded}," in strict.outside(guarded + "/x")
    listed = HostPlaces("ssh://h", ("/etc/cron.d",), True, "/etc/sipctl/host.yaml")
    assert listed.hold("/etc/cron.d/sipctl")  # listed itself: the admin's word


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_SPECS = sorted(
    [*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("hosting/pbx*.yaml"), EXAMPLES / "gitops/sipctl.yaml"]
)


@pytest.mark.parametrize("example", EXAMPLE_SPECS, ids=lambda p: p.name)
def test_every_example_keeps_its_pbx_files_in_the_stock_places(example: Path) -> None:
    """Each path an example names on its PBX (whatever its target there) is in the stock
    places: the examples work in a pipeline on an ssh:// PBX without a places key."""
    from sipctl.reconciler.runner_places import layer_paths, layer_targets
    from sipctl.schemas.loader import load_spec
    from sipctl.schemas.profiles import STOCK_HOST_PLACES

    spec = load_spec(example).spec
    stock = HostPlaces("ssh://h", STOCK_HOST_PLACES, False, "/etc/sipctl/host.yaml")
    paths = [
        value
        for layer in layer_targets(spec)
        for key, value, _is_directory in layer_paths(spec, layer)
        if key[-1] != "ca_list_file"
    ]
    assert [p for p in paths if not stock.hold(posixpath.normpath(p))] == []
