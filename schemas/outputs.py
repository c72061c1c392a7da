"""What ``sipctl schema --output KIND`` prints: the spec's schema, its reference, or the
JSON Schema of a command's ``--json`` output."""

from __future__ import annotations

from collections.abc import Callable

from sipctl.errors import SpecError


def _spec() -> str:
    from sipctl.schemas.jsonschema import schema_text

    return schema_text()


def _reference() -> str:
    from sipctl.schemas.reference import reference_text

    return reference_text()


KINDS: dict[str, Callable[[], str]] = {"spec": _spec, "reference": _reference}


def output_text(kind: str) -> str:
    make = KINDS.get(kind)
    if make is None:
        raise SpecError(f"--output {kind!r}: choose one of {', '.join(KINDS)}")
    return make()
