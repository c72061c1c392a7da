"""What a fleet workflow carries, and which task queue does which part of a domain.

Everything in these dataclasses goes into Temporal's history, which any operator of the
cluster can read: spec text (a spec names secrets only as ``secret_env``/``secret_file`` or
``env/NAME``, never their values), plan documents, summaries and messages scrubbed of every
secret a worker loaded. Credentials stay in the workers' environment and runner profile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec

# The queue every worker also serves, for the workflows themselves (they do no I/O).
WORKFLOW_QUEUE = "sipctl-fleet"
DOMAIN_WORKFLOW = "sipctl-domain"
SWEEP_WORKFLOW = "sipctl-drift-sweep"
SWEEP_SCHEDULE = "sipctl-drift-sweep"
# The memo key under which a domain workflow keeps its DomainStatus (what the query returns).
STATUS_MEMO = "status"
# A hosting unit's workflow id: ``hosting:`` and its host file's domain. A domain has no ':',
# so no domain's workflow can take it.
HOSTING_PREFIX = "hosting:"

# Workflow states, as `fleet status` shows them.
PENDING = "pending"
PLANNING = "planning"
WAITING = "waiting for approval"
# A plan refused for a reason no approval passes (the host's kind, safety.host_refusals):
# only the PBX's admin can lift it, in the host profile; a new spec or a sweep plans again.
REFUSED = "refused by the host"
HOST_REFUSED_HINT = (
    "only the PBX's admin can allow it, in the host profile on the PBX (guest_jumps), or a "
    "new spec avoids it; the next sweep or sync plans again"
)
HOST_REFUSED_REASON = (
    f"refused for safety, and no approval passes it ('sipctl fleet approve' cannot): "
    f"{HOST_REFUSED_HINT}"
)
APPLYING = "applying"
CONVERGED = "converged"
DRIFTED = "drifted"
FAILED = "failed"
SILENT = "not answering"  # a workflow without the status memo, and no worker answered for it
# An idle worker polls again at least every minute (the server's long poll); longer than
# this without a poll of the workflows' queue, no worker is running.
WORKERS_GONE_SECONDS = 120.0
STATES = (PENDING, PLANNING, WAITING, REFUSED, APPLYING, CONVERGED, DRIFTED, FAILED, SILENT)


@dataclass
class Settings:
    """The fleet configuration's part that the workflows need (timeouts, repair)."""

    repair: bool = False  # the drift sweep re-applies a drifted domain
    heartbeat_seconds: float = 30.0  # an apply whose worker is silent this long is retried
    attempts: int = 5  # tries of one activity before the domain is marked failed
    lock_wait_seconds: float = 180.0  # a retry waits this long for a dead run's lock to expire
    lock_ttl_seconds: float = 120.0  # how long a lock of a killed worker blocks the domain


@dataclass
class Part:
    """The layers of a domain that one task queue plans and applies."""

    queue: str
    layers: list[str]
    # of a hosting unit: the files (names in the directory) on this queue, each planned
    # whole as 'sipctl plan -f DIR' plans it, and applied in this order; none for a domain
    files: list[str] = field(default_factory=list)


@dataclass
class SpecFile:
    """One spec file of a hosting directory, as `fleet sync` read it."""

    name: str  # its name in the directory (no '/')
    text: str


@dataclass
class SpecChange:
    """One version of a domain's spec, as `fleet sync` (or a portal) sends it, with the task
    queues that serve its parts (``parts_of``) and the one that verifies it ("" = none).

    A hosting unit (a host file and its customers, ``fleet/hosting.py``) is one too: its
    ``domain`` is ``hosting:`` and the host file's domain, ``source`` the directory, ``text``
    empty, ``files`` the spec files of the directory and ``customers`` the host's customer
    domains; each part names its files. The fields a hosting unit added have defaults, so a
    history written before them reads as it did."""

    domain: str
    source: str  # the spec's path as the sender saw it: messages, and relative paths
    text: str
    parts: list[Part] = field(default_factory=list)
    verify_queue: str = ""
    settings: Settings | None = None  # the fleet configuration's, as of this sync
    files: list[SpecFile] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        digest = hashlib.sha256(self.text.encode("utf-8"))
        for spec in self.files:  # none for a domain: its digest is its text's, as before
            digest.update(f"\0{spec.name}\0{len(spec.text)}\0".encode())
            digest.update(spec.text.encode("utf-8"))
        return digest.hexdigest()[:16]


