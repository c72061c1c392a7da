"""The plan: data first. Every view (human, Markdown, JSON) is rendered from ``Plan.to_json()``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sipctl.errors import SpecError
from sipctl.reconciler.attention import attention_reasons
from sipctl.reconciler.resources import Address, Value

FORMAT_VERSION = "1"
Action = Literal["create", "update", "delete"]

# Withdraw first, advertise last: DNS records that stop sending callers somewhere go first,
# then the host layers, and DNS records that advertise go last, so no caller is sent to a
# server that is not ready yet. The certificate goes before the Asterisk layer whose TLS
# transport needs it.
PHASE_WITHDRAW = 0
PHASE_BY_LAYER = {"firewall": 1, "fail2ban": 2, "certificate": 3, "asterisk": 4}
PHASE_OTHER = 5
PHASE_ADVERTISE = 6
ADVERTISING_LAYERS = frozenset({"dns"})


@dataclass
class Change:
    address: Address
    action: Action
    before: Value
    after: Value
    payload: Value = None
    details: list[dict[str, Any]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)  # the change in the spec's words

    @property
    def phase(self) -> int:
        if self.address.layer in ADVERTISING_LAYERS:
            return PHASE_ADVERTISE if self.advertises() else PHASE_WITHDRAW
        return PHASE_BY_LAYER.get(self.address.layer, PHASE_OTHER)

    def advertises(self) -> bool:
        """True when the change adds something a caller could be sent to."""
        if self.action == "delete":
            return False
        if self.action == "create":
            return True
        return bool(set(_records(self.after)) - set(_records(self.before)))

    def unit_counts(self) -> tuple[int, int, int]:
        """(added, changed, removed) of this change: its lines in the spec's words, as every
        view of the plan shows them (``+ user sales → 106 & 107``): one ``+``, ``~`` or ``-``
        line each. The summary counts what the reader sees above it."""
        signs = [line[:1] for line in self.lines()]
        return signs.count("+"), signs.count("~"), signs.count("-")

    def lines(self) -> list[str]:
        """The change in the spec's words; a generic line when nothing describes it."""
        return list(self.described) or [generic_line(self.action, self.address.to_json())]

    def removed_units(self) -> int:
        """How many managed records this change deletes or replaces (for the safety limit)."""
        if self.action == "create":
            return 0
        if self.action == "delete":
            return max(1, len(_records(self.before)))
        before, after = _records(self.before), _records(self.after)
        if before or after:
            return len(set(before) - set(after))
        return 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "address": self.address.to_json(),
            "action": self.action,
            "before": self.before,
            "after": self.after,
        }
        if self.payload is not None:
            data["payload"] = self.payload
        if self.details:
            data["details"] = self.details
        if self.described:
            data["described"] = list(self.described)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        action = data["action"]
        if action not in ("create", "update", "delete"):
            raise ValueError(f"unknown action {action!r}")
        return cls(
            address=Address.from_json(data["address"]),
            action=action,
            before=data.get("before"),
            after=data.get("after"),
            payload=data.get("payload"),
            details=[_detail(item) for item in data.get("details", [])],
            described=[str(line) for line in data.get("described", [])],
        )


