"""The one rule of credentials: a spec names one, the runner profile says where it may go.

A spec from a merge request is planned with the pipeline's credentials before anyone has
reviewed it. So every credential-bearing key of every provider is listed here, with where
the spec would send it (``spec_bindings``), and checked against the runner profile
(``enforce_bindings``) BEFORE any provider opens a connection:

- ``dns.tsig.secret_env`` / ``secret_file`` (rfc2136): a TSIG key, to ``dns.server``;
- every ``env/NAME`` argument of ``dns.octodns``: an API credential, to the plugin class and
  every host or URL its arguments name (``host``/``port``/``scheme``, any ``...://`` value);
- and both of them for the spec's zone (``dns.zone``, else the domain), which must be one of
  the credential's ``zones`` when the profile lists any (one key that may update every
  customer's zone is then no key to every zone);
- ``ssh.key_file`` of every SSH target (asterisk, firewall, fail2ban): a login key, to that
  host and port; without a key_file the agent and ``~/.ssh/id_*`` (``ssh-agent``);
- ``asterisk.tls.acme.directory``: the ACME server the PBX's account signs to, and its
  ``ca_file``, the CAs trusted for that server's HTTPS (``acme_ca_file_problems``): only a
  file the profile's ``acme_ca_files`` lists;
- ``ssh.known_hosts`` of every SSH target: the host keys the runner's SSH login trusts. A
  spec's own file would let a merge request vouch for a host of its choosing, so only the
  runner's own ``~/.ssh/known_hosts`` (the default) or a file the profile's ``known_hosts``
  lists (``known_hosts_problems``);
- and, not a credential but decided the same way, where on the runner the spec's layers
  read and write: a ``dir:`` target, a ``local`` layer's paths
  (``runner_places.place_problems``).

Strict where a runner profile is given (``SIPCTL_PROFILE``, ``--profile``) or ``CI`` is set
(GitHub Actions, GitLab CI): a credential the profile does not list, of another kind, or
bound for a destination it does not list, refuses the run, naming the spec's key
(``file:line``) and the YAML that would allow it. Nothing falls back. Elsewhere (an admin's
own machine) the spec's own bindings are used as before, and the run says so once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sipctl.reconciler.runner_places import layer_targets, place_problems, refusal
from sipctl.schemas.env_names import hidden_name_advice, looks_like_a_name, variable_named
from sipctl.schemas.profiles import (
    RUNNER_PROFILE_ENV,
    Credential,
    RunnerProfile,
    parse_profile,
    zone_allowed,
)
from sipctl.schemas.targets import parse_target
from sipctl.schemas.values import same_host

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec

_SAID = -1  # in RunContext.bindings_checked: the run said that the bindings are the spec's
SSH_AGENT = "ssh-agent"  # the credential name of the agent and ~/.ssh/id_* (no key_file)
# The credential name of what an octoDNS plugin finds on the runner by itself when the spec
# names none (env/NAME): boto's environment, ~/.aws and instance role for Route53, ...
OCTODNS_AMBIENT = "octodns-ambient"
API_KINDS = ("api_key", "token", "password")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "dns": 53}
# octoDNS arguments that name where the plugin connects (besides any URL value)
_HOST_ARGS = ("host", "hostname", "server", "endpoint", "api_host")


@dataclass(frozen=True)
class Binding:
    """One credential a spec names and where the spec would send it."""

    key: tuple[str | int, ...]  # the spec key that names it
    name: str  # an environment variable's name, an absolute file path, or SSH_AGENT
    kinds: tuple[str, ...]  # the kinds it may be (the first is suggested)
    destinations: tuple[str, ...]  # host:port or URL, as the spec names them
    provider_class: str | None = None  # octoDNS: the class it is handed to
    written: str | None = None  # a file as the spec writes it (relative to the spec)
    zone: str | None = None  # a DNS credential: the zone it would be used for
    variable: bool = False  # ``name`` is an environment variable's (secret_env, env/NAME)

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.key)

    @property
    def shown(self) -> str:
        """The credential as a message names it: never a variable's name that may be the
        secret itself (``env_names``)."""
        if self.name == SSH_AGENT:
            return "the SSH agent (ssh-agent)"
        if self.name == OCTODNS_AMBIENT:
            return (
                "what the octoDNS plugin finds on the runner by itself, its environment, files "
                f"or role (no env/NAME in dns.octodns: {OCTODNS_AMBIENT})"
            )
        return variable_named(self.name, self.dotted) if self.variable else self.name

    @property
    def hidden(self) -> bool:
        """Its name may not be shown (a variable's that may be the secret itself)."""
        return self.variable and not looks_like_a_name(self.name)


@dataclass(frozen=True)
class Runner:
    """How strict this run is, and the runner profile (None: there is none)."""

    strict: bool
    profile: RunnerProfile | None
    source: str  # where the profile came from, or why the run is strict without one

    def places(self, entries: Iterable[str]) -> tuple[str, ...]:
        """The profile's file or directory entries as resolved paths (``~`` expanded, links
        followed); a relative entry is taken from the profile's own directory."""
        beside = Path(self.source).parent
        return tuple(os.path.realpath(beside / Path(entry).expanduser()) for entry in entries)


def ci_set(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# Set by ``--profile FILE`` beside SIPCTL_PROFILE: the FILE as typed, so that an error names
# the option the user gave rather than a variable they never set.
PROFILE_OPTION_ENV = "_SIPCTL_PROFILE_OPTION"


def run_is_strict(env: Mapping[str, str]) -> bool:
    """``runner_of(env).strict`` without reading the profile: a runner profile is named, or
    CI is set (the rule of spec files reached through a link asks it of every file)."""
    return bool(env.get(RUNNER_PROFILE_ENV, "").strip()) or ci_set(env)


def runner_of(env: Mapping[str, str]) -> Runner:
    """The runner profile named by ``--profile`` or ``SIPCTL_PROFILE`` (read now), and the
    strictness."""
    path = env.get(RUNNER_PROFILE_ENV, "").strip()
    if path:
        from sipctl.schemas.admin_files import read_admin_file

        typed = env.get(PROFILE_OPTION_ENV, "")
        # only when SIPCTL_PROFILE is still the option's (not one set since, in this process)
        given = typed and str(Path(typed).resolve()) == path
        named = f"--profile {typed}" if given else f"{RUNNER_PROFILE_ENV}={path}"
        text = read_admin_file(Path(path), "runner profile", named)
        return Runner(True, parse_profile(text, path, RunnerProfile), path)
    if ci_set(env):
        return Runner(True, None, f"no runner profile ({RUNNER_PROFILE_ENV}) and CI is set")
    return Runner(False, None, "")


# --- what a spec binds ---------------------------------------------------------------------------


def spec_bindings(loaded: LoadedSpec) -> list[Binding]:
    """Every credential ``loaded`` names, with its destinations, in the order of the spec."""
    return list(_bindings(loaded))


def _bindings(loaded: LoadedSpec) -> Iterator[Binding]:
    spec = loaded.spec
    dns = spec.dns
    if dns is not None and dns.tsig is not None:  # TSIG: rfc2136 and what builds on it
        server = _hostport(dns.server or "", 53)
        if dns.tsig.secret_env is not None:
            key = ("dns", "tsig", "secret_env")
            secret_env = dns.tsig.secret_env
            yield Binding(key, secret_env, ("tsig",), (server,), zone=spec.zone, variable=True)
        if dns.tsig.secret_file is not None:
            written = dns.tsig.secret_file
            name = str(loaded.resolve_path(written))
            key = ("dns", "tsig", "secret_file")
            yield Binding(key, name, ("tsig",), (server,), written=written, zone=spec.zone)
    if dns is not None and dns.octodns is not None:  # only provider octodns takes it
        config = dns.octodns
        arguments = config.arguments()
        places = tuple(_octodns_destinations(arguments))
        named = list(_env_references(arguments))
        for key, name in named:
            key = ("dns", "octodns", *key)
            yield Binding(
                key, name, API_KINDS, places, config.provider_class, zone=spec.zone, variable=True
            )
        if not named:  # the plugin finds its own: the runner's (AWS's environment, ~/.aws, a role)
            key = ("dns", "octodns", "class")
            yield Binding(
                key, OCTODNS_AMBIENT, API_KINDS, places, config.provider_class, zone=spec.zone
            )
    for section, target_key, target, ssh in _ssh_targets(loaded):
        ref = parse_target(target)
        host = f"[{ref.host}]" if ":" in ref.host else ref.host
        where = (f"{host}:{ref.port}",)
        if ssh is not None and ssh.key_file:
            name = str(loaded.resolve_path(ssh.key_file))
            key = (section, "ssh", "key_file")
            yield Binding(key, name, ("ssh_key",), where, written=ssh.key_file)
        else:
            yield Binding(target_key, SSH_AGENT, ("ssh_agent",), where)


def acme_directory(loaded: LoadedSpec) -> str | None:
    asterisk = loaded.spec.asterisk
    if asterisk is None or asterisk.tls is None or asterisk.tls.acme is None:
        return None
    return asterisk.tls.acme.directory


def _ssh_targets(loaded: LoadedSpec) -> Iterator[tuple[str, tuple[str | int, ...], str, Any]]:
    """(section of its ssh options, key of its target, target, ssh options) of every layer
    that logs in over SSH: each layer ``runner_places.layer_targets`` names, the page's
    ``webrtc.publish`` among them (its login is asterisk.ssh's on the PBX's own host)."""
    for layer in layer_targets(loaded.spec):
        if parse_target(layer.target).kind != "ssh":
            continue
        if layer.layer == "webrtc":
            yield "asterisk", layer.key, layer.target, layer.ssh
        else:
            yield layer.layer, (layer.layer, "target"), layer.target, layer.ssh


def _env_references(value: Any, key: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, str]]:
    if isinstance(value, str) and value.startswith("env/"):
        yield key, value[len("env/") :]
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _env_references(v, (*key, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _env_references(v, (*key, i))


def _octodns_destinations(arguments: Mapping[str, Any]) -> Iterator[str]:
    """Where an octoDNS plugin's arguments send it: a host argument (with ``port`` and
    ``scheme``), and every value that is a URL."""
    scheme = str(arguments.get("scheme", "https")).lower()
    port = arguments.get("port")
    for name in _HOST_ARGS:
        host = arguments.get(name)
        if isinstance(host, str) and host and not host.startswith("env/"):
            if "://" in host:
                continue  # a URL: below
            default = port if isinstance(port, int) else _DEFAULT_PORTS.get(scheme, 443)
            yield _hostport(host, default)
    for value in _strings(arguments):
        if "://" in value and not value.startswith("env/"):
            yield value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# --- destinations --------------------------------------------------------------------------------


def _hostport(text: str, default: int) -> str:
    host, port = split_destination(text, default)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def split_destination(text: str, default: int | None = None) -> tuple[str, int | None]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a URL -> (host in lower case, port)."""
    text = text.strip()
    if "://" in text:
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        return (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(parts.scheme, default)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    port = int(port_text) if port_text.isdigit() else default
    return host.lower().rstrip("."), port


def destination_allowed(destination: str, allowed: tuple[str, ...]) -> bool:
    host, port = split_destination(destination)
    for entry in allowed:
        want_host, want_port = split_destination(entry)
        if same_host(host, want_host) and (want_port is None or want_port == port):
            return True
    return False


# --- the check -----------------------------------------------------------------------------------


def binding_problem(loaded: LoadedSpec, binding: Binding, runner: Runner) -> str | None:
    """Why ``binding`` may not be used under ``runner`` (None: it may)."""
    profile = runner.profile
    where = f"{loaded.where(binding.key)}: {binding.dotted}"
    credential = None
    if profile is not None:
        # a file by its absolute path, or as the spec writes it (a CI checkout's path varies);
        # either way the kind and the destinations below decide
        credential = profile.credentials.get(binding.name) or (
            profile.credentials.get(binding.written) if binding.written else None
        )
    shown = binding.shown
    if credential is None and binding.hidden:
        prefix = "env/" if binding.key[:2] == ("dns", "octodns") else ""
        return (
            f"{where}: {shown} is not a credential of the runner profile ({runner.source}); "
            f"nothing was sent{hidden_name_advice(binding.name, binding.dotted, prefix)}"
        )
    if credential is None:
        return (
            f"{where}: {shown} is not a credential of the runner profile ({runner.source}); "
            f"nothing was sent. If this spec may send it there, add to the runner profile:\n"
            + _paste(binding)
        )
    if credential.kind not in binding.kinds:
        return (
            f"{where}: {shown} is a {credential.kind} credential in the runner profile, and "
            f"this key would use it as {' or '.join(binding.kinds)}; nothing was sent"
        )
    if binding.provider_class is not None and binding.provider_class not in credential.classes:
        listed = ", ".join(credential.classes) or "none"
        return (
            f"{where}: the runner profile lets {shown} go to the octoDNS classes {listed}, "
            f"not to {binding.provider_class}; nothing was sent"
        )
    for destination in binding.destinations:
        if not destination_allowed(destination, credential.to):
            listed = ", ".join(credential.to) or "nowhere"
            return (
                f"{where}: the runner profile lets {shown} go to {listed}, not to "
                f"{destination}; nothing was sent"
            )
    zone = binding.zone
    if (
        zone is not None
        and credential.zones is not None
        and not zone_allowed(zone, credential.zones)
    ):
        listed = ", ".join(credential.zones) or "none"
        listed_as = binding.name if profile and binding.name in profile.credentials else None
        listed_as = listed_as or binding.written or binding.name
        # a variable's name that may be the secret itself: not shown
        entry = "its entry" if binding.hidden else json.dumps(listed_as)
        at = loaded.where(("dns", "zone") if _zone_given(loaded) else ("domain",))
        return (
            f"{where}: the runner profile lets {shown} be used for the zones {listed}, "
            f"not for {zone} (this spec's zone, {at}); nothing was sent. If this spec "
            f"may use it for {zone}, add {json.dumps(zone)} to the zones of "
            f"{entry} in the runner profile ({runner.source})"
        )
    return None


def _zone_given(loaded: LoadedSpec) -> bool:
    dns = loaded.spec.dns
    return dns is not None and dns.zone is not None


def _paste(binding: Binding) -> str:
    lines = [
        "    credentials:",
        f"      {json.dumps(binding.name)}:",
        f"        kind: {binding.kinds[0]}",
    ]
    lines.append(f"        to: {json.dumps(list(binding.destinations))}")
    if binding.provider_class is not None:
        lines.append(f"        classes: [{json.dumps(binding.provider_class)}]")
    if binding.zone is not None:
        lines.append(f"        zones: [{json.dumps(binding.zone)}]")
    return "\n".join(lines)


def bindings_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """Every refusal of ``loaded`` under ``runner`` (none when the run is not strict)."""
    if not runner.strict:
        return []
    problems = [
        problem
        for binding in spec_bindings(loaded)
        if (problem := binding_problem(loaded, binding, runner)) is not None
    ]
    problems += known_hosts_problems(loaded, runner)
    problems += acme_ca_file_problems(loaded, runner)
    problems += unsigned_server_problems(loaded, runner)
    problems += place_problems(loaded, runner)
    directory = acme_directory(loaded)
    allowed = runner.profile.acme_directories if runner.profile is not None else ()
    if directory is not None and directory not in allowed:
        where = loaded.where(("asterisk", "tls", "acme", "directory"))
        problems.append(
            f"{where}: asterisk.tls.acme.directory: {directory} is not an ACME directory of "
            f"the runner profile ({runner.source}); add it to acme_directories: "
            f"[{json.dumps(directory)}]"
        )
    return problems


def unsigned_server_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """A ``dns.server`` asked without a key (no ``dns.tsig``) is a host the spec chose, and
    a plan would connect to it (any host, any port: from a CI runner, a port scanner of
    its network). Where the run is strict it must be one the runner profile's
    ``probe_targets`` lists, as any other host sipctl asks without a credential."""
    dns = loaded.spec.dns
    if not runner.strict or dns is None or dns.server is None or dns.tsig is not None:
        return []
    host, _port = split_destination(dns.server, 53)
    listed = runner.profile.probe_targets if runner.profile is not None else ()
    if any(split_destination(entry)[0] == host for entry in listed):
        return []
    where = loaded.where(("dns", "server"))
    return [
        f"{where}: dns.server: {dns.server} would be asked without a key (no dns.tsig), and "
        f"where the run is strict ({runner.source}) sipctl asks no host a spec names on "
        "its own; nothing was sent. Give dns.tsig a key the runner profile sends there, or "
        f"have the admin add to the runner profile:\n    probe_targets: [{json.dumps(host)}]"
    ]


DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"  # the runner's own: a spec cannot write it


def known_hosts_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """Each ``ssh.known_hosts`` of ``loaded``'s SSH targets that is neither the runner's own
    (``~/.ssh/known_hosts``) nor a file the runner profile's ``known_hosts`` lists (a
    relative entry from the profile's directory); both compared with links resolved. Only
    where the run is strict."""
    if not runner.strict:
        return []
    own = os.path.realpath(Path(DEFAULT_KNOWN_HOSTS).expanduser())
    listed = runner.places(runner.profile.known_hosts) if runner.profile is not None else ()
    problems: dict[tuple[str | int, ...], str] = {}
    for key, written in _known_hosts_keys(loaded):
        resolved = os.path.realpath(loaded.resolve_path(written))
        if key in problems or resolved == own or resolved in listed:
            continue
        shown = f"{written} is {resolved}" if resolved != written else written
        profile = (
            f"the runner profile ({runner.source}) lists "
            + (", ".join(listed) if listed else "no known_hosts")
            if runner.profile is not None
            else f"there is {runner.source}"
        )
        problems[key] = (
            f"{loaded.where(key)}: {'.'.join(str(p) for p in key)}: {shown}, not the runner's "
            f"own {DEFAULT_KNOWN_HOSTS} ({profile}); no connection was made. The host keys "
            "the runner trusts are the admin's: leave known_hosts out, or have the admin add "
            f"to the runner profile:\n    known_hosts: [{json.dumps(resolved)}]"
        )
    return list(problems.values())


def acme_ca_file_problems(loaded: LoadedSpec, runner: Runner) -> list[str]:
    """``asterisk.tls.acme.ca_file`` when it is not a file the runner profile's
    ``acme_ca_files`` lists (compared with links resolved; a relative entry from the
    profile's directory): the CAs the runner trusts for the ACME server it signs to are the
    admin's, as its known_hosts are. Only where the run is strict."""
    asterisk = loaded.spec.asterisk
    acme = asterisk.tls.acme if asterisk is not None and asterisk.tls is not None else None
    if not runner.strict or acme is None or acme.ca_file is None:
        return []
    resolved = os.path.realpath(loaded.resolve_path(acme.ca_file))
    listed = runner.places(runner.profile.acme_ca_files) if runner.profile is not None else ()
    if resolved in listed:
        return []
    key = ("asterisk", "tls", "acme", "ca_file")
    shown = f"{acme.ca_file} is {resolved}" if resolved != acme.ca_file else acme.ca_file
    profile = (
        f"the runner profile ({runner.source}) lists "
        + (", ".join(listed) if listed else "no acme_ca_files")
        if runner.profile is not None
        else f"there is {runner.source}"
    )
    return [
        f"{loaded.where(key)}: asterisk.tls.acme.ca_file: {shown}, not a CA file of the "
        f"runner ({profile}); nothing was read or sent. The CAs the runner trusts for an "
        "ACME server are the admin's: leave ca_file out (the system's CAs), or have the "
        f"admin add to the runner profile:\n    acme_ca_files: [{json.dumps(resolved)}]"
    ]


def _known_hosts_keys(loaded: LoadedSpec) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The key of each ``ssh.known_hosts`` an SSH target uses, and its value (a section
    without its own ``ssh`` uses ``asterisk.ssh``'s)."""
    asterisk = loaded.spec.asterisk
    inherited = asterisk.ssh if asterisk is not None else None
    for section, _key, _target, ssh in _ssh_targets(loaded):
        if ssh is None:
            continue
        where = "asterisk" if ssh is inherited else section
        yield (where, "ssh", "known_hosts"), ssh.known_hosts


def enforce_bindings(loaded: LoadedSpec, ctx: RunContext) -> None:
    """Refuse ``loaded`` before any connection when it breaks the runner profile; say once
    per run, where nothing is strict, that the bindings are the spec's own. Checked once per
    spec per run."""
    if id(loaded) in ctx.bindings_checked:
        return
    runner = runner_of(ctx.env)
    problems = bindings_problems(loaded, runner)
    if problems:
        raise refusal(
            loaded,
            problems,
            "bindings the runner profile does not allow",
            "the runner profile (see: sipctl docs security) says which credentials a spec may "
            "name, where each may go, where on this machine sipctl may write and which "
            "layers may be this machine; a merge request cannot change it",
        )
    ctx.bindings_checked.add(id(loaded))
    if not runner.strict and spec_bindings(loaded) and _SAID not in ctx.bindings_checked:
        ctx.bindings_checked.add(_SAID)  # once per run
        ctx.notice(
            f"note: {loaded.source}: the credentials and where they go are the spec's own "
            f"(no runner profile, {RUNNER_PROFILE_ENV}; CI not set): see sipctl docs security"
        )


# --- a hoster's key that is bound to no zones ----------------------------------------------------

_ZONES_SHOWN = 5  # zones pasted into the warning; a hoster's 1,000 go into the profile anyway


@dataclass(frozen=True)
class CustomerKey:
    """A DNS credential a hosting customer's file (``host:``) binds, as plain data: it
    crosses a planning worker's pipe (reconciler/gitops/planners.py)."""

    name: str
    written: str | None  # a file as the spec writes it
    where: str  # file:line: key
    zone: str
    hidden: bool = False  # a variable's name that may be the secret itself: never shown


def customer_keys(loaded: LoadedSpec) -> tuple[CustomerKey, ...]:
    """The DNS credentials of ``loaded`` when it is a hosting customer's file; else none
    (a one-company spec's key is its own)."""
    if loaded.spec.host is None:
        return ()
    return tuple(
        CustomerKey(b.name, b.written, f"{loaded.where(b.key)}: {b.dotted}", b.zone, b.hidden)
        for b in spec_bindings(loaded)
        if b.zone is not None
    )


def unzoned_customer_keys(keys: Iterable[CustomerKey], runner: Runner) -> list[str]:
    """One warning per DNS credential that hosting customer files of this run bind while
    the runner profile ties it to no zones (``zones`` left out), or while there is no
    runner profile and credentials are not checked: such a key keeps no customer to its
    own zone. Not where the run refuses the key anyway."""
    if runner.strict and runner.profile is None:
        return []  # CI without a profile: every credential is refused
    found: dict[str, tuple[CustomerKey, list[str]]] = {}
    for key in keys:
        listed_as = key.name
        if runner.profile is not None:
            listed_as, credential = _credential_of(runner.profile, key)
            if credential is None or credential.zones is not None:
                continue  # refused, or bound to zones
        first = found.setdefault(listed_as, (key, []))
        if key.zone not in first[1]:
            first[1].append(key.zone)
    return [_unzoned_warning(key, name, zones, runner) for name, (key, zones) in found.items()]


def _credential_of(profile: RunnerProfile, key: CustomerKey) -> tuple[str, Credential | None]:
    """The profile's entry of ``key`` and the name it is listed under (as in
    ``binding_problem``: a file by its absolute path, or as the spec writes it)."""
    if key.name in profile.credentials:
        return key.name, profile.credentials[key.name]
    if key.written is not None and key.written in profile.credentials:
        return key.written, profile.credentials[key.written]
    return key.name, None


def _unzoned_warning(key: CustomerKey, listed_as: str, zones: list[str], runner: Runner) -> str:
    shown = sorted(zones)[:_ZONES_SHOWN]
    more = len(zones) - len(shown)
    rest = f"  # and the {more} other customer zone(s) of this run" if more else ""
    why = (
        f"the runner profile ({runner.source}) lists it without zones"
        if runner.profile is not None
        else f"there is no runner profile ({RUNNER_PROFILE_ENV}), so credentials are not checked"
    )
    named = listed_as
    if key.hidden:  # a variable's name that may be the secret itself
        named, listed_as = "the variable it names", "NAME"
    return (
        f"{key.where}: {named}, the DNS credential of {len(zones)} hosting customer "
        f"zone(s), is bound to no zones: {why}. A customer file may then claim any domain and "
        "change the records of any zone this credential may update, another customer's "
        "among them. List the customers' zones in the runner profile:\n"
        f"    credentials:\n      {json.dumps(listed_as)}:\n"
        f"        zones: {json.dumps(shown)}{rest}\n"
        "  or '*.<parent>' for all zones below a parent (a wildcard does not keep the "
        "customers below it apart); see: sipctl docs security"
    )


def warn_unzoned_keys(keys: Iterable[CustomerKey], warn: Callable[[str], None]) -> None:
    """``unzoned_customer_keys`` under this process's runner profile, each to ``warn``.
    A runner profile that does not read is the run's own error (the specs that use a
    credential refuse with it); it is no reason for a warning."""
    from sipctl.errors import SipctlError

    keys = list(keys)
    if not keys:
        return
    try:
        runner = runner_of(os.environ)
    except SipctlError:
        return
    for warning in unzoned_customer_keys(keys, runner):
        warn(warning)
