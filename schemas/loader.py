"""Load a spec from YAML, keeping the file, line and column of every key and value.

PyYAML composes the document into nodes that carry their marks; we build the plain data
from those nodes ourselves so that every path (``("users", "director")``) keeps its position,
duplicate keys are caught (plain YAML loaders keep the last one silently), and the names
under ``users`` stay exactly as written: ``0105`` is the extension "0105", not the octal
number 69.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sipctl.errors import SpecError
from sipctl.schemas.spec import UNION_TAGS, Spec

PathKey = tuple[str | int, ...]
MAX_SPEC_BYTES = 1_000_000
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
        self._loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: PathKey, source: str) -> Any:
        self.positions.setdefault(
            path, Position(node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, source)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), source) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
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
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and its section in DESIGN.md)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "literal_error" and path == ("version",):
            message = "must be 1 (the only spec version so far)"
        lines.append(f"{_where(source, positions, path)}: {_dotted(path)}: {message}")
    return lines


def load_spec_text(text: str, source: str = "<spec>", base_dir: Path | None = None) -> LoadedSpec:
    """Parse and validate spec text; raise SpecError with one line per problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: the spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or "invalid YAML"
        raise SpecError(f"{where}: not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(
            f"{source}: not valid YAML: character {exc.character!r} at offset {exc.position} "
            "is not allowed in YAML text"
        ) from None
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
            problems[0] if len(problems) == 1 else f"{source}: {len(problems)} problems", problems
        ) from None
    return LoadedSpec(
        spec=spec,
        source=source,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
        text=text,
        positions=builder.positions,
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
