"""The JSON Schema of ``sipctl audit --json`` (``AuditReport.to_json()``), format_version 1.

``audit_report_schema()`` is what ``sipctl schema`` prints for the audit report; a test
validates real reports against it, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from sipctl.reconciler.audit.report import FORMAT_VERSION, SEVERITIES

_AREAS = ["dialplan", "calls", "registration", "messages", "enumeration", "exposure", "ban"]
_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}


def audit_report_schema() -> dict[str, Any]:
    finding = {
        "type": "object",
        "additionalProperties": False,
        "required": ["code", "severity", "area", "title", "where", "fix", "sent", "got", "details"],
        "properties": {
            "code": {
                "type": "string",
                "description": "stable identifier: dialplan-pattern, dialplan-extension, "
                "dialplan-step, dialplan-include, dialplan-switch, call-rang, "
                "call-not-rejected, answered-without-wrong-call, guest-register-accepted, "
                "guest-message-accepted, enumeration-by-code, enumeration-by-timing, "
                "enumeration-by-identity, "
                "port-open, version-leak, certificate-name-mismatch, certificate-expiring, "
                "certificate-expired, ban-missing",
            },
            "severity": {"enum": list(SEVERITIES)},
            "area": {"enum": _AREAS},
            "title": {"type": "string", "description": "what a stranger can do"},
            "where": {
                "type": "string",
                "description": "the context, extension and file:line ([pbx_config]: added at "
                "runtime), or the transport, address and port",
            },
            "fix": {"type": "string", "description": "what to do about it"},
            "sent": {**_NULLABLE_STRING, "description": "the probe that proved it"},
            "got": {**_NULLABLE_STRING, "description": "what came back"},
            "details": {"type": "array", "items": {"type": "string"}},
        },
    }
    probe = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "requests", "packets"],
        "properties": {
            "kind": {
                "enum": [
                    "options",
                    "register",
                    "message",
                    "invite",
                    "identity",
                    "port",
                    "tls",
                    "ban-test",
                ]
            },
            "requests": {"type": "integer", "minimum": 0},
            "packets": {"type": "integer", "minimum": 0, "description": "messages sent"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://sipctl.invalid/schemas/audit-report-v1.json",
        "title": "sipctl audit report",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "format_version",
            "domain",
            "nameserver",
            "targets",
            "findings",
            "summary",
            "checks",
            "notes",
            "errors",
            "probes",
            "packets",
            "seconds",
            "fail_on",
            "exit_code",
        ],
        "properties": {
            "format_version": {"const": FORMAT_VERSION},
            "domain": {"type": "string"},
            "nameserver": _NULLABLE_STRING,
            "targets": {
                "type": "array",
                "items": {"type": "string"},
                "description": "SIP targets as resolved (RFC 3263), in a caller's order",
            },
            "findings": {
                "type": "array",
                "items": finding,
                "description": "ordered by severity",
            },
            "summary": {
                "type": "object",
                "additionalProperties": False,
                "required": list(SEVERITIES),
                "properties": {s: {"type": "integer", "minimum": 0} for s in SEVERITIES},
            },
            "checks": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "array", "items": {"type": "string"}},
            "errors": {
                "type": "array",
                "items": {"type": "string"},
                "description": "parts of the audit that could not run",
            },
            "probes": {"type": "array", "items": probe},
            "packets": {"type": "integer", "minimum": 0, "description": "all packets sent"},
            "seconds": {"type": "number", "minimum": 0},
            "fail_on": {
                "enum": list(SEVERITIES),
                "description": "the lowest severity that fails the audit (--fail-on)",
            },
            "exit_code": {
                "enum": [0, 1, 2],
                "description": "2 a finding at or above fail_on, 1 incomplete, else 0 (lower "
                "findings are listed but do not fail)",
            },
        },
    }
