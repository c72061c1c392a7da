"""The admin's two profiles: what a spec may name but never decide (docs/security.md).

A spec arrives by merge request and says *what* is wanted. *How* it is done is bound here,
in files a merge request cannot change:

- the **host profile** (``/etc/sipctl/host.yaml`` on each PBX, root-owned): the programs
  sipctl runs there, by role (``asterisk``, ``fail2ban``, ``zone_reload``), as named entries
  of words. A spec may pick an entry by its name (``asterisk.program: staging``), never
  write a program;
- the **runner profile** (``--profile FILE`` or ``SIPCTL_PROFILE``, held by the pipeline):
  every credential a spec may name (an environment variable or a file), its kind, and the
  destinations it may be sent to; the octoDNS classes allowed beyond installed plugins; the
  hosts ``audit`` and ``verify`` may probe beyond the spec's own PBX; the places on the
  runner a spec's zone file, ``dir:`` targets and ``local`` layers may read and write in
  beyond the spec's own directory, and which layers may be this machine's at all
  (``reconciler/runner_places.py``); the known_hosts files a spec's SSH targets may be
  checked against beyond the runner's own.

These models are pydantic, like the spec's, and give the JSON Schema of both files
(``sipctl schema --kind host-profile`` / ``runner-profile``).
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from sipctl.schemas.names import ENTRY_NAME_PATTERN, LABEL_PATTERN, is_dns_label
from sipctl.schemas.numbers import FormatVersion
from sipctl.schemas.values import check_strings

DEFAULT_ENTRY = "default"
HOST_PROFILE_PATH = "/etc/sipctl/host.yaml"  # on every host; SIPCTL_HOST_PROFILE moves it
HOST_PROFILE_ENV = "SIPCTL_HOST_PROFILE"
RUNNER_PROFILE_ENV = "SIPCTL_PROFILE"

EntryName = Annotated[str, Field(pattern=ENTRY_NAME_PATTERN)]
Word = Annotated[str, Field(min_length=1, max_length=4096)]
Program = Annotated[
    tuple[Word, ...],
    Field(
        min_length=1,
        description="the program and its arguments, one word each (run without a shell)",
    ),
]

# The stock program of each role, used when the host has no profile or the profile no entry.
STOCK_PROGRAMS: dict[str, tuple[str, ...]] = {
    "asterisk": ("asterisk",),
    "fail2ban": ("fail2ban-client",),
}


class _Profile(BaseModel):
    # defer_build (as spec.py's): a profile's validator is built when a profile is read, not
    # when a spec's retired keys or bindings import this module (every plan does).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: object) -> object:
        check_strings(value)
        return value


_ROLE_HELP = (
    "entry name -> the program's words; the entry 'default' is used when the spec names "
    "none, and without any entry the stock program ({stock})"
)


P = TypeVar("P", bound="_Profile")


# The places on a PBX reached by ssh:// that sipctl may read and write in when its host profile
# lists none (``places``) and the run is strict: where Debian and the documented setups keep
# what sipctl writes (reconciler/host_places.py). Each holds the files below it.
STOCK_HOST_PLACES: tuple[str, ...] = (
    "/etc/asterisk",  # asterisk.config_dir, its keys/ (asterisk.tls)
    "/etc/fail2ban",  # fail2ban.config_dir
    "/etc/iptables",  # iptables-persistent's rules.v4 / rules.v6
    "/etc/iptables.up",  # firewall.persist's default (iptables), and its IPv6 file
    "/etc/ip6tables.up",
    "/etc/nftables.d",  # firewall.persist's default (nftables)
    "/etc/letsencrypt",  # a certbot certificate (asterisk.tls)
    "/var/log/asterisk",  # fail2ban.logpath
    "/var/www",  # webrtc.publish
)

# Never a spec's, whatever the places: sipctl reads and writes below them only where the host
# profile lists them (or a place inside them) itself. Logins and root's shell (an SSH lockout,
# a key of the merge request's author), sudo and cron (root's programs), the accounts, and the
# host profile itself (the programs sipctl runs as root). fnmatch patterns of whole paths;
# a directory of one of GUARDED_NAMES is guarded wherever it is (~/.ssh of any account).
HOST_GUARDED: tuple[str, ...] = (
    "/root",
    "/etc/ssh",
    "/etc/sudoers*",
    "/etc/cron*",
    "/var/spool/cron",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/pam.d",
    "/etc/sipctl",
)
GUARDED_NAMES: tuple[str, ...] = (".ssh", ".git")

GuestJump = Annotated[str, Field(pattern=r"^[^@\s,()]+@[^@\s,()]+$", max_length=400)]
HostPlaceEntry = Annotated[str, Field(min_length=1, max_length=4096, pattern="^/")]


class HostProfile(_Profile):
    """``/etc/sipctl/host.yaml`` on a PBX: the programs sipctl runs there, and the places
    sipctl may read and write in there."""

    version: FormatVersion = Field(description="the profile format; 1 is the only one so far")
    asterisk: dict[EntryName, Program] = Field(
        default_factory=dict,
        description="how Asterisk is reached: the words before '-rx', e.g. "
        "[docker, exec, pbx, asterisk]; " + _ROLE_HELP.format(stock="asterisk"),
    )
    fail2ban: dict[EntryName, Program] = Field(
        default_factory=dict,
        description="how fail2ban-client is run, e.g. [fail2ban-client, -s, /run/f2b.sock]; "
        + _ROLE_HELP.format(stock="fail2ban-client"),
    )
    zone_reload: dict[EntryName, Program] = Field(
        default_factory=dict,
        description="what runs after a zone file changed (dns.provider zonefile, on the "
        "machine running sipctl), e.g. [rndc, reload, mysite.ru]; without an entry nothing "
        "runs",
    )
    guest_jumps: tuple[GuestJump, ...] = Field(
        default=(),
        description="extensions of the admin's own dialplan, as EXTENSION@CONTEXT (like "
        "105@default), that guests may be sent to (asterisk.route: goto, a hosting "
        "customer's names) even though their steps in the running Asterisk can call out "
        "(a trunk, an outside number, a forward, a program): without an entry here 'sipctl "
        "plan' refuses such a jump, since a stranger would call on this PBX's bill",
    )
    places: tuple[HostPlaceEntry, ...] | None = Field(
        default=None,
        description="the directories (or files) on this host a spec reaching it over ssh:// "
        "may read and write in: asterisk.config_dir, asterisk.tls's cert_file and key_file, "
        "firewall.persist, fail2ban.config_dir and logpath, the path of an ssh:// "
        "webrtc.publish; each holds what is below it, compared with links and '..' resolved "
        "on this host (list real directories, not links). Enforced on every run once "
        "listed. Left out: where the run is strict (a runner profile or CI) the stock places "
        + ", ".join(STOCK_HOST_PLACES)
        + "; elsewhere any place. Whatever the list, nothing in "
        + ", ".join(HOST_GUARDED)
        + " or a .ssh or .git directory unless listed itself",
    )

    @field_validator("places", mode="after")
    @classmethod
    def _normalised(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        import posixpath

        return None if value is None else tuple(posixpath.normpath(p) for p in value)


CredentialKind = Literal["tsig", "api_key", "ssh_key", "ssh_agent", "token", "password"]
DNS_KINDS = ("tsig", "api_key", "token", "password")  # the kinds a DNS provider is given
ZONE_ENTRY_PATTERN = rf"^(?:\*\.)?{LABEL_PATTERN}(?:\.{LABEL_PATTERN})*\.?$"


def check_zone_entry(value: str) -> str:
    """``example.com`` (that zone) or ``*.example.com`` (every zone below it), in lower case
    without a trailing dot, as a spec's zone is compared."""
    text = value.lower().removesuffix(".")
    base = text.removeprefix("*.")
    if not base or not all(is_dns_label(label) for label in base.split(".")):
        raise ValueError(
            f"{value!r} is not a DNS zone (like example.com) nor every zone below one (like "
            "*.example.com)"
        )
    return text


