"""Problems as data: ``sipctl validate --json`` for editors and CI.

Every problem line sipctl prints starts with ``file:line:col:`` (see SpecError); most go on
with the dotted key and ``:``. This module reads them back into fields, so the text and the
JSON can never say different things.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipctl.errors import SipctlError, SpecError

_PROBLEM_RE = re.compile(
    r"^(?P<file>.*?):(?P<line>[0-9]+):(?P<col>[0-9]+): "
    r"(?:(?P<key>[A-Za-z0-9_.\[\]<>*+~-]+): )?(?P<message>.*)$",
    re.S,
)


def problem_fields(text: str, default_file: str) -> dict[str, Any]:
    """``{file, line, col, key, message}`` of one problem line (key None when it has none)."""
    match = _PROBLEM_RE.match(text)
    if match is None:
        return {"file": default_file, "line": None, "col": None, "key": None, "message": text}
    return {
        "file": match["file"],
        "line": int(match["line"]),
        "col": int(match["col"]),
        "key": match["key"],
        "message": match["message"],
    }


def validate_json(
    spec_file: Path, check: Callable[[], object], warnings: list[str] | None = None
) -> dict[str, Any]:
    """Run ``check`` (which raises SpecError, and may add to ``warnings`` as it goes) and
    report its verdict as data (``sipctl schema --kind validate``)."""
    errors: list[dict[str, Any]] = []
    try:
        check()
    except SipctlError as exc:  # a spec's problems, or a refusal before them (a profile)
        lines = (exc.problems if isinstance(exc, SpecError) else []) or [exc.message]
        errors = [problem_fields(line, str(spec_file)) for line in lines]
    warned = [problem_fields(line, str(spec_file)) for line in warnings or []]
    _name_keys([*errors, *warned])
    return {"file": str(spec_file), "valid": not errors, "errors": errors, "warnings": warned}


def _name_keys(problems: list[dict[str, Any]]) -> None:
    """A problem of a rule between keys says ``file:line:col: message``, its key in words
    (``anna.petrov is neither in users ...``): its ``key`` is the key at that place of the
    file, so an editor is given the key of every problem, not of the schema's alone."""
    from sipctl.schemas.loader import MAX_SPEC_BYTES, keys_by_place

    keys: dict[str, dict[tuple[int, int], str]] = {}  # file -> its keys by place, read once
    for problem in problems:
        if problem["key"] is not None or problem["line"] is None or problem["file"] is None:
            continue
        name = problem["file"]
        if name not in keys:
            text = _spec_text(Path(name), MAX_SPEC_BYTES)
            keys[name] = keys_by_place(text) if text is not None else {}
        problem["key"] = keys[name].get((problem["line"], problem["col"]))


def _spec_text(path: Path, limit: int) -> str | None:
    """A spec file's text, read as sipctl reads a file a user names (a regular file, at most
    ``limit`` bytes), or None (gone, too large, a FIFO, not text, a link out of its
    directory where the run is strict: ``schemas/spec_links.py``)."""
    from sipctl.errors import FileTooLarge, SpecError
    from sipctl.schemas.admin_files import read_regular_file
    from sipctl.schemas.spec_links import refuse_link_out

    try:
        refuse_link_out(path)
        return read_regular_file(path, limit).decode("utf-8")
    except (OSError, FileTooLarge, UnicodeDecodeError, SpecError):
        return None


def refused_run(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The document of a run refused as a whole (a directory without a spec, a wrong command
    line), with no spec's verdict: the many-spec shape, its ``errors`` saying why."""
    return {"valid": False, "files": [], "skipped": [], "errors": errors, "warnings": []}


def validate_refusal(spec: str | None, error: str) -> dict[str, Any]:
    """``validate --json``'s document of a run that ended before it had a verdict (a usage
    error, a bug): of one spec, that spec's report with the error; else (several specs, or
    a command line too wrong to say which) the run's own error, tied to no file."""
    if spec is not None:
        return {
            "file": spec,
            "valid": False,
            "errors": [problem_fields(error, spec)],
            "warnings": [],
        }
    problem = {"file": None, "line": None, "col": None, "key": None, "message": error}
    return refused_run([problem])


def validate_schema() -> dict[str, Any]:
    """The JSON Schema of ``sipctl validate --json``: one spec's report, or (several specs,
    or a directory) the reports of all and the files skipped."""
    optional_int = {"type": ["integer", "null"]}
    problem = {
        "type": "object",
        "required": ["file", "line", "col", "key", "message"],
        "additionalProperties": False,
        "properties": {
            "file": {
                "type": ["string", "null"],
                "description": "null: the command line, not a file (exit code 1)",
            },
            "line": {**optional_int, "description": "1-based; null: not tied to a line"},
            "col": {**optional_int, "description": "1-based; null: not tied to a line"},
            "key": {"type": ["string", "null"], "description": "the dotted key, like users.x"},
            "message": {"type": "string"},
        },
    }
    problems = {"type": "array", "items": {"$ref": "#/$defs/problem"}}
    one = {
        "type": "object",
        "required": ["file", "valid", "errors", "warnings"],
        "additionalProperties": False,
        "properties": {
            "file": {"type": "string", "description": "the spec file, as given"},
            "valid": {"type": "boolean", "description": "false: exit code 1"},
            "errors": {**problems, "description": "why the spec is not valid"},
            "warnings": {**problems, "description": "allowed, but probably not what was meant"},
        },
    }
    many = {
        "type": "object",
        "required": ["valid", "files", "skipped", "errors", "warnings"],
        "additionalProperties": False,
        "properties": {
            "valid": {"type": "boolean", "description": "false (exit 1): some spec is not"},
            "files": {"type": "array", "items": {"$ref": "#/$defs/file"}},
            "skipped": {
                "type": "array",
                "description": "files of a -f directory that are no specs, and why",
                "items": {
                    "type": "object",
                    "required": ["file", "reason"],
                    "additionalProperties": False,
                    "properties": {"file": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
            "errors": {
                **problems,
                "description": "why the run itself was refused, or what two specs both claim",
            },
            "warnings": {
                **problems,
                "description": "said once for the run, not in each file's report: a hosting "
                "customers' DNS credential the runner profile binds to no zones",
            },
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sipctl validate --json",
        "description": "One spec (-f FILE): its report. Several specs or a directory: "
        "{valid, files, skipped, errors, warnings}.",
        "oneOf": [{"$ref": "#/$defs/file"}, many],
        "$defs": {"problem": problem, "file": one},
    }
