"""Load a spec from YAML, keeping the file, line and column of every key and value.

libyaml (PyYAML's ``CSafeLoader``) composes the document into nodes that carry their marks;
we build the plain data from those nodes ourselves so that every path
(``("users", "director")``) keeps its position, duplicate keys are caught (plain YAML loaders
keep the last one silently), and the names under ``users`` stay exactly as written: ``0105``
is the extension "0105", not the octal number 69.

A spec arrives by pull request, so the YAML itself is hostile input. Before anything is
composed, one pass over libyaml's event stream refuses

- anchors and aliases (``&a`` / ``*a``): a spec never needs them, and a few hundred bytes of
  nested aliases expand to gigabytes ("billion laughs");
- nesting deeper than ``MAX_DEPTH`` (a spec is six levels deep at most);

and while the data is built every scalar, key or value, must obey the one rule of
``schemas/text.py`` (one line of visible text). Each refusal names ``file:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sipctl.errors import SpecError
from sipctl.schemas.messages import validation_message, yaml_problem
from sipctl.schemas.spec import UNION_TAGS, Spec
from sipctl.schemas.text import FORBIDDEN_PATTERN, describe_character, text_problem

PathKey = tuple[str | int, ...]
MAX_SPEC_BYTES = 1_000_000
# Mappings and lists inside each other; the deepest spec path today is 4 (asterisk.tls.acme.*).
MAX_DEPTH = 20
_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
# Under these sections every key is kept as the text the user wrote.
# Names and extensions are text as written ("0105" keeps its zero, "101" stays a string).
_RAW_TEXT_SECTIONS = frozenset({"users", "rooms"})
# Inside a user's long form, only these keys hold extensions; timeout stays a number.
_EXTENSION_KEYS = frozenset({"ring", "fallback"})


def _raw_text_value(path: PathKey) -> bool:
    """Whether the scalar at ``path`` is an extension: users.NAME (the short form), or
    users.NAME.ring[i] / users.NAME.fallback (the long form)."""
    if not path or path[0] != "users":
        return False
    return len(path) == 2 or (len(path) > 2 and path[2] in _EXTENSION_KEYS)


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    spec: Spec
    source: str  # the file name as the user gave it, for messages
    base_dir: Path  # relative paths in the spec are relative to this directory
    text: str
    positions: dict[PathKey, Position] = field(default_factory=dict, compare=False)

    def where(self, path: PathKey) -> str:
        """``file:line:col`` of the deepest known part of ``path``."""
        return _where(self.source, self.positions, path)

    def resolve_path(self, value: str) -> Path:
        """A local path from the spec: ``~`` expanded, relative to the spec's directory."""
        expanded = Path(value).expanduser()
        return expanded if expanded.is_absolute() else self.base_dir / expanded


def _where(source: str, positions: dict[PathKey, Position], path: PathKey) -> str:
    for end in range(len(path), -1, -1):
        pos = positions.get(tuple(path[:end]))
        if pos is not None:
            return f"{source}:{pos.line}:{pos.column}"
    return f"{source}:1:1"


class _Builder:
    def __init__(self) -> None:
        self.positions: dict[PathKey, Position] = {}
        self.problems: list[str] = []
        self._loader = yaml.CSafeLoader("")

    def build(self, node: yaml.Node, path: PathKey, source: str) -> Any:
        self.positions.setdefault(
            path, Position(node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, source)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), source) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if FORBIDDEN_PATTERN.search(node.value) is not None:
            self._check_text(node, _dotted(path), source)
        if _raw_text_value(path) and node.tag != "tag:yaml.org,2002:null":
            return str(node.value)
        return self._loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey, source: str) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                mark = key_node.start_mark
                self.problems.append(
                    f"{source}:{mark.line + 1}:{mark.column + 1}: a key must be a plain name"
                )
                continue
            if FORBIDDEN_PATTERN.search(key_node.value) is not None:
                self._check_text(key_node, f"{_dotted(path)}: a key", source)
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                mark = key_node.start_mark
                self.problems.append(
                    f"{source}:{mark.line + 1}:{mark.column + 1}: "
                    "YAML merge keys (<<) are not supported"
                )
                continue
            key: Any = (
                key_node.value
                if path == () or path[0] in _RAW_TEXT_SECTIONS
                else (self._loader.construct_object(key_node))
            )
            if not isinstance(key, str):
                key = str(key_node.value)
            child = (*path, key)
            mark = key_node.start_mark
            if key in result:
                self.problems.append(
                    f"{source}:{mark.line + 1}:{mark.column + 1}: {_dotted(child)}: "
                    "this key is given twice; keep one"
                )
                continue
            self.positions[child] = Position(mark.line + 1, mark.column + 1)
            result[key] = self.build(value_node, child, source)
        return result

    def _check_text(self, node: yaml.ScalarNode, what: str, source: str) -> bool:
        """The one rule of schemas/text.py; False (and a problem noted) when it is broken."""
        problem = text_problem(str(node.value))
        if problem is None:
            return True
        mark = node.start_mark
        self.problems.append(f"{source}:{mark.line + 1}:{mark.column + 1}: {what} {problem}")
        return False


