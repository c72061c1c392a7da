"""Credentials go only where the runner profile lets them go, checked before any connection.

The attack of issue 21: a merge request's spec made ``plan`` send the runner's TSIG secret as
PowerDNS's ``X-API-Key``, in clear, to a listener of its choosing. Now every
credential-bearing key of every provider (rfc2136's TSIG, octoDNS's ``env/NAME``, ssh
key files and the agent, the ACME directory) is checked against the runner profile where
one is given or ``CI`` is set; the tests hold a listener where the spec points and assert it
received nothing. Also: octoDNS classes are checked before anything is imported.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fixtures.common import run_sipctl, sipctl_in_process
from fixtures.powerdns import PowerDnsServer
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from octodns_specs import PDNS_KEY_ENV, pdns_spec

from sipctl.errors import RefusedError, SpecError
from sipctl.providers.base import RunContext
from sipctl.reconciler.bindings import (
    OCTODNS_AMBIENT,
    bindings_problems,
    runner_of,
    spec_bindings,
)
from sipctl.schemas.loader import load_spec_text

SECRET_ENV = "SIPCTL_TSIG_SECRET"
SECRET = "c2lwY3RsLXNlY3JldC1zaXBjdGwtc2VjcmV0LXNpcGN0bA=="
BASE = "version: 1\ndomain: mysite.ru\nservers: [{host: pbx.mysite.ru, ipv4: [192.0.2.1]}]\n"


class Listener:
    """A TCP and a UDP socket on one loopback port that record whatever reaches them."""

    def __init__(self) -> None:
        # the kernel's free TCP port may be taken for UDP (by another test's socket): try
        # another rather than fail
        for _ in range(50):
            self.tcp = socket.socket()
            self.tcp.bind(("127.0.0.1", 0))
            self.port = int(self.tcp.getsockname()[1])
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        else:
            raise RuntimeError("no loopback port free for both TCP and UDP")
        self.tcp.listen(8)
        self.seen: list[bytes] = []
        self._stop = threading.Event()
        # Set before the threads start: a test that closes at once must not leave a thread
        # calling settimeout on a closed socket (an unhandled exception in the thread).
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.2)
        for target in (self._tcp, self._udp):
            threading.Thread(target=target, daemon=True).start()

    def _tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            conn.settimeout(1.0)
            try:
                self.seen.append(b"connection:" + conn.recv(65536))
            except OSError:
                self.seen.append(b"connection")
            conn.close()

    def _udp(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.append(self.udp.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return  # closed

    def close(self) -> None:
        self._stop.set()
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def sipctl(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A run with ``env`` added to this process's environment, in this process."""
    return sipctl_in_process(*args, cwd=cwd, env={**os.environ, **env})


