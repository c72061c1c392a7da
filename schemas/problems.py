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

from sipctl.errors import SpecError

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


def validate_json(spec_file: Path, check: Callable[[], object]) -> dict[str, Any]:
    """Run ``check`` (which raises SpecError) and report its verdict as data."""
    try:
        check()
    except SpecError as exc:
        lines = exc.problems or [exc.message]
        errors = [problem_fields(line, str(spec_file)) for line in lines]
        return {"file": str(spec_file), "valid": False, "errors": errors}
    return {"file": str(spec_file), "valid": True, "errors": []}