def _refuse_unsafe_structure(text: str, source: str) -> None:
    """One pass over libyaml's events: no anchor, no alias, no nesting beyond MAX_DEPTH.

    Runs before anything is composed, so an alias bomb or a megabyte of brackets is refused
    after reading only as far as its first anchor or its MAX_DEPTH-th level.
    """
    parser = yaml.CSafeLoader(text)
    depth = 0
    try:
        while parser.check_event():
            event = parser.get_event()
            mark = event.start_mark if event is not None else None
            if event is None or mark is None:
                continue
            where = f"{source}:{mark.line + 1}:{mark.column + 1}"
            if isinstance(event, yaml.AliasEvent):
                raise SpecError(
                    f"{where}: YAML aliases (*{event.anchor}) are not allowed in a spec: "
                    "write the value out where it is needed"
                )
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                raise SpecError(
                    f"{where}: YAML anchors (&{anchor}) are not allowed in a spec: "
                    "write the value out where it is needed"
                )
            if isinstance(event, _COLLECTION_START):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError(
                        f"{where}: the spec is nested more than {MAX_DEPTH} levels deep; "
                        "no spec key is that deep (check the indentation and brackets)"
                    )
            elif isinstance(event, _COLLECTION_END):
                depth -= 1
    finally:
        parser.dispose()


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            shown = part if part.isprintable() and part else repr(part)
            out += ("." if out else "") + shown
    return out or "(top level)"


def _format_validation_error(
    exc: ValidationError, source: str, positions: dict[PathKey, Position]
) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        # pydantic adds the name of a union member or a validator to loc; keep the data path.
        loc: list[str | int] = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        if len(loc) > 2 and loc[0] == "users" and loc[2] in UNION_TAGS:
            del loc[2]  # the form of a user (users.NAME.<form>.ring), not a key of the spec
        path: PathKey = tuple(loc)
        message = validation_message(err, path)
        lines.append(f"{_where(source, positions, path)}: {_dotted(path)}: {message}")
    return lines


def _reader_error(text: str, source: str, exc: yaml.reader.ReaderError) -> str:
    """libyaml refused a character of the text itself (a raw control character)."""
    offset = exc.position if 0 <= exc.position <= len(text) else 0
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    char = exc.character
    shown = describe_character(chr(char) if isinstance(char, int) else str(char)[:1] or "?")
    return (
        f"{source}:{line}:{column}: not valid YAML: {shown} may not appear in a spec; "
        "spec values must be one line of visible text"
    )


def load_spec_text(text: str, source: str = "<spec>", base_dir: Path | None = None) -> LoadedSpec:
    """Parse and validate spec text; raise SpecError with one line per problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: the spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        _refuse_unsafe_structure(text, source)
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        lines = text.splitlines()
        found = ""
        if mark is not None and mark.line < len(lines):
            found = lines[mark.line][mark.column : mark.column + 1]
        raise SpecError(f"{where}: {yaml_problem(exc.problem, found)}") from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(_reader_error(text, source, exc)) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SpecError(f"{source}: not valid YAML: {type(exc).__name__}") from None
    if node is None:
        raise SpecError(f"{source}: the spec is empty; start with 'version: 1' and 'domain: ...'")
    builder = _Builder()
    try:
        data = builder.build(node, (), source)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise SpecError(f"{source}: not a valid spec: {exc}") from None
    if builder.problems:
        raise SpecError(builder.problems[0], builder.problems)
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1:1: the spec must be a mapping with 'version' and 'domain'")
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems = _format_validation_error(exc, source, builder.positions)
        raise SpecError(
            problems[0] if len(problems) == 1 else f"{source}: {len(problems)} problems",
            problems,
            hint=REFERENCE_HINT,
        ) from None
    return LoadedSpec(
        spec=spec,
        source=source,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
        text=text,
        positions=builder.positions,
    )


# Where a user finds every key: printed by the installed sipctl itself, so it is there
# wherever sipctl is (docs/spec.md is the same text in sipctl's source).
REFERENCE_HINT = (
    "every key, its type, default and an example: sipctl schema --output reference "
    "(docs/spec.md in sipctl's source)"
)


def load_spec(path: Path | str) -> LoadedSpec:
    """Read and validate a spec file."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise SpecError(
            f"{file}: no such spec file (give one with -f, or create sipctl.yaml here)"
        ) from None
    except OSError as exc:
        raise SpecError(f"{file}: cannot read the spec: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{file}: the spec is not UTF-8 text (byte {exc.start})") from None
    return load_spec_text(text, source=str(file), base_dir=file.resolve().parent)
