"""The JSON Schema of the spec, generated from the models (committed as sipctl.schema.json).

pydantic's schema is reshaped for editors in one pass, so every model gets the same treatment:

- an optional section (``dns: Dns | None``) becomes the section's own schema with
  ``type: [object, null]`` instead of ``anyOf: [{$ref}, {type: null}]``: an editor then points
  an error at the wrong leaf key, not at the whole section ("matches none of anyOf");
- a mapping whose keys have a pattern (``users``) says so with ``propertyNames``, so a bad
  name is an error and not silently "additional";
- titles pydantic derives from field names ("Config Dir") are dropped: the description
  says what a key does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("sipctl.schema.json")
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs"})


def spec_schema() -> dict[str, Any]:
    """The spec's JSON Schema as a dict."""
    from sipctl.schemas.spec import Spec

    raw = Spec.model_json_schema(mode="validation")
    defs: dict[str, Any] = raw.pop("$defs", {})
    shaped = _Shaper(defs).shape(raw, top=True)
    used = _used_defs(shaped, defs)
    if used:
        shaped["$defs"] = {name: _Shaper(defs).shape(defs[name]) for name in sorted(used)}
    return {**shaped, "$schema": DRAFT, "title": "sipctl spec, version 1"}


def schema_text() -> str:
    return dump(spec_schema())


def dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Shaper:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def shape(self, node: Any, top: bool = False) -> Any:
        if isinstance(node, list):
            return [self.shape(item) for item in node]
        if not isinstance(node, dict):
            return node
        nullable = _nullable_member(node)
        if nullable is not None:
            node = self._merge_null(node, nullable)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and not top:
                continue
            if key in _SCHEMA_MAPS:  # name -> schema: the names are data, not keywords
                out[key] = {name: self.shape(sub) for name, sub in value.items()}
            else:
                out[key] = self.shape(value)
        patterns = out.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in out:
            ((pattern, value),) = patterns.items()
            del out["patternProperties"]
            out["propertyNames"] = {"pattern": pattern, **out.get("propertyNames", {})}
            out["additionalProperties"] = value
        return out

    def _merge_null(self, node: dict[str, Any], member: dict[str, Any]) -> dict[str, Any]:
        """``anyOf: [X, {type: null}]`` as X itself, with ``null`` added to its type."""
        if "$ref" in member:
            member = copy.deepcopy(self.defs[member["$ref"].rsplit("/", 1)[-1]])
            member.pop("title", None)
        merged = {k: v for k, v in node.items() if k != "anyOf"}
        for key, value in member.items():
            merged.setdefault(key, value)
        kind = member["type"]
        merged["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
        return merged


def _nullable_member(node: dict[str, Any]) -> dict[str, Any] | None:
    """X when ``node`` is ``anyOf: [X, {type: null}]`` and X is one typed schema or a $ref."""
    members = node.get("anyOf")
    if not isinstance(members, list) or len(members) != 2 or {"type": "null"} not in members:
        return None
    other = members[0] if members[1] == {"type": "null"} else members[1]
    if not isinstance(other, dict) or not ("$ref" in other or isinstance(other.get("type"), str)):
        return None
    return other


def _used_defs(node: Any, defs: dict[str, Any], seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                _used_defs(defs[name], defs, seen)
        for value in node.values():
            _used_defs(value, defs, seen)
    elif isinstance(node, list):
        for item in node:
            _used_defs(item, defs, seen)
    return seen