def _detail(item: object) -> dict[str, Any]:
    """One item of a change's details as the views read it (a mapping; ``line`` a number)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("line", 0), int):
        raise TypeError(f"a change's detail is not one the differ writes: {item!r:.60}")
    return dict(item)


# The one unit plan summaries and the safety limit count: a record of a DNS record set; a
# resource without records (a file, a chain, a jail) counts as one.
SIGNS = {"create": "+", "update": "~", "delete": "-"}


def generic_line(action: str, address: Mapping[str, str]) -> str:
    """The line of a change no describer tells: ``+ asterisk file pjsip_sipctl.conf``."""
    return f"{SIGNS[action]} {address['layer']} {address['kind']} {address['name']}"


COUNT_UNIT_NOTE = "a whole file, chain or jail counts as one record"


def _records(value: Value) -> list[str]:
    """The countable units of a value: the items of its ``records`` list, else none.

    Only record sets count towards the safety limit; a file rewritten in place is one
    resource changed, not many destroyed.
    """
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        return [json.dumps(v, sort_keys=True) for v in value["records"]]
    return []


def managed_units(value: Value) -> int:
    """How many units a live value holds: its records, or 1 for anything else."""
    return max(1, len(_records(value)))


@dataclass
class TargetPlan:
    """The changes for one provider at one target, and what it read there."""

    layer: str
    provider: str
    target: str
    fingerprint: str
    managed_units: int = 0
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)
    # refused whatever --force says: only the host profile lifts them (``safety``)
    host_hazards: list[str] = field(default_factory=list)
    desired_kinds: dict[str, int] = field(default_factory=dict)  # kind -> desired resources
    # a host's target that removes a customer whose file is gone (its DNS records)
    customer: str | None = None
    # resources read here that are others' (``LiveState.owned_by``), by ``str(address)``:
    # left out of ``managed_units`` and of what the safety limit counts for this target
    owned_by: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "desired_kinds": dict(self.desired_kinds),
            "layer": self.layer,
            "provider": self.provider,
            "target": self.target,
            "fingerprint": self.fingerprint,
            "managed_units": self.managed_units,
            "changes": [c.to_json() for c in self.changes],
            "notes": list(self.notes),
            "skipped": list(self.skipped),
            "hazards": list(self.hazards),
        }
        if self.host_hazards:  # only then, so every other plan reads as before
            data["host_hazards"] = list(self.host_hazards)
        if self.customer is not None:
            data["customer"] = self.customer
        if self.owned_by:
            data["owned_by"] = dict(self.owned_by)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetPlan:
        return cls(
            layer=str(data["layer"]),
            provider=str(data["provider"]),
            target=str(data["target"]),
            fingerprint=str(data["fingerprint"]),
            managed_units=int(data.get("managed_units", 0)),
            changes=[Change.from_json(c) for c in data.get("changes", [])],
            notes=[str(n) for n in data.get("notes", [])],
            skipped=[str(n) for n in data.get("skipped", [])],
            hazards=[str(n) for n in data.get("hazards", [])],
            host_hazards=[str(n) for n in data.get("host_hazards", [])],
            desired_kinds={str(k): int(v) for k, v in data.get("desired_kinds", {}).items()},
            customer=str(data["customer"]) if data.get("customer") is not None else None,
            owned_by={str(k): str(v) for k, v in data.get("owned_by", {}).items()},
        )


@dataclass
class Plan:
    """Everything ``apply PLAN`` needs: the spec it came from and what was read and decided."""

    spec_source: str
    spec_text: str
    spec_sha256: str
    domain: str
    created_at: str
    sipctl_version: str
    targets: list[TargetPlan] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # the --target selection, empty = all
    # a hosting file's plan: the files beside it that it was made with (name -> digest of
    # the text; see ``LoadedSpec.composed``); None for one company's spec
    spec_files: dict[str, str] | None = None
    # the absolute directory the spec's relative paths (key files, zone files, dir:
    # targets) were read against; None in a plan made before it was recorded
    spec_dir: str | None = None

    def changes(self) -> Iterator[tuple[TargetPlan, Change]]:
        for target in self.targets:
            for change in target.changes:
                yield target, change

    def counts(self) -> dict[str, int]:
        """Lines of the plan to add, change and destroy (``Change.unit_counts``); the safety
        limit counts records instead (``COUNT_UNIT_NOTE``)."""
        counts = {"add": 0, "change": 0, "destroy": 0}
        for _, change in self.changes():
            added, changed, removed = change.unit_counts()
            counts["add"] += added
            counts["change"] += changed
            counts["destroy"] += removed
        return counts

    def refusals(self) -> list[str]:
        """Why apply would refuse this plan without --force (empty: it would not)."""
        from sipctl.reconciler.safety import refusal_reasons

        return refusal_reasons(self)

    def host_refusals(self) -> list[str]:
        """Those of ``refusals`` that --force cannot pass (``safety.host_refusals``)."""
        from sipctl.reconciler.safety import host_refusals

        return host_refusals(self)

    @property
    def has_changes(self) -> bool:
        return any(t.changes for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "source": self.spec_source,
            "sha256": self.spec_sha256,
            "text": self.spec_text,
        }
        if self.spec_files is not None:
            spec["files"] = dict(self.spec_files)
        if self.spec_dir is not None:
            spec["dir"] = self.spec_dir
        targets = [t.to_json() for t in self.targets]
        data: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "sipctl_version": self.sipctl_version,
            "created_at": self.created_at,
            "domain": self.domain,
            "spec": spec,
            "layers": list(self.layers),
            "summary": self.counts(),
            "refusals": self.refusals(),
        }
        held = self.host_refusals()
        if held:  # only then, so every other plan reads as before
            data["refusals_force_cannot_pass"] = held
        # Only a plan with something risky carries the key, so every other plan reads as before.
        attention = attention_reasons(targets)
        if attention:
            data["attention"] = attention
        data["targets"] = targets
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "plan") -> Plan:
        version = data.get("format_version") if isinstance(data, Mapping) else None
        if version != FORMAT_VERSION or not isinstance(version, str):
            raise SpecError(
                f"{source}: not a sipctl plan of format {FORMAT_VERSION} "
                f"({_version_found(data)}); make it again with 'sipctl plan --out'"
            )
        try:
            spec = data["spec"]
            return cls(
                spec_source=str(spec["source"]),
                spec_text=str(spec["text"]),
                spec_sha256=str(spec["sha256"]),
                domain=str(data["domain"]),
                created_at=str(data["created_at"]),
                sipctl_version=str(data["sipctl_version"]),
                targets=[TargetPlan.from_json(t) for t in data["targets"]],
                layers=[str(x) for x in data.get("layers", [])],
                spec_files=_spec_files(spec.get("files")),
                spec_dir=str(spec["dir"]) if spec.get("dir") is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # AttributeError: a mapping of the format found as another JSON value
            raise SpecError(f"{source}: the plan file is damaged ({exc}); make it again") from None


def _version_found(data: object) -> str:
    """What a refused plan holds as its format_version, with the type a plan's has when the
    value is of another (the number 1 reads as "1" on a terminal)."""
    if not isinstance(data, Mapping):
        return "the file holds no JSON section"
    if "format_version" not in data:
        return "it has no format_version"
    version = data["format_version"]
    if isinstance(version, str):
        return f"found format_version {version[:40]!r}"
    if version is None:
        found = "null"
    elif isinstance(version, bool):
        found = "true" if version else "false"
    elif isinstance(version, int | float):
        number = str(version)
        found = f"the number {number if len(number) <= 20 else number[:20] + '...'}"
    else:
        found = "a section" if isinstance(version, Mapping) else "a list"
    return f'found {found}; a plan\'s format_version is the string "{FORMAT_VERSION}"'


def _spec_files(data: object) -> dict[str, str] | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError("spec.files is not a mapping")
    return {str(name): str(digest) for name, digest in data.items()}