def sipctl_process(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same run as a process of its own, for what Python's imports do in it (its
    ``sys.path`` starts at the working directory, PYTHONPATH is read at its start)."""
    return run_sipctl(*args, cwd=cwd, env={**os.environ, **env})


def write_profile(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "runner.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **data}))
    return path


def problems(text: str, env: dict[str, str]) -> list[str]:
    loaded = load_spec_text(BASE + text, source="s.yaml", base_dir=Path("/srv/specs"))
    return bindings_problems(loaded, runner_of(env))


# --- every credential-bearing key, as the loader and the one rule see it -------------------------

TSIG_ENV = "dns: {server: '192.0.2.53:53', tsig: {name: k, secret_env: SIPCTL_TSIG_SECRET}}\n"
TSIG_FILE = "dns: {server: ns1.mysite.ru, tsig: {name: k, secret_file: keys/tsig.key}}\n"
OCTODNS = (
    "dns:\n  provider: octodns\n  octodns:\n    class: octodns_powerdns.PowerDnsProvider\n"
    "    host: 127.0.0.1\n    port: 18081\n    scheme: http\n    api_key: env/SIPCTL_TSIG_SECRET\n"
)
OCTODNS_NESTED = (
    "dns:\n  provider: octodns\n  octodns:\n    class: octodns_route53.Route53Provider\n"
    "    profile: [x, env/AWS_SECRET]\n    endpoint_url: 'https://evil.example:8443/x'\n"
)
SSH_KEY = "asterisk: {target: 'ssh://root@pbx.mysite.ru:2222', ssh: {key_file: /run/k}}\n"
SSH_AGENT = "firewall: {target: 'ssh://root@198.51.100.7'}\n"
FAIL2BAN_KEY = "fail2ban: {target: 'ssh://pbx.mysite.ru', ssh: {key_file: ~/.ssh/id}}\n"
ACME = (
    "asterisk:\n  target: dir:pbx\n  tls:\n    cert_file: /etc/a.pem\n    key_file: /etc/a.key\n"
    "    acme: {directory: 'https://acme.evil.example/dir'}\n"
)

CASES = [
    (TSIG_ENV, "dns.tsig.secret_env", "SIPCTL_TSIG_SECRET", "192.0.2.53:53"),
    (TSIG_FILE, "dns.tsig.secret_file", "/srv/specs/keys/tsig.key", "ns1.mysite.ru:53"),
    (OCTODNS, "dns.octodns.api_key", "SIPCTL_TSIG_SECRET", "127.0.0.1:18081"),
    (OCTODNS_NESTED, "dns.octodns.profile.1", "AWS_SECRET", "https://evil.example:8443/x"),
    (SSH_KEY, "asterisk.ssh.key_file", "/run/k", "pbx.mysite.ru:2222"),
    (SSH_AGENT, "firewall.target", "ssh-agent", "198.51.100.7:22"),
    (
        FAIL2BAN_KEY,
        "fail2ban.ssh.key_file",
        str(Path("~/.ssh/id").expanduser()),
        "pbx.mysite.ru:22",
    ),
]


@pytest.mark.parametrize(("text", "key", "name", "destination"), CASES)
def test_every_credential_key_is_a_binding_with_its_destination(
    text: str, key: str, name: str, destination: str
) -> None:
    loaded = load_spec_text(BASE + text, source="s.yaml", base_dir=Path("/srv/specs"))
    found = {b.dotted: b for b in spec_bindings(loaded)}
    assert found[key].name == name and destination in found[key].destinations


@pytest.mark.parametrize(("text", "key", "name", "destination"), CASES)
def test_in_ci_without_a_profile_nothing_falls_back(
    text: str, key: str, name: str, destination: str
) -> None:
    (problem,) = [p for p in problems(text, {"CI": "true"}) if f": {key}: " in p]
    assert problem.startswith("s.yaml:")
    assert "is not a credential of the runner profile" in problem
    pasted = problem.split("add to the runner profile:\n", 1)[1]
    allowed = yaml.safe_load(pasted)["credentials"][name]
    assert destination in allowed["to"]


@pytest.mark.parametrize(("text", "key", "name", "destination"), CASES)
def test_the_pasted_profile_allows_exactly_that(
    tmp_path: Path, text: str, key: str, name: str, destination: str
) -> None:
    (problem,) = [p for p in problems(text, {"CI": "1"}) if f": {key}: " in p]
    pasted = yaml.safe_load(problem.split("add to the runner profile:\n", 1)[1])
    profile = write_profile(tmp_path, pasted)
    assert [p for p in problems(text, {"SIPCTL_PROFILE": str(profile)}) if key in p] == []


def test_on_an_admins_machine_the_spec_binds_as_before() -> None:
    for text, *_ in CASES:
        assert problems(text, {}) == []
    assert problems(ACME, {}) == []


def test_the_acme_directory_must_be_listed() -> None:
    (problem,) = problems(ACME, {"CI": "true"})
    assert "asterisk.tls.acme.directory: https://acme.evil.example/dir is not an ACME" in problem


def test_a_tsig_key_is_not_an_api_key_and_goes_only_to_its_server(tmp_path: Path) -> None:
    tsig = {"kind": "tsig", "to": ["192.0.2.53:53"]}
    profile = write_profile(tmp_path, {"credentials": {SECRET_ENV: tsig}})
    env = {"SIPCTL_PROFILE": str(profile)}
    assert problems(TSIG_ENV, env) == []
    (problem,) = problems(OCTODNS, env)
    assert "dns.octodns.api_key: SIPCTL_TSIG_SECRET is a tsig credential" in problem
    elsewhere = TSIG_ENV.replace("192.0.2.53:53", "203.0.113.66:53")
    (problem,) = problems(elsewhere, env)
    assert "lets SIPCTL_TSIG_SECRET go to 192.0.2.53:53, not to 203.0.113.66:53" in problem


def test_an_api_key_goes_only_to_its_class_and_host(tmp_path: Path) -> None:
    key = {"kind": "api_key", "to": ["127.0.0.1:18081"], "classes": ["x.Other"]}
    profile = write_profile(tmp_path, {"credentials": {SECRET_ENV: key}})
    (problem,) = problems(OCTODNS, {"SIPCTL_PROFILE": str(profile)})
    assert "not to octodns_powerdns.PowerDnsProvider" in problem


# --- the zones a credential may be used for ------------------------------------------------------

HOSTER_KEY = {"kind": "tsig", "to": ["192.0.2.53:53"], "zones": ["mysite.ru", "*.hosted.example"]}


@pytest.mark.parametrize(
    ("zone", "allowed"),
    [
        (None, True),  # the domain mysite.ru, exactly as listed
        ("mysite.ru.", True),
        ("hosted.example", False),  # *. is strictly below
        ("alpha.hosted.example", True),
        ("sip.alpha.hosted.example", True),
        ("Alpha.Hosted.Example.", True),
        ("xhosted.example", False),
        ("victim.example", False),
    ],
)
def test_a_tsig_key_is_used_only_for_the_zones_the_profile_lists(
    tmp_path: Path, zone: str | None, allowed: bool
) -> None:
    """A hoster's one key that may update every customer zone on their BIND: a spec outside
    their directory, or a customer's naming another's zone, could use it for any zone."""
    profile = write_profile(tmp_path, {"credentials": {SECRET_ENV: HOSTER_KEY}})
    env = {"SIPCTL_PROFILE": str(profile)}
    domain = f"sip.{zone.rstrip('.')}" if zone is not None else "mysite.ru"
    text = TSIG_ENV if zone is None else TSIG_ENV.replace("{server", f"{{zone: '{zone}', server")
    spec = (BASE + text).replace("domain: mysite.ru", f"domain: {domain}")
    loaded = load_spec_text(spec, source="s.yaml", base_dir=Path("/srv/specs"))
    found = bindings_problems(loaded, runner_of(env))
    if allowed:
        assert found == []
        return
    (problem,) = found
    assert zone is not None
    shown = zone.lower().rstrip(".")
    assert problem.startswith("s.yaml:4:"), problem
    assert (
        f"dns.tsig.secret_env: the runner profile lets SIPCTL_TSIG_SECRET be used for the "
        f"zones mysite.ru, *.hosted.example, not for {shown} (this spec's zone, s.yaml:4:"
        in problem
    ), problem
    assert f'add "{shown}" to the zones of "SIPCTL_TSIG_SECRET"' in problem


def test_an_api_key_is_bound_to_its_zones_too(tmp_path: Path) -> None:
    key = {
        "kind": "api_key",
        "to": ["127.0.0.1:18081"],
        "classes": ["octodns_powerdns.PowerDnsProvider"],
        "zones": ["other.example"],
    }
    profile = write_profile(tmp_path, {"credentials": {SECRET_ENV: key}})
    (problem,) = problems(OCTODNS, {"SIPCTL_PROFILE": str(profile)})
    assert "be used for the zones other.example, not for mysite.ru (this spec's zone" in problem


def test_the_pasted_profile_binds_a_dns_credential_to_the_spec_s_zone() -> None:
    (problem,) = [p for p in problems(TSIG_ENV, {"CI": "1"}) if "secret_env" in p]
    pasted = yaml.safe_load(problem.split("add to the runner profile:\n", 1)[1])
    assert pasted["credentials"][SECRET_ENV]["zones"] == ["mysite.ru"]


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        (["*.*.example"], "is not a DNS zone"),
        (["exa mple.com"], "is not a DNS zone"),
        (["-x.example"], "is not a DNS zone"),
        (["*."], "is not a DNS zone"),
    ],
)
def test_a_zone_entry_that_is_no_zone_is_refused(
    tmp_path: Path, zones: list[str], message: str
) -> None:
    profile = write_profile(
        tmp_path, {"credentials": {SECRET_ENV: {"kind": "tsig", "zones": zones}}}
    )
    with pytest.raises(SpecError, match=message):
        runner_of({"SIPCTL_PROFILE": str(profile)})


def test_zones_belong_to_dns_credentials_only(tmp_path: Path) -> None:
    key = {"kind": "ssh_key", "to": ["pbx:22"], "zones": ["mysite.ru"]}
    profile = write_profile(tmp_path, {"credentials": {"/run/k": key}})
    with pytest.raises(SpecError, match="zones is for DNS credentials"):
        runner_of({"SIPCTL_PROFILE": str(profile)})


def test_a_hosters_key_refuses_a_customer_outside_its_zones_before_any_packet(
    tmp_path: Path, listener: Listener
) -> None:
    """Through the CLI, as a merge request's plan: the key may go to the listener (the
    hoster's server) but not for this zone, so nothing reaches it."""
    key = {**HOSTER_KEY, "to": [f"127.0.0.1:{listener.port}"]}
    profile = write_profile(tmp_path, {"credentials": {SECRET_ENV: key}})
    spec = tmp_path / "sipctl.yaml"
    dns = TSIG_ENV.replace("192.0.2.53:53", f"127.0.0.1:{listener.port}")
    spec.write_text((BASE + dns).replace("mysite.ru", "victim.example"))
    env = {"SIPCTL_PROFILE": str(profile), SECRET_ENV: SECRET}
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    assert "not for victim.example (this spec's zone" in done.stderr, done.stderr
    assert listener.seen == []


