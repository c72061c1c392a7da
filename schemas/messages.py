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
        # "... here" (PyYAML), "... in this context" (libyaml): 'users: director: 105'
        "mapping values are not allowed",
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
    (
        "but found another document",
        "the file holds one YAML document, and a second begins on this line (a second "
        "'---'): split them into two files, one spec (or profile) each",
    ),
    ("found unknown escape character", "in double quotes '\\' starts an escape: use single quotes"),
)


# libyaml (and PyYAML) take a key written ``key: value`` only when its ':' comes at most
# 1,024 characters after the key's start (YAML 1.1's limit on an implicit key).
LONGEST_YAML_KEY = 1024


def yaml_problem(problem: str | None, found: str = "", before: str = "") -> str:
    """What to tell the user for PyYAML's ``problem`` text; ``found`` is the character at
    the error's mark (libyaml does not name it), ``before`` the text of its line before
    the mark."""
    text = problem or "invalid YAML"
    if found == "\t":
        return "not valid YAML: use spaces, not tabs, to indent"
    key = before.lstrip(" -?").strip("\"'")
    if found == ":" and len(key) > LONGEST_YAML_KEY and text.startswith(_KEY_TOO_LONG_SAYS):
        return (
            f"not valid YAML: this key is {len(key):,} characters long, and YAML reads a "
            f"'key: value' line only when the key has at most {LONGEST_YAML_KEY:,}; no key "
            "of a spec is that long (a name: at most 79 characters): shorten it"
        )
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
        if isinstance(value, str) and value.strip() == "1":
            return "remove the quotes: version is the number 1"
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
        return bool_problem(value)
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


# What libyaml says, at the ':', of a key longer than LONGEST_YAML_KEY: the key it began
# was dropped, so the ':' is found where no key is.
_KEY_TOO_LONG_SAYS = ("could not find expected ':'", "mapping values are not allowed")


def bool_problem(value: object) -> str:
    """A flag's value that is not true or false, said as YAML made it: the number 1, the
    text 'maybe', nothing. "Remove the quotes" only where the quotes are the mistake: text
    that YAML reads as true or false when written without them ('yes', "false")."""
    if isinstance(value, str):
        import yaml

        plain = yaml.CSafeLoader("").resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
        if plain == "tag:yaml.org,2002:bool":
            return (
                f"remove the quotes: must be true or false, and {value!r} in quotes is text to YAML"
            )
        return f"must be true or false, not the text {value!r}"
    if value is None:
        return "must be true or false; the key has no value"
    if isinstance(value, int | float):
        import math

        number = repr(value)
        if isinstance(value, float) and not math.isfinite(value):  # as YAML spells them
            number = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        return f"must be true or false, not the number {number}"
    import datetime

    if isinstance(value, datetime.date):
        return f"must be true or false, not the date {value.isoformat()}"
    return f"must be true or false, not {_yaml_kind(value)}"


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


def unknown_key_message(path: tuple[str | int, ...], root: type[BaseModel] | None = None) -> str:
    """'unknown key' with the closest key of its section, or where in the spec the key
    belongs when it is a key of another section, and the keys its section takes. ``root``:
    the model of another file than the spec (a profile, the fleet configuration)."""
    import difflib  # only for a spec error (start-up cost)

    key = str(path[-1]) if path else ""
    known = known_keys(path[:-1], root)
    if not known:
        return "unknown key"
    where = _dotted_section(path[:-1])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        guess = f"; did you mean '{close[0]}'?"
    elif root is not None:
        guess = ""
    else:
        elsewhere = key_locations().get(key, [])
        shown = ", ".join(elsewhere[:3]) + (", ..." if len(elsewhere) > 3 else "")
        guess = f"; '{key}' belongs at {shown}" if elsewhere else ""
    return f"unknown key '{key}'{guess} ({where} takes: {', '.join(known)})"


def _dotted_section(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path if isinstance(p, str)) or "the top level"


def known_keys(path: tuple[str | int, ...], root: type[BaseModel] | None = None) -> list[str]:
    """The keys the section at ``path`` takes (empty when it is not a section). ``path`` is
    a data path: a user's or room's name, a list's index step into the value they hold.
    ``root``: the file's model, the spec's when None."""
    from sipctl.schemas.spec import Spec

    annotation: Any = Spec if root is None else root
    for part in path:
        annotation = _child(annotation, part)
        if annotation is None:
            return []
    model = _model_of(annotation)
    return _keys(model) if model is not None else []


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def key_locations() -> dict[str, list[str]]:
    """Every key of the spec -> where it is valid, as dotted paths (``asterisk.video``,
    ``rooms.<name>.max_members``, ``servers[].host``), from the spec's models."""
    global _LOCATIONS
    if _LOCATIONS is None:
        from sipctl.schemas.spec import Spec

        found: dict[str, list[str]] = {}
        _walk(Spec, "", found, 0)
        _LOCATIONS = found
    return _LOCATIONS


_LOCATIONS: dict[str, list[str]] | None = None


def _walk(model: type[BaseModel], prefix: str, found: dict[str, list[str]], depth: int) -> None:
    if depth > 8:  # the spec's sections do not nest deeper; a guard against a cycle
        return
    for name, info in model.model_fields.items():
        key = info.alias or name
        dotted = f"{prefix}{key}"
        found.setdefault(key, []).append(dotted)
        for arm in _arms(info.annotation):
            step, inner = _container(arm)
            target = _model_of(inner)
            if target is not None and (step or inspect.isclass(inner)):
                _walk(target, f"{dotted}{step}.", found, depth + 1)


def _container(arm: Any) -> tuple[str, Any]:
    """How a path steps into ``arm``'s value: a mapping by a name, a list by an index."""
    from typing import get_args, get_origin

    origin = get_origin(arm)
    if origin is dict:
        return ".<name>", get_args(arm)[1]
    if origin in (tuple, list):
        return "[]", get_args(arm)[0]
    return "", arm


def _child(annotation: Any, part: str | int) -> Any:
    """The type of the value at ``part`` inside a value of type ``annotation`` (None: no
    such key)."""
    from pydantic import BaseModel

    for arm in _arms(annotation):
        step, inner = _container(arm)
        if step == "[]" and isinstance(part, int):
            return inner
        if step == ".<name>" and isinstance(part, str):
            return inner
        if not step and inspect.isclass(arm) and issubclass(arm, BaseModel):
            for name, info in arm.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
    return None


def _arms(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have: Annotated unwrapped, unions split,
    None left out."""
    import types
    from typing import Annotated, Union, get_args, get_origin

    origin = get_origin(annotation)
    if origin is Annotated:
        return _arms(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [arm for arg in get_args(annotation) for arm in _arms(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel

    for arm in _arms(annotation):
        if inspect.isclass(arm) and issubclass(arm, BaseModel):
            return arm
    return None
