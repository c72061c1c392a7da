"""What ``sipctl schema --kind KIND`` prints: the spec's schema, its reference, or the
JSON Schema of a command's ``--json`` output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sipctl.errors import SpecError


def _spec() -> str:
    from sipctl.schemas.jsonschema import schema_text

    return schema_text()


def _reference() -> str:
    from sipctl.schemas.reference import reference_text

    return reference_text()


def _plan() -> str:
    from sipctl.schemas.jsonschema import dump

    return dump(envelope_schema("plan", plan_schema()))


def _plan_file() -> str:
    from sipctl.schemas.jsonschema import dump

    return dump(plan_schema())


def _audit() -> str:
    from sipctl.reconciler.audit.schema import audit_report_schema
    from sipctl.schemas.jsonschema import dump

    return dump(envelope_schema("audit", audit_report_schema()))


def _drift() -> str:
    from sipctl.schemas.jsonschema import dump

    return dump(envelope_schema("drift", drift_schema()))


def _verify() -> str:
    from sipctl.schemas.jsonschema import dump

    return dump(envelope_schema("verify", verify_schema()))


def _validate() -> str:
    from sipctl.schemas.jsonschema import dump
    from sipctl.schemas.problems import validate_schema

    return dump(validate_schema())


def _commands() -> str:
    from sipctl.manual import markdown

    return markdown()


def _man() -> str:
    from sipctl.manual import man_page

    return man_page()


def _fleet_status() -> str:
    from sipctl.reconciler.fleet.status_view import status_schema
    from sipctl.schemas.jsonschema import dump

    return dump(status_schema())


def _host_profile() -> str:
    from sipctl.schemas.profiles import profile_schema_text

    return profile_schema_text("host")


def _runner_profile() -> str:
    from sipctl.schemas.profiles import profile_schema_text

    return profile_schema_text("runner")


KINDS: dict[str, Callable[[], str]] = {
    "spec": _spec,
    "reference": _reference,
    "plan": _plan,
    "plan-file": _plan_file,
    "drift": _drift,
    "verify": _verify,
    "audit": _audit,
    "validate": _validate,
    "commands": _commands,
    "man": _man,
    "fleet-status": _fleet_status,
    "host-profile": _host_profile,
    "runner-profile": _runner_profile,
}

_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
_OPTIONAL_TEXT = {"type": ["string", "null"]}
_OPTIONAL_INT = {"type": ["integer", "null"]}

_TEXTS = {"type": "array", "items": {"type": "string"}}


# What a domain's status means, per kind of report.
_STATUSES = {
    "plan": "planned, no changes, error, refused (many specs also: skipped, pending)",
    "drift": "drifted (exit 2), no drift, unrecorded (exit 1: a target has no record of a "
    "last apply); many specs also: error, refused (exit 1, 3; the domain's error says why)",
    "verify": "ok, failed (exit 1); many specs also: error, refused (exit 1, 3; the domain's "
    "error says why)",
    "audit": "clean (nothing at or above --fail-on), findings (exit 2), incomplete (exit 1)",
}


def envelope_schema(kind: str, report: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``sipctl KIND --json``: the same envelope for one spec, several
    or a directory of them, with ``report`` (one domain's report) inside."""
    from sipctl.reconciler.envelope import ENVELOPE_VERSION

    inner = {k: v for k, v in report.items() if k not in ("$schema", "$id")}
    domain = {
        "type": "object",
        "required": ["spec", "domain", "status", "error", kind],
        "additionalProperties": False,
        "properties": {
            "spec": {"type": "string", "description": "the spec file, as given"},
            "domain": {"type": "string", "description": "its domain ('?' if unreadable)"},
            "status": {"type": "string", "description": _STATUSES[kind]},
            "error": {
                **_OPTIONAL_TEXT,
                "description": "why this domain has no report, or failed (null: it did not)",
            },
            kind: {
                "anyOf": [{"$ref": f"#/$defs/{kind}"}, {"type": "null"}],
                "description": f"this domain's {kind} report (null: it failed before one)",
            },
        },
    }
    return {
        "$schema": _SCHEMA,
        "title": f"sipctl {kind} --json, envelope format {ENVELOPE_VERSION}",
        "description": "The same shape whether -f named one spec, several or a directory: "
        f"one entry per domain under 'domains', its report under '{kind}'.",
        "type": "object",
        "required": ["format_version", "kind", "domains"],
        "additionalProperties": False,
        "properties": {
            "format_version": {"const": ENVELOPE_VERSION},
            "kind": {"const": kind},
            "domains": {"type": "array", "items": domain},
            "error": {
                "type": "string",
                "description": "why a run over several specs was refused as a whole, before "
                "any domain had a report (present only then: overlapping claims, a -f "
                "directory without a spec, a held lock...); a run over one spec says why "
                "in its one domain's 'error'",
            },
            "skipped": {
                "type": "array",
                "description": "files of a -f directory that are no specs, and why (present "
                "only when there are some; a file that looks like a spec is never skipped: "
                "its errors are the run's)",
                "items": {
                    "type": "object",
                    "required": ["file", "reason"],
                    "additionalProperties": False,
                    "properties": {"file": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
        "$defs": {kind: inner},
    }


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of one domain's plan: a plan file (``plan --out``), and each
    ``plan`` inside ``sipctl plan --json``, format 1."""
    from sipctl.reconciler.plan import FORMAT_VERSION

    address = {
        "type": "object",
        "required": ["layer", "kind", "name"],
        "properties": {
            "layer": {"type": "string", "description": "dns, asterisk, firewall, fail2ban, ..."},
            "kind": {"type": "string", "description": "A, SRV, NAPTR, file, chain, ..."},
            "name": {"type": "string", "description": "the record name, file or chain"},
        },
    }
    change = {
        "type": "object",
        "required": ["address", "action", "before", "after"],
        "properties": {
            "address": address,
            "action": {"enum": ["create", "update", "delete"]},
            "before": {"description": "the live value (null: absent)"},
            "after": {"description": "the desired value (null: to be removed)"},
            "described": {
                **_TEXTS,
                "description": "the change in the spec's words: '+ user sales → 106 & 107'",
            },
        },
    }
    target = {
        "type": "object",
        "required": ["layer", "provider", "target", "fingerprint", "changes"],
        "properties": {
            "layer": {"type": "string"},
            "provider": {"type": "string"},
            "target": {"type": "string", "description": "where the layer was read"},
            "fingerprint": {
                "type": "string",
                "description": "of the live state read; apply PLAN refuses if it changed",
            },
            "managed_units": {
                "type": "integer",
                "description": "records sipctl manages there (a whole file, chain or jail "
                "counts as one): the safety limit's base",
            },
            "desired_kinds": {"type": "object", "additionalProperties": {"type": "integer"}},
            "changes": {"type": "array", "items": change},
            "notes": {**_TEXTS, "description": "warnings"},
            "skipped": {**_TEXTS, "description": "what could not be done or checked here"},
            "hazards": {**_TEXTS, "description": "why apply would refuse this target"},
            "host_hazards": {
                **_TEXTS,
                "description": "why apply refuses this target whatever --force says (only "
                "the host profile on the PBX may allow it); absent when none",
            },
            "customer": {
                "type": "string",
                "description": "a host's plan: the customer domain whose DNS records this "
                "target removes (no file declares it any more)",
            },
            "owned_by": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "records read here that are others' (a server other domains "
                "claim, which this domain starts to use): address -> their owner; left out "
                "of managed_units and of the safety limit's count here",
            },
        },
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "$schema": _SCHEMA,
        "title": f"sipctl plan, format {FORMAT_VERSION}",
        "type": "object",
        "required": ["format_version", "domain", "spec", "summary", "targets"],
        "properties": {
            "format_version": {"const": FORMAT_VERSION},
            "sipctl_version": {"type": "string"},
            "created_at": {"type": "string", "description": "ISO 8601, UTC"},
            "domain": {"type": "string"},
            "spec": {
                "type": "object",
                "required": ["source", "sha256", "text"],
                "properties": {
                    "source": {"type": "string"},
                    "sha256": {"type": "string"},
                    "text": {"type": "string", "description": "the spec the plan was made of"},
                    "files": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "a hosting file's plan only: the files beside it that "
                        "it was made with (a host's customers, a customer's host), name -> "
                        "sha256 of the text; apply refuses the plan when one changed",
                    },
                    "dir": {
                        "type": "string",
                        "description": "the absolute directory the spec's relative paths "
                        "were read against; apply refuses the plan from another directory "
                        "unless the spec file there holds the plan's text",
                    },
                },
            },
            "layers": {**_TEXTS, "description": "the --target selection; empty: all"},
            "summary": {
                "type": "object",
                "required": ["add", "change", "destroy"],
                "properties": {"add": count, "change": count, "destroy": count},
                "description": "the plan's lines to add (+), change (~) and destroy (-): "
                "the lines of 'described', as every view shows them (the safety limit "
                "counts records: managed_units)",
            },
            "refusals": {**_TEXTS, "description": "why apply would refuse it without --force"},
            "refusals_force_cannot_pass": {
                **_TEXTS,
                "description": "those of refusals that --force cannot pass either (a guest "
                "jump that can call out: only the host profile's guest_jumps allows it); "
                "absent when none",
            },
            "targets": {"type": "array", "items": target},
        },
    }


def drift_schema() -> dict[str, Any]:
    """The JSON Schema of ``sipctl drift --json``, format 1."""
    item = {
        "type": "object",
        "required": ["layer", "target", "kind", "name", "how", "live", "diff"],
        "additionalProperties": False,
        "properties": {
            "layer": {"type": "string"},
            "target": {"type": "string"},
            "kind": {"type": "string", "description": "A, SRV, NAPTR, file, chain, ..."},
            "name": {"type": "string", "description": "the record name, file or chain"},
            "how": {"enum": ["changed", "removed", "appeared"]},
            "live": {"description": "the live value now (null: gone)"},
            "diff": {**_TEXTS, "description": "unified diff lines, applied -> live"},
        },
    }
    target = {
        "type": "object",
        "required": ["layer", "target", "record", "applied_at", "by", "drift"],
        "additionalProperties": False,
        "properties": {
            "layer": {"type": "string"},
            "target": {"type": "string"},
            "record": {"type": "string", "description": "where the last apply's record lives"},
            "applied_at": {**_OPTIONAL_TEXT, "description": "ISO 8601, UTC"},
            "by": {**_OPTIONAL_TEXT, "description": "who applied"},
            "drift": {"type": "array", "items": item},
        },
    }
    return {
        "$schema": _SCHEMA,
        "title": "sipctl drift, format 1",
        "type": "object",
        "required": ["format_version", "domain", "drifted", "count", "targets", "unrecorded"],
        "additionalProperties": False,
        "properties": {
            "format_version": {"const": "1"},
            "domain": {"type": "string"},
            "drifted": {"type": "boolean", "description": "true: exit code 2"},
            "count": {"type": "integer", "minimum": 0, "description": "drifted resources"},
            "targets": {"type": "array", "items": target},
            "unrecorded": {**_TEXTS, "description": "targets with no record to compare"},
        },
    }


def verify_schema() -> dict[str, Any]:
    """The JSON Schema of ``sipctl verify --json``."""
    from sipctl.reconciler.verify.report import FORMAT_VERSION

    transport = {"enum": ["udp", "tcp", "tls"]}
    hop = {
        "type": "object",
        "required": ["transport", "source", "target", "port", "addresses"],
        "additionalProperties": False,
        "properties": {
            "transport": transport,
            "source": {"enum": ["naptr", "srv", "address"], "description": "what led here"},
            "service": {**_OPTIONAL_TEXT, "description": "the NAPTR service, e.g. SIP+D2U"},
            "naptr_order": _OPTIONAL_INT,
            "naptr_preference": _OPTIONAL_INT,
            "srv_name": _OPTIONAL_TEXT,
            "priority": _OPTIONAL_INT,
            "weight": _OPTIONAL_INT,
            "share": {
                "type": ["number", "null"],
                "description": "the share of first attempts RFC 2782 gives this target",
            },
            "target": {"type": "string"},
            "port": {"type": "integer"},
            "addresses": _TEXTS,
        },
    }
    probe = {
        "type": "object",
        "required": ["transport", "address", "port", "user", "status", "target", "role", "ok"],
        "additionalProperties": False,
        "properties": {
            "transport": transport,
            "address": {"type": "string"},
            "port": {"type": "integer"},
            "user": {"type": "string", "description": "the user part of the OPTIONS request"},
            "status": {**_OPTIONAL_INT, "description": "the SIP status (null: no answer)"},
            "reason": _OPTIONAL_TEXT,
            "rtt_ms": {"type": ["number", "null"]},
            "attempts": {"type": "integer"},
            "error": _OPTIONAL_TEXT,
            "error_kind": _OPTIONAL_TEXT,
            "server": {**_OPTIONAL_TEXT, "description": "the Server / User-Agent header"},
            "answered_from": _OPTIONAL_TEXT,
            "target": {"type": "string", "description": "the SRV target probed"},
            "role": {"enum": ["user", "canary"]},
            "expect": {**_OPTIONAL_INT, "description": "the status required (null: any final)"},
            "ok": {"type": "boolean"},
        },
    }
    defect = {
        "type": "object",
        "required": ["code", "message"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "description": "stable, e.g. naptr-missing-srv"},
            "message": {"type": "string"},
        },
    }
    wss = {
        "type": "object",
        "required": ["host", "address", "port"],
        "properties": {
            "host": {"type": "string"},
            "address": {"type": "string"},
            "port": {"type": "integer"},
            "error": _OPTIONAL_TEXT,
            "error_kind": _OPTIONAL_TEXT,
            "subprotocol": _OPTIONAL_TEXT,
            "statuses": {"type": "object"},
        },
    }
    phone = {
        "type": "object",
        "required": ["extension", "state", "why"],
        "additionalProperties": False,
        "properties": {
            "extension": {"type": "string"},
            "state": {"enum": ["rings", "unavailable", "unknown"]},
            "why": {"type": "string"},
        },
    }
    name = {
        "type": "object",
        "required": ["name", "kind", "state", "why", "phones"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["extension", "ring group", "room"]},
            "state": {
                "enum": ["rings", "unavailable", "wrong", "unknown", "open", "full", "locked"],
                "description": "what a caller gets now: a phone rings; unavailable (the "
                "unavailable sound; why: no endpoint, not registered, unreachable); wrong "
                "(not routed as declared); a room: open, full (max_members are in it) or "
                "locked (confbridge lock): a caller of a full or locked room is turned away",
            },
            "why": {"type": "string"},
            "phones": {"type": "array", "items": phone, "description": "a ring group's each"},
            "members": {
                "type": ["integer", "null"],
                "description": "a room: how many are in it now (null: could not be read)",
            },
        },
    }
    return {
        "$schema": _SCHEMA,
        "title": f"sipctl verify, format {FORMAT_VERSION}",
        "type": "object",
        "required": ["format_version", "domain", "mode", "chain", "probes", "defects", "ok"],
        "additionalProperties": False,
        "properties": {
            "format_version": {"const": FORMAT_VERSION},
            "domain": {"type": "string"},
            "nameserver": {**_OPTIONAL_TEXT, "description": "asked (null: the system resolver)"},
            "mode": {
                "enum": ["naptr", "srv", "address", "none"],
                "description": "which RFC 3263 step answered",
            },
            "chain": {"type": "array", "items": hop, "description": "the hops, in order"},
            "probes": {"type": "array", "items": probe},
            "defects": {"type": "array", "items": defect},
            "notes": _TEXTS,
            "wss": {"type": "array", "items": wss},
            "media": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "transport -> how a guest call's media travels (SRTP or not)",
            },
            "names": {
                "type": "array",
                "items": name,
                "description": "per declared name, from the live PBX (no phone rings)",
            },
            "ok": {"type": "boolean", "description": "false: exit code 1"},
        },
    }


def output_text(kind: str) -> str:
    make = KINDS.get(kind)
    if make is None:
        raise SpecError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    return make()