# --- against real listeners: nothing is sent -----------------------------------------------------


def test_the_tsig_secret_never_reaches_the_spec_s_server(
    tmp_path: Path, listener: Listener
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + TSIG_ENV.replace("192.0.2.53:53", f"127.0.0.1:{listener.port}"))
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env={"CI": "true", SECRET_ENV: SECRET})
    assert done.returncode == 3, done.stderr
    assert f"{spec}:4:" in done.stderr and "dns.tsig.secret_env" in done.stderr
    assert listener.seen == []


def test_the_octodns_attack_sends_nothing_to_the_listener(
    tmp_path: Path, listener: Listener
) -> None:
    """The attack as filed: the TSIG secret as PowerDNS's X-API-Key to a spec's listener."""
    profile = write_profile(
        tmp_path, {"credentials": {SECRET_ENV: {"kind": "tsig", "to": ["127.0.0.1:53"]}}}
    )
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + OCTODNS.replace("18081", str(listener.port)))
    env = {"SIPCTL_PROFILE": str(profile), SECRET_ENV: SECRET}
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stderr
    assert "dns.octodns.api_key: SIPCTL_TSIG_SECRET is a tsig credential" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert listener.seen == []


def test_an_ssh_key_is_not_offered_to_an_unlisted_host(tmp_path: Path, listener: Listener) -> None:
    key = tmp_path / "id"
    key.write_text("not read\n")
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        BASE + f"asterisk: {{target: 'ssh://root@127.0.0.1:{listener.port}', "
        f"ssh: {{key_file: {key}}}}}\n"
    )
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env={"CI": "true"})
    assert done.returncode == 3, done.stderr
    assert "asterisk.ssh.key_file" in done.stderr
    assert listener.seen == []