ZoneEntry = Annotated[
    str,
    AfterValidator(check_zone_entry),
    Field(json_schema_extra={"pattern": ZONE_ENTRY_PATTERN, "maxLength": 255}),
]


def zone_allowed(zone: str, entries: tuple[str, ...]) -> bool:
    """True when ``zone`` (lower case, no trailing dot) is one of ``entries``: ``example.com``
    allows that zone exactly, ``*.example.com`` any zone strictly below it."""
    zone = zone.lower().removesuffix(".")
    for entry in entries:
        if entry.startswith("*."):
            if zone.endswith(entry[1:]):  # ".example.com": strictly below
                return True
        elif zone == entry:
            return True
    return False


# The layers whose target may be this machine (``target: local``; for webrtc a ``local:``
# publish), as a runner profile's ``local_layers`` names them.
LocalLayer = Literal["asterisk", "firewall", "fail2ban", "webrtc"]
LOCAL_LAYERS: tuple[LocalLayer, ...] = get_args(LocalLayer)

ZoneFilesDirectory = Annotated[str, Field(min_length=1, max_length=4096)]
KnownHostsFile = Annotated[str, Field(min_length=1, max_length=4096)]
PlaceDirectory = Annotated[str, Field(min_length=1, max_length=4096)]


class Credential(_Profile):
    """One credential a spec may name, and where it may go."""

    kind: CredentialKind = Field(
        description="what it is: tsig (rfc2136 dns.tsig), api_key / token / password "
        "(dns.octodns env/NAME), ssh_key (ssh.key_file), ssh_agent (the agent and "
        "~/.ssh/id_*, when a spec names no key_file)"
    )
    to: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        default=(),
        description="where it may be sent: HOST:PORT (a DNS server, an SSH host, an API) or "
        "a URL (its host and port count); HOST alone allows any port",
    )
    classes: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        default=(),
        description="octoDNS: the provider classes that may receive it (module.Class)",
    )
    zones: tuple[ZoneEntry, ...] | None = Field(
        default=None,
        description="DNS credentials (tsig, api_key, token, password): the zones a spec may "
        "use it for (its dns.zone, by default its domain): example.com is that zone exactly, "
        "*.example.com any zone strictly below it; without zones, any zone (a key that may "
        "update many zones, a hoster's, lists each customer's zone or a wildcard)",
    )

    @model_validator(mode="after")
    def _zones_of_dns_only(self) -> Credential:
        if self.zones is not None and self.kind not in DNS_KINDS:
            raise ValueError(
                f"zones is for DNS credentials ({', '.join(DNS_KINDS)}), not {self.kind}: remove it"
            )
        return self


