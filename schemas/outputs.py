"""What ``sipctl schema --output KIND`` prints: the spec's schema, its reference, or the
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

    return dump(plan_schema())


def _audit() -> str:
    from sipctl.reconciler.audit.schema import audit_report_schema
    from sipctl.schemas.jsonschema import dump

    return dump(audit_report_schema())


KINDS: dict[str, Callable[[], str]] = {
    "spec": _spec,
    "reference": _reference,
    "plan": _plan,
    "audit": _audit,
}

_TEXTS = {"type": "array", "items": {"type": "string"}}


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of ``sipctl plan --json`` and of a plan file (``--out``), format 1."""
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
                "description": "records sipctl manages there (the safety limit's base)",
            },
            "desired_kinds": {"type": "object", "additionalProperties": {"type": "integer"}},
            "changes": {"type": "array", "items": change},
            "notes": {**_TEXTS, "description": "warnings"},
            "skipped": {**_TEXTS, "description": "what could not be done or checked here"},
            "hazards": {**_TEXTS, "description": "why apply would refuse this target"},
        },
    }
    count = {"type": "integer", "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
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
                },
            },
            "layers": {**_TEXTS, "description": "the --target selection; empty: all"},
            "summary": {
                "type": "object",
                "required": ["add", "change", "destroy"],
                "properties": {"add": count, "change": count, "destroy": count},
                "description": "resources (record sets, files, chains) to add, change, destroy",
            },
            "refusals": {**_TEXTS, "description": "why apply would refuse it without --force"},
            "targets": {"type": "array", "items": target},
        },
    }


def output_text(kind: str) -> str:
    make = KINDS.get(kind)
    if make is None:
        raise SpecError(f"--output {kind!r}: choose one of {', '.join(KINDS)}")
    return make()