_PAGE = (
    "transports: {udp: {port: 5060}, tls: {port: 5061}, wss: {port: 8089}}\n"
    "users: {director: 105}\n"
)
_PAGE_TLS = "tls: {cert_file: /etc/asterisk/keys/a.pem, key_file: /etc/asterisk/keys/a.key}"
# Each place of a spec that makes sipctl log in over SSH, pointed at the listener (PORT),
# with every other layer in a dir: beside the spec.
_SSH_PLACES = {
    "asterisk.target": f"asterisk: {{target: 'ssh://root@127.0.0.1:PORT', {_PAGE_TLS}}}\n",
    "firewall.target": f"asterisk: {{target: 'dir:pbx', {_PAGE_TLS}}}\n"
    "firewall: {target: 'ssh://root@127.0.0.1:PORT'}\n",
    "fail2ban.target": f"asterisk: {{target: 'dir:pbx', {_PAGE_TLS}}}\n"
    "fail2ban: {target: 'ssh://root@127.0.0.1:PORT'}\n",
    "webrtc.publish": f"asterisk: {{target: 'dir:pbx', {_PAGE_TLS}}}\n"
    "webrtc: {publish: 'ssh://root@127.0.0.1:PORT:/var/www/call'}\n",
}


@pytest.mark.parametrize("profile", [None, "pbx only"])
@pytest.mark.parametrize("place", sorted(_SSH_PLACES))
def test_no_ssh_login_goes_to_a_host_the_profile_does_not_list(
    tmp_path: Path, listener: Listener, place: str, profile: str | None
) -> None:
    """Every layer that logs in over SSH is a binding of the SSH agent (or its key file),
    the page's web root (webrtc.publish) too: in CI, a merge request's publish target made
    plan offer the runner's SSH agent and keys to a host of its choosing."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + _PAGE + _SSH_PLACES[place].replace("PORT", str(listener.port)))
    env = {"CI": "true"}
    if profile is not None:
        allowed = {"ssh-agent": {"kind": "ssh_agent", "to": ["pbx.mysite.ru:22"]}}
        env["SIPCTL_PROFILE"] = str(write_profile(tmp_path, {"credentials": allowed}))
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "sipctl.yaml:" in done.stderr and place in done.stderr
    assert f"127.0.0.1:{listener.port}" in done.stderr
    assert listener.seen == []


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_a_dns_server_without_a_key_is_asked_only_when_the_profile_lists_it(
    tmp_path: Path, listener: Listener, command: str
) -> None:
    """Without dns.tsig no credential binds dns.server, and in CI a merge request's spec
    made plan connect to any host and port it named (and told refused from silent: a
    port scanner of the runner's network). Now it must be in probe_targets; listing it
    opens the gate, which proves the gate is the one that held."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        BASE + f"dns: {{provider: rfc2136, server: '127.0.0.1:{listener.port}', timeout: 0.5}}\n"
    )
    done = sipctl(command, "-f", str(spec), cwd=tmp_path, env={"CI": "true"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "sipctl.yaml:4:" in done.stderr and "dns.server" in done.stderr
    assert 'probe_targets: ["127.0.0.1"]' in done.stderr
    assert listener.seen == []
    profile = write_profile(tmp_path, {"probe_targets": ["127.0.0.1"]})
    env = {"CI": "true", "SIPCTL_PROFILE": str(profile)}
    done = sipctl(command, "-f", str(spec), cwd=tmp_path, env=env)
    assert "probe_targets" not in done.stderr
    assert listener.seen  # asked: the profile let it


def test_audit_and_verify_refuse_too_before_any_connection(
    tmp_path: Path, listener: Listener
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + f"asterisk: {{target: 'ssh://root@127.0.0.1:{listener.port}'}}\n")
    loaded = load_spec_text(spec.read_text(), source=str(spec), base_dir=tmp_path)
    ctx = RunContext(base_dir=tmp_path, env={"CI": "true"})
    from sipctl.reconciler.bindings import enforce_bindings

    with pytest.raises(RefusedError, match="ssh-agent"):
        enforce_bindings(loaded, ctx)
    assert listener.seen == []


def test_without_ci_or_profile_a_plan_says_once_that_the_bindings_are_the_spec_s(
    tmp_path: Path, listener: Listener
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + TSIG_ENV.replace("192.0.2.53:53", f"127.0.0.1:{listener.port}"))
    done = sipctl(
        "plan", "-f", str(spec), cwd=tmp_path, env={SECRET_ENV: SECRET, "SIPCTL_TIMEOUT": "1"}
    )
    assert done.stderr.count("the credentials and where they go are the spec's own") == 1


def test_the_powerdns_key_works_where_the_profile_sends_it(
    tmp_path: Path, powerdns: PowerDnsServer, powerdns_zone: str
) -> None:
    """The same octoDNS plugin, allowed by the profile: plan reads the real PowerDNS."""
    allowed = {
        "kind": "api_key",
        "to": [f"127.0.0.1:{powerdns.api_port}"],
        "classes": ["octodns_powerdns.PowerDnsProvider"],
    }
    profile = write_profile(tmp_path, {"credentials": {PDNS_KEY_ENV: allowed}})
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec(powerdns_zone, powerdns.api_port))
    env = {"SIPCTL_PROFILE": str(profile), PDNS_KEY_ENV: powerdns.api_key}
    done = sipctl("plan", "-f", str(spec), "--detailed-exitcode", cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert "Plan:" in done.stdout
    other = spec.read_text().replace(f"port: {powerdns.api_port}", "port: 1")
    spec.write_text(other)
    done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env=env)
    assert done.returncode == 3 and "not to 127.0.0.1:1" in done.stderr


# --- octoDNS classes: checked before import ------------------------------------------------------


def octodns_spec(tmp_path: Path, cls: str) -> Path:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(
        BASE + f"dns:\n  provider: octodns\n  octodns: {{class: {cls}, api_key: env/K}}\n"
    )
    return spec


@pytest.mark.parametrize("cls", ["this.Provider", "antigravity.Provider", "pwnmod.Provider"])
def test_a_class_outside_installed_plugins_is_never_imported(tmp_path: Path, cls: str) -> None:
    (tmp_path / "pwnmod.py").write_text(
        f"open({json.dumps(str(tmp_path / 'pwned'))}, 'w')\nclass Provider: pass\n"
    )
    spec = octodns_spec(tmp_path, cls)
    for command in ("validate", "plan"):
        done = sipctl_process(command, "-f", str(spec), cwd=tmp_path, env={})
        assert done.returncode == 1
        assert "is not provided by an installed octoDNS plugin distribution" in done.stderr
        assert "Beautiful is better than ugly" not in done.stdout + done.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_plugin_shadowed_by_the_working_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "octodns_powerdns.py").write_text(
        f"open({json.dumps(str(tmp_path / 'pwned'))}, 'w')\nclass PowerDnsProvider: pass\n"
    )
    spec = octodns_spec(tmp_path, "octodns_powerdns.PowerDnsProvider")
    done = sipctl_process("validate", "-f", str(spec), cwd=tmp_path, env={})
    assert done.returncode == 1
    assert f"would be imported from {tmp_path / 'octodns_powerdns.py'}" in done.stderr
    assert not (tmp_path / "pwned").exists()