class RunnerProfile(_Profile):
    """The pipeline's profile: the credentials, classes and probe targets a spec may use."""

    version: FormatVersion = Field(description="the profile format; 1 is the only one so far")
    credentials: dict[Annotated[str, Field(min_length=1)], Credential] = Field(
        default_factory=dict,
        description="by the name a spec gives it: an environment variable's name "
        "(dns.tsig.secret_env, dns.octodns env/NAME) or an absolute file path "
        "(dns.tsig.secret_file, ssh.key_file; also as the spec writes it, relative to the "
        "spec); the name 'ssh-agent' stands for the agent",
    )
    octodns_classes: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        default=(),
        description="octoDNS provider classes allowed besides those of installed octoDNS "
        "plugin distributions (module.Class)",
    )
    acme_directories: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        default=(),
        description="ACME directory URLs a spec's asterisk.tls.acme may use",
    )
    acme_ca_files: tuple[KnownHostsFile, ...] = Field(
        default=(),
        description="CA bundles on this machine a spec's asterisk.tls.acme.ca_file may name "
        "(a private ACME server's HTTPS); without ca_file the system's CAs are trusted. A "
        "relative one is taken from the directory of this profile; compared with links "
        "resolved: the CAs the runner trusts are the admin's, never a merge request's",
    )
    probe_targets: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        default=(),
        description="hosts or addresses audit and verify may probe besides the spec's own "
        "PBX (its asterisk target's host and the addresses the spec declares), and a "
        "dns.server plan may ask without a TSIG key",
    )
    zone_files: tuple[ZoneFilesDirectory, ...] = Field(
        default=(),
        description="directories on this machine where a spec's zone file (dns.provider "
        "zonefile, dns.file) and the files it $INCLUDEs may be besides the spec's own "
        "directory, e.g. /var/lib/bind (a relative one is taken from the directory of "
        "this profile); each holds the files below it, compared with links resolved",
    )
    known_hosts: tuple[KnownHostsFile, ...] = Field(
        default=(),
        description="known_hosts files on this machine a spec's ssh.known_hosts may name "
        "besides the runner's own ~/.ssh/known_hosts (a relative one is taken from the "
        "directory of this profile; compared with links resolved): the host keys the "
        "runner's SSH logins trust are the admin's, never a merge request's",
    )
    dir_targets: tuple[PlaceDirectory, ...] = Field(
        default=(),
        description="directories on this machine where a spec's dir:PATH target (asterisk, "
        "firewall, fail2ban, webrtc.publish) may be besides the spec's own directory, e.g. "
        "/srv/sipctl/staging; enforced where a runner profile is given or CI is set (a "
        "relative one is taken from the directory of this profile); each holds the "
        "directories below it, compared with links resolved",
    )
    local_paths: tuple[PlaceDirectory, ...] = Field(
        default=(),
        description="directories on this machine a layer whose target is local may read and "
        "write in (asterisk.config_dir, asterisk.tls's cert_file and key_file, "
        "firewall.persist, fail2ban.config_dir and logpath, the path of a local: "
        "webrtc.publish), e.g. /etc/asterisk; besides the spec's own directory; enforced "
        "where a runner profile is given or CI is set (a relative one is taken from the "
        "directory of this profile); each holds the files below it, compared with links "
        "resolved",
    )
    local_layers: tuple[LocalLayer, ...] = Field(
        default=(),
        description="the layers whose target may be this machine (target: local; for webrtc "
        "a local: publish): asterisk (sipctl runs asterisk -rx here and edits its files), "
        "firewall (it reads this machine's firewall, iptables-save or nft, and apply "
        "rewrites it), fail2ban (fail2ban-client and its files), webrtc (the page in this "
        "machine's web root). Only a runner that is the PBX lists any; the paths such a "
        "layer names must also be in local_paths. Enforced where a runner profile is given "
        "or CI is set",
    )


def parse_profile(text: str, source: str, model: type[P]) -> P:
    """A profile from its YAML text; SpecError naming ``source`` and each bad key."""
    from sipctl.schemas.admin_files import parse_admin_file

    which = "host-profile" if model is HostProfile else "runner-profile"
    return parse_admin_file(
        text,
        source,
        model,
        what="a profile is a mapping that starts with 'version: 1'",
        hint=f"the profile's keys: sipctl schema --kind {which}",
    )


def profile_schema_text(which: Literal["host", "runner"]) -> str:
    """The JSON Schema of the host profile or the runner profile."""
    from sipctl.schemas.jsonschema import DRAFT, dump

    model: type[_Profile] = HostProfile if which == "host" else RunnerProfile
    schema = model.model_json_schema(mode="validation")
    title = "sipctl host profile" if which == "host" else "sipctl runner profile"
    return dump({**schema, "$schema": DRAFT, "title": f"{title}, version 1"})