@dataclass
class LayerRequest:
    change: SpecChange
    part: Part
    settings: Settings
    approved: str = ""  # the digest of the plans the admin approved, or ""


@dataclass
class PartPlan:
    part: Part
    plan_json: str  # the plan document (Plan.to_json()), as JSON text
    has_changes: bool
    summary: str
    refusals: list[str] = field(default_factory=list)
    # those of ``refusals`` no approval passes (``--force`` cannot: the host's kind); a plan
    # of an sipctl before them has none (a field with a default: its history reads as before)
    held: list[str] = field(default_factory=list)
    # the host's record of the last apply, when this plan read it with the host's layers
    # (one round trip): when and by whom (any run, the CLI's too); "" when not read or none
    recorded_at: str = ""
    recorded_by: str = ""


@dataclass
class StepOutcome:
    lines: list[str] = field(default_factory=list)


@dataclass
class DomainStatus:
    domain: str
    state: str = PENDING
    reason: str = ""
    spec_digest: str = ""
    source: str = ""
    queues: list[str] = field(default_factory=list)
    plan_summary: str = ""
    waiting_digest: str = ""  # the plans awaiting `fleet approve`
    refusals: list[str] = field(default_factory=list)
    last_apply: str = ""  # ISO time of the fleet's last successful apply of the domain
    last_check: str = ""  # ISO time of the last plan (sync or sweep)
    # the host's record of the last apply, as the last plan read it (PartPlan's): who
    # applied last, the CLI or another domain's apply too; "" for a domain without host
    # layers (its DNS record names no one, and reading it would cost a query per domain)
    recorded_at: str = ""
    recorded_by: str = ""
    # a hosting unit's customers (their domains, sorted); empty for a domain
    customers: list[str] = field(default_factory=list)


@dataclass
class DomainStart:
    """The input of a domain workflow (also what continue-as-new carries over)."""

    domain: str
    settings: Settings
    spec: SpecChange | None = None  # the last spec applied or being applied
    status: DomainStatus | None = None


def plans_digest(plans: list[PartPlan]) -> str:
    """What `fleet approve` approves: exactly these plans, nothing planned later."""
    digest = hashlib.sha256()
    for plan in plans:
        digest.update(plan.part.queue.encode())
        digest.update(b"\0")
        digest.update(plan.plan_json.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def host_queue_name(loaded: LoadedSpec) -> str | None:
    """``pbx:HOST`` for the PBX host of a spec's host layers (ssh: the host name; dir: the
    resolved directory; local: ``local``), or None for a spec without host layers."""
    from sipctl.reconciler.gitops.locking import host_places
    from sipctl.schemas.targets import parse_target

    for place in host_places(loaded):
        ref = parse_target(place.target)
        if ref.kind == "ssh":
            return f"pbx:{ref.host}"
        if ref.kind == "dir":
            return f"pbx:dir:{loaded.resolve_path(ref.path).resolve()}"
        return "pbx:local"
    return None


def parts_of(loaded: LoadedSpec) -> list[Part]:
    """The spec's managed layers split by task queue: the host's layers first, DNS last
    (so DNS advertises a PBX only once it is ready, as the CLI's apply order does)."""
    from sipctl.reconciler.layers import LAYERS

    spec = loaded.spec
    managed = [layer.name for layer in LAYERS if layer.managed(spec)]
    parts: list[Part] = []
    host_layers = [name for name in managed if name != "dns"]
    if host_layers:
        queue = host_queue_name(loaded)
        if queue is None:  # a layer that names no host of its own (the page): the DNS side
            queue = dns_queue_name(loaded)
        parts.append(Part(queue, host_layers))
    if "dns" in managed:
        parts.append(Part(dns_queue_name(loaded), ["dns"]))
    return parts


def verify_queue_of(loaded: LoadedSpec) -> str:
    """The queue that verifies a domain after an apply: its PBX's, when the spec manages both
    DNS and Asterisk (as the CLI's apply verifies only then); else "" (no verify)."""
    spec = loaded.spec
    if spec.dns is None or spec.asterisk is None:
        return ""
    if spec.dns.ensure == "absent" or spec.asterisk.ensure == "absent":
        return ""
    return host_queue_name(loaded) or ""


def dns_queue_name(loaded: LoadedSpec) -> str:
    """``dns:PROVIDER``: one queue per DNS provider, rate-limited as that provider needs."""
    dns = loaded.spec.dns
    return f"dns:{dns.provider if dns is not None else 'none'}"