def test_the_runner_profile_may_allow_a_class_of_its_own(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, {"octodns_classes": ["octodns_test_plugins.PowerDnsSrvOnly"]})
    spec = octodns_spec(tmp_path, "octodns_test_plugins.PowerDnsSrvOnly")
    tests = str(Path(__file__).parent)
    env = {"PYTHONPATH": tests}
    done = sipctl_process("validate", "-f", str(spec), cwd=tmp_path, env=env)
    assert "is not provided by an installed octoDNS plugin" in done.stderr
    done = sipctl_process(
        "validate", "-f", str(spec), cwd=tmp_path, env={**env, "SIPCTL_PROFILE": str(profile)}
    )
    assert done.returncode == 0, done.stderr


def test_the_example_runner_profile_is_a_valid_profile() -> None:
    from fixtures.common import EXAMPLES

    from sipctl.schemas.profiles import RunnerProfile, parse_profile

    path = EXAMPLES / "gitops" / "runner-profile.yaml"
    profile = parse_profile(path.read_text(), str(path), RunnerProfile)
    assert set(profile.credentials) == {".sipctl/tsig.key", ".sipctl/ssh_key"}
    spec = EXAMPLES / "gitops" / "sipctl.yaml"
    loaded = load_spec_text(spec.read_text(), source=str(spec), base_dir=spec.parent)
    assert bindings_problems(loaded, runner_of({"SIPCTL_PROFILE": str(path)})) == []


