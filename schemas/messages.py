"""PyYAML's and pydantic's complaints, said in the words of a spec's author.

The loader hands every parser and validation error to one of the two functions here, so a
new kind of error is translated in one place. What the libraries say is kept as the fallback:
an untranslated message is still better than none.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

# PyYAML's problem text (start of it) -> what to do.
_YAML_PROBLEMS = (
    ("found character '\\t' that cannot start any token", "use spaces, not tabs, to indent"),
    ("found a tab character", "use spaces, not tabs, to indent"),
    (
        "mapping values are not allowed here",
        "a ':' where a value was expected: put a value that contains ': ' in quotes, or "
        "check the indentation of this line",
    ),
    ("could not find expected ':'", "a key must be followed by ':' (key: value)"),
    (
        "expected <block end>",
        "this line's indentation does not match the lines above it",
    ),
    ("found unexpected end of stream", "a quote or bracket is opened and never closed"),
    (
        "found undefined alias",
        "'*' starts a YAML alias: put a value that starts with '*' in quotes",
    ),
    ("found unknown escape character", "in double quotes '\\' starts an escape: use single quotes"),
)


def yaml_problem(problem: str | None, found: str = "") -> str:
    """What to tell the user for PyYAML's ``problem`` text; ``found`` is the character at
    the error's mark (libyaml does not name it)."""
    text = problem or "invalid YAML"
    if found == "\t":
        return "not valid YAML: use spaces, not tabs, to indent"
    for start, advice in _YAML_PROBLEMS:
        if text.startswith(start):
            return f"not valid YAML: {advice}"
    return f"not valid YAML: {text}"


def validation_message(err: Any, path: tuple[str | int, ...]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) in the user's words."""
    kind, value = err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    message = str(err["msg"])
    if message.startswith("Value error, "):
        return message[len("Value error, ") :]
    leaf = path[-1] if path else ""
    if kind == "extra_forbidden":
        return unknown_key_message(path)
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error" and path == ("version",):
        return "must be 1 (the only spec version so far)"
    if kind in ("int_type", "int_parsing", "float_type", "float_parsing") and isinstance(
        value, str
    ):
        what = "a port is" if str(leaf).endswith("port") else "this is"
        if value.strip().lstrip("-").replace(".", "", 1).isdigit():
            return f"remove the quotes: {what} a number"
        return f"{value!r} is not a number"
    if kind in ("int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_type", "float_parsing"):
        return "must be a number"
    if kind == "bool_type" or kind == "bool_parsing":
        return "must be true or false (without quotes)"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "put the value in quotes: this is text, not a number"
        return f"must be text, not {_yaml_kind(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a section (indented 'key: value' lines), not {_yaml_kind(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list ('- item' lines or [a, b]), not {_yaml_kind(value)}"
    if kind == "literal_error":
        return f"must be one of: {ctx.get('expected', '')}".replace("'", "")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("above", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("below", "lt"),
        }[kind]
        return f"must be {words[0]} {ctx.get(words[1])} (found {value})"
    return message


def _yaml_kind(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a section"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def unknown_key_message(path: tuple[str | int, ...]) -> str:
    """'unknown key' with the closest known key and the keys the section takes."""
    import difflib  # only for a spec error (start-up cost)

    key = str(path[-1]) if path else ""
    known = known_keys(path[:-1])
    if not known:
        return "unknown key"
    where = ".".join(str(p) for p in path[:-1] if isinstance(p, str)) or "the top level"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    guess = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{key}'{guess} ({where} takes: {', '.join(known)})"


def known_keys(path: tuple[str | int, ...]) -> list[str]:
    """The keys the section at ``path`` takes (empty when it is not a section)."""
    from sipctl.schemas.spec import Spec

    model: type[BaseModel] | None = Spec
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # an item of a list of sections: the same model
        info = model.model_fields.get(part)
        model = _model_of(info.annotation) if info is not None else None
    return list(model.model_fields) if model is not None else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel

    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