# --- the one rule as a property -------------------------------------------------------------------

_NAME = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True)
_KEY = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(
    lambda k: k not in ("class", "host", "hostname", "server", "endpoint", "api_host")
)
_SCALAR = st.one_of(
    _NAME.map(lambda n: f"env/{n}"),
    st.sampled_from(["x", "https://api.example:8443/v1", "eu-west-1"]),
    st.integers(0, 99),
)
_VALUE = st.one_of(
    _SCALAR, st.lists(_SCALAR, max_size=3), st.dictionaries(_KEY, _SCALAR, max_size=3)
)


def _env_names(value: object) -> set[str]:
    if isinstance(value, str):
        return {value[4:]} if value.startswith("env/") else set()
    if isinstance(value, list):
        return set().union(*(_env_names(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_env_names(v) for v in value.values())) if value else set()
    return set()


@settings(max_examples=examples(60), deadline=None)
@given(arguments=st.dictionaries(_KEY, _VALUE, min_size=1, max_size=4))
def test_every_env_reference_anywhere_is_a_binding_and_refused_in_ci(
    arguments: dict[str, object],
) -> None:
    """Whatever shape a plugin's arguments take, each env/NAME in them is a credential the
    runner profile must list, and every URL among them a destination it must allow."""
    config = {"class": "octodns_route53.Route53Provider", **arguments}
    text = BASE + "dns:\n  provider: octodns\n  octodns: " + json.dumps(config) + "\n"
    try:
        loaded = load_spec_text(text, source="s.yaml", base_dir=Path("/srv"))
    except SpecError:
        return  # the spec's own rules refused it (an inline secret, say): nothing to send
    bindings = spec_bindings(loaded)
    # none named: what the plugin finds on the runner by itself is the credential
    assert {b.name for b in bindings} == (_env_names(arguments) or {OCTODNS_AMBIENT})
    urls = {v for v in json.dumps(arguments).split('"') if "://" in v}
    assert all(urls <= set(b.destinations) for b in bindings)
    refused = bindings_problems(loaded, runner_of({"CI": "true"}))
    assert len(refused) == len(bindings)


@settings(max_examples=examples(60), deadline=None)
@given(command=st.text(min_size=1, max_size=40).filter(lambda t: t.isprintable()))
def test_no_command_text_is_ever_accepted(command: str) -> None:
    for section in ("asterisk", "fail2ban"):
        with pytest.raises(SpecError):
            load_spec_text(BASE + f"{section}:\n  command: {json.dumps(command)}\n")


@pytest.mark.parametrize("where", ["before", "after"])
def test_profile_option_names_the_runner_profile(
    tmp_path: Path, listener: Listener, where: str
) -> None:
    profile = write_profile(tmp_path, {"credentials": {}})
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + TSIG_ENV.replace("192.0.2.53:53", f"127.0.0.1:{listener.port}"))
    option = ["--profile", str(profile)]
    args = (
        [*option, "plan", "-f", str(spec)]
        if where == "before"
        else ["plan", "-f", str(spec), *option]
    )
    done = sipctl(*args, cwd=tmp_path, env={SECRET_ENV: SECRET})
    assert done.returncode == 3, done.stderr
    assert f"not a credential of the runner profile ({profile})" in done.stderr
    assert listener.seen == []


@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_missing_runner_profile_is_named_as_the_user_gave_it(
    tmp_path: Path, listener: Listener, given: str
) -> None:
    """``--profile missing.yaml`` was reported as ``SIPCTL_PROFILE=/abs/missing.yaml``, a
    variable the user never set."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(BASE + TSIG_ENV.replace("192.0.2.53:53", f"127.0.0.1:{listener.port}"))
    env = {SECRET_ENV: SECRET}
    if given == "option":
        done = sipctl("--profile", "missing.yaml", "plan", "-f", str(spec), cwd=tmp_path, env=env)
        named = "--profile missing.yaml"
    else:
        env["SIPCTL_PROFILE"] = "missing.yaml"
        done = sipctl("plan", "-f", str(spec), cwd=tmp_path, env=env)
        named = "SIPCTL_PROFILE=missing.yaml"
    assert done.returncode == 1, done.stderr
    assert f"{named}: cannot read the runner profile: No such file" in done.stderr, done.stderr
    assert "SIPCTL_PROFILE" not in done.stderr or given == "environment"
    assert listener.seen == []


def test_a_profile_variable_set_after_the_option_is_named_as_the_variable(
    tmp_path: Path,
) -> None:
    """The option's typed path names the profile only while SIPCTL_PROFILE is the option's."""
    from sipctl.reconciler.bindings import PROFILE_OPTION_ENV

    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match=f"^SIPCTL_PROFILE={missing}: cannot read"):
        runner_of({"SIPCTL_PROFILE": missing, PROFILE_OPTION_ENV: "other.yaml"})
    with pytest.raises(SpecError, match=f"^--profile {missing}: cannot read"):
        runner_of({"SIPCTL_PROFILE": missing, PROFILE_OPTION_ENV: missing})


def test_the_acme_ca_file_is_one_the_admin_lists(tmp_path: Path) -> None:
    """``asterisk.tls.acme.ca_file`` says which CAs the runner trusts for the ACME server:
    under a profile or CI only a file of the profile's ``acme_ca_files`` (a relative entry
    from the profile's directory, compared with links resolved); a bundle committed beside
    the spec would be the merge request's. An admin's own machine uses it as before."""
    bundle = tmp_path / "ca" / "acme-ca.pem"
    bundle.parent.mkdir()
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "link.pem").symlink_to(bundle)
    directory = "https://acme.mysite.ru/dir"
    text = ACME.replace(
        "acme: {directory: 'https://acme.evil.example/dir'}",
        f"acme: {{directory: '{directory}', ca_file: {tmp_path}/link.pem}}",
    )
    assert problems(text, {}) == []
    profile = write_profile(tmp_path, {"acme_directories": [directory]})
    (problem,) = problems(text, {"SIPCTL_PROFILE": str(profile)})
    assert problem.startswith(
        f"s.yaml:9:53: asterisk.tls.acme.ca_file: {tmp_path}/link.pem is {bundle}, not a CA "
        f"file of the runner (the runner profile ({profile}) lists no acme_ca_files)"
    ), problem
    assert problem.endswith(f'\n    acme_ca_files: ["{bundle}"]'), problem
    profile = write_profile(
        tmp_path, {"acme_directories": [directory], "acme_ca_files": ["ca/acme-ca.pem"]}
    )
    assert problems(text, {"SIPCTL_PROFILE": str(profile)}) == []


def test_an_octodns_plugin_that_names_no_credential_uses_one_the_profile_lists(
    tmp_path: Path,
) -> None:
    """octoDNS's Route53 plugin without access_key_id finds the runner's own AWS
    credentials (its environment, ~/.aws, the instance role, asked at 169.254.169.254): in
    CI a merge request's spec used them for any zone, unchecked, since only env/NAME was a
    binding. What a plugin finds by itself is now the credential octodns-ambient, bound by
    class and zones like an API key (checked here before anything is sent: no AWS call)."""
    spec = "dns: {provider: octodns, octodns: {class: octodns_route53.Route53Provider}}\n"
    (refused,) = problems(spec, {"CI": "true"})
    assert "s.yaml:4:" in refused and "dns.octodns.class" in refused
    assert '"octodns-ambient":' in refused and 'zones: ["mysite.ru"]' in refused
    allowed = {
        "octodns-ambient": {
            "kind": "api_key",
            "to": [],
            "classes": ["octodns_route53.Route53Provider"],
            "zones": ["mysite.ru"],
        }
    }
    profile = write_profile(tmp_path, {"credentials": allowed})
    assert problems(spec, {"SIPCTL_PROFILE": str(profile)}) == []
    assert problems(spec, {}) == []  # an admin's own machine: the spec's own, as before
