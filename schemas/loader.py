"""Load a spec from YAML, keeping the file, line and column of every key and value.

The plain data is built straight from libyaml's event stream (PyYAML's ``CSafeLoader``),
in one pass, so that every path (``("users", "director")``) keeps its position, duplicate
keys are caught (plain YAML loaders keep the last one silently), and the names under
``users`` stay exactly as written: ``0105`` is the extension "0105", not the octal number 69.
Scalars get the tags and values libyaml's own composer and PyYAML's safe constructor give.

A spec arrives by pull request, so the YAML itself is hostile input. The pass refuses, as
it meets them and before anything is built from them,

- anchors and aliases (``&a`` / ``*a``): a spec never needs them, and a few hundred bytes of
  nested aliases expand to gigabytes ("billion laughs"); no alias is ever expanded;
- nesting deeper than ``MAX_DEPTH`` (a spec is six levels deep at most);

and every scalar, key or value, must obey the one rule of ``schemas/text.py`` (one line of
visible text). Each refusal names ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sipctl.errors import SpecError
from sipctl.output import masked_passwords, with_values_masked
from sipctl.schemas.messages import validation_message, yaml_problem
from sipctl.schemas.spec_rules import KeyProblem
from sipctl.schemas.text import FORBIDDEN_PATTERN, describe_character, text_problem
from sipctl.schemas.values import UNION_TAGS

if TYPE_CHECKING:
    from pydantic import ValidationError

    from sipctl.schemas.spec import Spec

PathKey = tuple[str | int, ...]
MAX_SPEC_BYTES = 1_000_000
# Mappings and lists inside each other; the deepest spec path today is 4 (asterisk.tls.acme.*).
MAX_DEPTH = 20
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


@dataclass(frozen=True, slots=True)  # slots: one per key and value, 100,000 at 50,000 users
class Position:
    line: int  # 1-based
    column: int  # 1-based


def _in_raw_section(path: PathKey) -> bool:
    """Whether ``path`` lies inside users or rooms (users.NAME and below): the bulk of a
    large spec, whose positions are found only when one of them is asked for."""
    return len(path) > 1 and path[0] in _RAW_TEXT_SECTIONS


class SpecPositions:
    """Where each key and value of a spec stands (its path -> line and column).

    Loading records the positions outside users and rooms (a few dozen); those inside them
    (two per user, 100,000 at 50,000 users) are needed only for a message about one of them,
    so the first question about such a path reads the text again, recording every position
    (the same pass, see _Builder).
    """

    def __init__(self, known: dict[PathKey, Position] | None, text: str | None = None) -> None:
        self._known = known  # None: none recorded yet (a spec loaded the plain way)
        self._text = text  # None: ``known`` is complete

    def get(self, path: PathKey) -> Position | None:
        return self._recorded(path).get(path)

    def keys_under(self, path: PathKey) -> list[str]:
        """The keys of the mapping at ``path`` as the text spells them (the model may hold
        them otherwise: a domain lower-cased, its trailing dot removed)."""
        depth = len(path)
        keys: list[str] = []
        for key in self._recorded(path):
            name = key[depth] if len(key) == depth + 1 and key[:depth] == path else None
            if isinstance(name, str):
                keys.append(name)
        return keys

    def _recorded(self, path: PathKey) -> dict[PathKey, Position]:
        if self._text is not None and (self._known is None or _in_raw_section(path)):
            self._known = _all_positions(self._text)
            self._text = None
        return self._known if self._known is not None else {}


def keys_by_place(text: str) -> dict[tuple[int, int], str]:
    """(line, column) -> the dotted key (``webrtc.page.names[0]``) that stands there in a
    spec's text, the deepest where several do; empty when the text does not parse. A
    problem of a rule between keys names its place, not its key: this finds the key
    (validate --json)."""
    try:
        positions = _all_positions(text)
    except Exception:  # a text that does not parse has no keys to name
        return {}
    found: dict[tuple[int, int], PathKey] = {}
    for path, at in positions.items():
        place = (at.line, at.column)
        if len(path) > len(found.get(place, ())):
            found[place] = path
    return {place: _dotted(path) for place, path in found.items()}


def _all_positions(text: str) -> dict[PathKey, Position]:
    """Every position of ``text``, a spec that loaded (so it parses)."""
    builder = _Builder("<spec>", every_position=True)
    builder.document(text)
    return builder.positions


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and where it came from."""

    spec: Spec
    source: str  # the file name as the user gave it, for messages
    base_dir: Path  # relative paths in the spec are relative to this directory
    text: str
    positions: SpecPositions = field(default_factory=lambda: SpecPositions({}), compare=False)
    # The files beside it that a hosting file was composed with (a host's customers, a
    # customer's host): file name -> digest of its text (``hosting.file_digest``). None for
    # one company's spec, which is its own text alone.
    composed: dict[str, str] | None = field(default=None, compare=False)

    def where(self, path: PathKey) -> str:
        """``file:line:col`` of the deepest known part of ``path``."""
        return _where(self.source, self.positions, path)

    def resolve_path(self, value: str) -> Path:
        """A local path from the spec: ``~`` expanded, relative to the spec's directory."""
        expanded = Path(value).expanduser()
        return expanded if expanded.is_absolute() else self.base_dir / expanded


def _where(source: str, positions: SpecPositions, path: PathKey) -> str:
    for end in range(len(path), -1, -1):
        pos = positions.get(tuple(path[:end]))
        if pos is not None:
            return f"{source}:{pos.line}:{pos.column}"
    return f"{source}:1:1"


_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NO_DOCUMENT = object()


class _Builder:
    """The plain data of a spec, built straight from libyaml's events in one pass.

    The pass refuses anchors, aliases and nesting beyond MAX_DEPTH as it meets them (an
    alias is never expanded), records where keys and values stand, and notes the problems
    of keys and text. A value that cannot be constructed (an unknown ``!tag``) is reported
    only once the whole text has parsed, as it was when the document was first composed into
    nodes and then built: a YAML syntax error anywhere comes first.

    Positions inside users and rooms are recorded only with ``every_position`` (see
    SpecPositions); without it, the entries of users (the bulk of a large spec) are read in
    a short loop of their own whenever both sides are plain text (see _users). Every
    entry either loop takes gives the same data, problems and verdicts in both (proved over
    thousands of texts, hostile ones included, in tests/test_spec_loader.py).
    """

    def __init__(self, source: str, *, every_position: bool = False) -> None:
        self.source = source
        self.positions: dict[PathKey, Position] = {}
        self.problems: list[str] = []
        self.failure: Exception | None = None
        self.failure_at = ""  # "file:line:col: key" of the value that could not be made
        self._loader = yaml.CSafeLoader("")  # its resolver and constructor
        self._every_position = every_position
        # First characters of plain scalars that may resolve to a merge key or to null (as
        # the resolver picks its candidates); None when a resolver matches any first one.
        self._merge_starts = _starts_resolving_to(_MERGE_TAG)
        self._null_starts = _starts_resolving_to(_NULL_TAG)

    def document(self, text: str) -> Any:
        """The data of the only document of ``text``; _NO_DOCUMENT for an empty stream."""
        parser: Any = yaml.CSafeLoader(text)
        try:
            parser.get_event()  # stream start
            if parser.check_event(yaml.StreamEndEvent):
                return _NO_DOCUMENT
            start = parser.get_event()
            data = self._node(parser, parser.get_event(), (), 0, build=True)
            parser.get_event()  # document end
            if not parser.check_event(yaml.StreamEndEvent):
                another = parser.get_event()
                while not parser.check_event(yaml.StreamEndEvent):  # checked all the same
                    event = parser.get_event()
                    if not isinstance(event, yaml.DocumentStartEvent | yaml.DocumentEndEvent):
                        self._node(parser, event, (), 0, build=False)
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream",
                    start.start_mark,
                    "but found another document",
                    another.start_mark,
                )
            return data
        finally:
            parser.dispose()

    def _records(self, path: PathKey) -> bool:
        return self._every_position or not _in_raw_section(path)

    def _node(self, parser: Any, event: Any, path: PathKey, depth: int, *, build: bool) -> Any:
        """The value that starts with ``event`` (read to its end). Without ``build``, the
        events are only read and checked: a value under a key that is refused."""
        self._refuse_references(event)
        mark = event.start_mark
        if build and path not in self.positions and self._records(path):
            self.positions[path] = Position(mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event, path) if build else None
        if depth + 1 > MAX_DEPTH:
            raise SpecError(
                f"{self._at(mark)}: the spec is nested more than {MAX_DEPTH} levels deep; "
                "no spec key is that deep (check the indentation and brackets)"
            )
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not parser.check_event(yaml.SequenceEndEvent):
                child = (*path, len(items))
                items.append(self._node(parser, parser.get_event(), child, depth + 1, build=build))
            parser.get_event()
            return items if build else None
        if path == ("users",) and build and not self._every_position:
            return self._users(parser, depth + 1)
        return self._mapping(parser, path, depth + 1, build=build)

    def _users(self, parser: Any, depth: int) -> dict[Any, Any]:
        """The users mapping, as _mapping builds it (no position recorded: see the class).

        An entry is taken here when its name and its extension are both plain text, whatever
        else the general way checks: scalars without anchor or tag, with no character the
        text rule looks at, and whose first character cannot make the resolver give a merge
        key (the name) or null (the extension); a quoted scalar resolves to neither. Any other
        entry (a long form, a tag, an anchor, a character to check, a duplicate) goes the
        general way (_entry), which takes it from where this loop left it.
        """
        result: dict[Any, Any] = {}
        merge, null = self._merge_starts, self._null_starts
        if merge is None or null is None:  # a resolver for any first character: no shortcut
            return self._mapping(parser, ("users",), depth, build=True)  # type: ignore[no-any-return]
        scalar, end, search = yaml.ScalarEvent, yaml.MappingEndEvent, FORBIDDEN_PATTERN.search
        get = parser.get_event
        while True:
            key_event = get()
            kind = type(key_event)
            if kind is end:
                return result
            value_event = None
            if kind is scalar and key_event.anchor is None and key_event.tag is None:
                key = key_event.value
                if (
                    search(key) is None
                    and (not key_event.implicit[0] or key[:1] not in merge)
                    and key not in result
                ):
                    value_event = get()
                    if (
                        type(value_event) is scalar
                        and value_event.anchor is None
                        and value_event.tag is None
                    ):
                        value = value_event.value
                        if search(value) is None and (
                            not value_event.implicit[0] or value[:1] not in null
                        ):
                            result[key] = value
                            continue
            self._entry(parser, key_event, value_event, ("users",), depth, result)

    def _mapping(self, parser: Any, path: PathKey, depth: int, *, build: bool) -> Any:
        result: dict[Any, Any] = {}
        while not parser.check_event(yaml.MappingEndEvent):
            self._entry(parser, parser.get_event(), None, path, depth, result if build else None)
        parser.get_event()
        return result if build else None

    def _entry(
        self,
        parser: Any,
        key_event: Any,
        value_event: Any,
        path: PathKey,
        depth: int,
        result: dict[Any, Any] | None,
    ) -> None:
        """One key and its value into ``result`` (None: only read and checked).
        ``value_event``: the value's first event when it was already taken from the parser."""
        build = result is not None
        key = self._key(parser, key_event, path, depth) if result is not None else None
        if value_event is None:
            value_event = parser.get_event()
        if key is None:  # refused (or only checking): its value is read, not built
            self._node(parser, value_event, path, depth, build=False)
            return
        assert result is not None
        child = (*path, key)
        mark = key_event.start_mark
        if key in result:
            self.problems.append(
                f"{self._at(mark)}: {_dotted(child)}: this key is given twice; keep one"
            )
            self._node(parser, value_event, child, depth, build=False)
            return
        if self._records(child):
            self.positions[child] = Position(mark.line + 1, mark.column + 1)
        result[key] = self._node(parser, value_event, child, depth, build=build)

    def _refuse_references(self, event: Any) -> None:
        """No anchor, no alias: a spec never needs them, and a few hundred bytes of nested
        aliases expand to gigabytes ("billion laughs")."""
        if isinstance(event, yaml.AliasEvent):
            raise SpecError(
                f"{self._at(event.start_mark)}: YAML aliases (*{event.anchor}) are not allowed "
                "in a spec: write the value out where it is needed"
            )
        if event.anchor is not None:
            raise SpecError(
                f"{self._at(event.start_mark)}: YAML anchors (&{event.anchor}) are not allowed "
                "in a spec: write the value out where it is needed"
            )

    def _key(self, parser: Any, event: Any, path: PathKey, depth: int) -> str | None:
        """The key that ``event`` starts, or None (a problem noted) when it is refused."""
        if not isinstance(event, yaml.ScalarEvent):
            self._node(parser, event, path, depth, build=False)
            mark = event.start_mark
            self.problems.append(f"{self._at(mark)}: a key must be a plain name")
            return None
        self._refuse_references(event)
        if FORBIDDEN_PATTERN.search(event.value) is not None:
            self._check_text(event, f"{_dotted(path)}: a key")
            return None
        tag = self._tag(event)
        if tag == _MERGE_TAG:
            mark = event.start_mark
            self.problems.append(f"{self._at(mark)}: YAML merge keys (<<) are not supported")
            return None
        if path == () or path[0] in _RAW_TEXT_SECTIONS:
            return str(event.value)
        key = self._construct(event, tag, path)
        return key if isinstance(key, str) else str(event.value)

    def _scalar(self, event: Any, path: PathKey) -> Any:
        if FORBIDDEN_PATTERN.search(event.value) is not None:
            self._check_text(event, _dotted(path))
        tag = self._tag(event)
        if tag != _NULL_TAG and _raw_text_value(path):
            return str(event.value)
        return self._construct(event, tag, path)

    def _tag(self, event: Any) -> str:
        """A scalar's tag, resolved as libyaml's composer resolves it."""
        tag: str | None = event.tag
        if tag is None or tag == "!":
            return self._loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call,no-any-return]
        return tag

    def _construct(self, event: Any, tag: str, path: PathKey) -> Any:
        """The value of the scalar (the node the composer makes of it, constructed); a value
        that cannot be made is remembered (the first one)."""
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self._loader.construct_object(node, deep=True)
        except Exception as exc:  # reported after the whole text parsed (see the class)
            if self.failure is None:
                self.failure = _number_too_long(exc, event.value)
                self.failure_at = f"{self._at(event.start_mark)}: {_dotted(path)}"
            return None

    def _check_text(self, event: Any, what: str) -> None:
        """The one rule of schemas/text.py; a problem noted when it is broken."""
        problem = text_problem(str(event.value))
        if problem is not None:
            self.problems.append(f"{self._at(event.start_mark)}: {what} {problem}")

    def _at(self, mark: Any) -> str:
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"


def _number_too_long(exc: Exception, text: str) -> Exception:
    """Python's refusal of a number of more than 4,300 digits, said for a spec's author (it
    would tell them to call sys.set_int_max_str_digits)."""
    if isinstance(exc, ValueError) and "sys.set_int_max_str_digits" in str(exc):
        digits = sum(c.isdigit() for c in text)
        return ValueError(f"a number of {digits:,} digits; no key of a spec takes one that long")
    return exc


@cache  # the resolvers are PyYAML's, fixed once imported: once per process
def _starts_resolving_to(tag: str) -> frozenset[str] | None:
    """The first characters under which the resolver may give a plain scalar ``tag``
    (``""`` for the empty scalar); None when some resolver takes any first character."""
    resolvers: dict[Any, list[tuple[str, Any]]] = yaml.CSafeLoader.yaml_implicit_resolvers
    if resolvers.get(None):
        return None
    return frozenset(first for first, pairs in resolvers.items() if any(t == tag for t, _ in pairs))


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
    exc: ValidationError, source: str, positions: SpecPositions
) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        # pydantic adds the name of a union member or a validator to loc; keep the data path.
        loc: list[str | int] = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
        if len(loc) > 2 and loc[0] == "users" and loc[2] in UNION_TAGS:
            del loc[2]  # the form of a user (users.NAME.<form>.ring), not a key of the spec
        path: PathKey = tuple(loc)
        refusal = (err.get("ctx") or {}).get("error")
        if isinstance(refusal, KeyProblem):  # a rule about one key: say where that key is
            path += refusal.key
        message = validation_message(err, path)
        line = f"{_where(source, positions, path)}: {_dotted(path)}: {message}"
        # the refused value (and a key of the path) quoted back: its URL password masked
        # here, where the value's end is known, not guessed in the text by the output scrub,
        # and a long value cut to its beginning and length
        lines.append(with_values_masked(line, err.get("input"), path))
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


# A spec holding none of these characters has no anchor, alias, tag or merge key: the plain
# way (``_plain_document``) may read it.
_PLAIN_WAY_REFUSES = re.compile(r"[&*!]|<<")


def _plain_document(text: str) -> Any:
    """The data of ``text`` when it is a plain spec, else None (the caller then reads it the
    marked way, ``_Builder``, which has the words for whatever is wrong).

    Plain: one document, a mapping, no anchor, alias, tag or merge key, no duplicate key,
    no character the text rule looks at, no value the constructor refuses, nested less than
    MAX_DEPTH. libyaml composes it (in C, no event reaches Python) and PyYAML's resolver
    and safe constructor make its scalars, as they do for ``_Builder``; no position is
    recorded (``SpecPositions`` finds them when a message needs one). For such a text the
    data is exactly ``_Builder``'s (proved over the loader's corpus of hostile texts in
    tests/test_spec_loader.py): a spec that is fine costs half the parse."""
    if _PLAIN_WAY_REFUSES.search(text) is not None:
        return None
    loader = yaml.CSafeLoader(text)
    try:
        root = loader.get_single_node()
        if not isinstance(root, yaml.MappingNode):
            return None
        return _plain_mapping(loader, root, (), 1)
    except Exception:  # _NotPlain, or anything the marked way is to word
        return None
    finally:
        loader.dispose()


class _NotPlain(Exception):
    """The text is to be read the marked way."""


_STR_TAG = "tag:yaml.org,2002:str"


def _plain_mapping(loader: Any, node: Any, path: PathKey, depth: int) -> dict[Any, Any]:
    if depth >= MAX_DEPTH:
        raise _NotPlain
    raw_keys = path == () or path[0] in _RAW_TEXT_SECTIONS
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if type(key_node) is not yaml.ScalarNode:
            raise _NotPlain
        text = key_node.value
        if FORBIDDEN_PATTERN.search(text) is not None:
            raise _NotPlain
        if raw_keys or key_node.tag == _STR_TAG:
            key = text
        else:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(text)
        if key in result:
            raise _NotPlain
        result[key] = _plain_value(loader, value_node, (*path, key), depth)
    return result


def _plain_value(loader: Any, node: Any, path: PathKey, depth: int) -> Any:
    kind = type(node)
    if kind is yaml.ScalarNode:
        value = node.value
        if FORBIDDEN_PATTERN.search(value) is not None:
            raise _NotPlain
        tag = node.tag
        if tag == _STR_TAG or (tag != _NULL_TAG and _raw_text_value(path)):
            return str(value)
        return loader.construct_object(node, deep=True)
    if kind is yaml.MappingNode:
        return _plain_mapping(loader, node, path, depth + 1)
    if kind is yaml.SequenceNode:
        if depth + 1 >= MAX_DEPTH:
            raise _NotPlain
        return [
            _plain_value(loader, item, (*path, i), depth + 1) for i, item in enumerate(node.value)
        ]
    raise _NotPlain


def load_spec_text(text: str, source: str = "<spec>", base_dir: Path | None = None) -> LoadedSpec:
    """Parse and validate spec text; raise SpecError with one line per problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: the spec is larger than {MAX_SPEC_BYTES} bytes")
    plain = _plain_document(text)
    if plain is not None:
        _refuse_a_stranger(plain, source)
        return _loaded(plain, text, source, base_dir, SpecPositions(None, text))
    builder = _Builder(source)
    try:
        data = builder.document(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        lines = text.splitlines()
        found = ""
        if mark is not None and mark.line < len(lines):
            found = lines[mark.line][mark.column : mark.column + 1]
        before = lines[mark.line][: mark.column] if mark is not None and found else ""
        raise SpecError(f"{where}: {yaml_problem(exc.problem, found, before)}") from None
    except yaml.reader.ReaderError as exc:
        raise SpecError(_reader_error(text, source, exc)) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SpecError(f"{source}: not valid YAML: {type(exc).__name__}") from None
    if data is _NO_DOCUMENT:
        raise SpecError(f"{source}: the spec is empty; start with 'version: 1' and 'domain: ...'")
    if isinstance(builder.failure, yaml.YAMLError | ValueError | TypeError | RecursionError):
        failure = builder.failure
        said = failure.problem if isinstance(failure, yaml.MarkedYAMLError) else failure
        raise SpecError(f"{builder.failure_at}: not a valid spec: {said}") from None
    if builder.failure is not None:
        raise builder.failure
    if isinstance(data, dict):  # before its problems: a stranger's keys are not shown
        _refuse_a_stranger(data, source)
    if builder.problems:
        raise SpecError(builder.problems[0], builder.problems)
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1:1: the spec must be a mapping with 'version' and 'domain'")
    return _loaded(data, text, source, base_dir, SpecPositions(builder.positions, text))


def _loaded(
    data: dict[Any, Any], text: str, source: str, base_dir: Path | None, positions: SpecPositions
) -> LoadedSpec:
    """The LoadedSpec of a spec's data: no retired key in it, validated by the models."""
    from sipctl.schemas.retired import retired_keys

    retired = retired_keys(data, lambda path: _where(source, positions, path))
    if retired:
        raise SpecError(
            retired[0] if len(retired) == 1 else f"{source}: {len(retired)} problems", retired
        )
    spec = _spec_of(data, source, positions)
    return LoadedSpec(
        spec=spec,
        source=source,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
        text=text,
        positions=positions,
    )


def _refuse_a_stranger(data: dict[Any, Any], source: str) -> None:
    """Refuse a file with no top-level key of a spec as a whole, showing none of its keys.

    Such a file was given by mistake (``-f /etc/shadow``, ``.pgpass``, ``.htpasswd``, a
    kubeconfig), and in those a line with no space after its colon (``user:hash``,
    ``host:port:db:user:password``) is read as one key, so the unknown-key errors would print
    every secret of it.
    """
    if data and not {str(key) for key in data} & _spec_top_keys():
        raise SpecError(
            f"{source}:1:1: this is not a sipctl spec: none of its top-level keys is a key of "
            "a spec (its contents are not shown); a spec starts with 'version: 1' and "
            "'domain: <your domain>'",
            hint=REFERENCE_HINT,
        )


@cache
def _spec_top_keys() -> frozenset[str]:
    """The spec's top-level keys, once per process (15 us each time: a run loads thousands)."""
    from sipctl.schemas.messages import known_keys

    return frozenset(known_keys(()))


def build_spec_model() -> None:
    """Build the spec's validator now (pydantic builds it at the first validation, see
    spec.py's defer_build): a process that forks workers builds it once for all of them."""
    from sipctl.schemas.spec import Spec

    Spec.model_rebuild()


def _spec_of(data: dict[Any, Any], source: str, positions: SpecPositions) -> Spec:
    """The Spec of ``data``, validated by the models, every problem worded with where it is."""
    from pydantic import ValidationError

    from sipctl.schemas.spec import Spec

    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        problems = _format_validation_error(_told(exc, data), source, positions)
        raise SpecError(
            problems[0] if len(problems) == 1 else f"{source}: {len(problems)} problems",
            problems,
            hint=REFERENCE_HINT,
        ) from None


def _told(refusal: ValidationError, data: dict[Any, Any]) -> ValidationError:
    """The errors to tell for ``refusal`` of ``data``: a refused URL's password stays out of
    them however a check quotes it (the value, or a part of it such as a host name's label),
    so they are those of the spec with every password masked; ``refusal`` when that one
    passes (the output scrubs its text then)."""
    from pydantic import ValidationError

    from sipctl.schemas.spec import Spec

    masked = masked_passwords(data)
    if masked == data:
        return refusal
    try:
        Spec.model_validate(masked)
    except ValidationError as exc:
        return exc
    return refusal


# Where a user finds every key: printed by the installed sipctl itself, so it is there
# wherever sipctl is; a file of sipctl's source (docs/spec.md holds the same text) is not.
REFERENCE_HINT = "every key, its type, default and an example: sipctl schema --kind reference"


def load_spec(path: Path | str) -> LoadedSpec:
    """Read and validate a spec file."""
    from sipctl.schemas.admin_files import read_spec_file
    from sipctl.schemas.spec_links import refuse_link_out

    file = Path(path)
    refuse_link_out(file)  # a link out of its directory, where the run is strict
    try:
        raw = read_spec_file(file, MAX_SPEC_BYTES)  # a FIFO nothing writes to: refused
    except FileNotFoundError:
        if file.is_symlink():  # the link is there, what it names is not
            raise SpecError(
                f"{file}: a symbolic link to {file.readlink()}, which does not exist"
            ) from None
        raise SpecError(
            f"{file}: no such spec file (give one with -f, or create sipctl.yaml here)"
        ) from None
    except OSError as exc:
        raise SpecError(f"{file}: cannot read the spec: {exc.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{file}: the spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{file}: the spec is not UTF-8 text (byte {exc.start})") from None
    loaded = load_spec_text(text, source=str(file), base_dir=file.resolve().parent)
    if loaded.spec.hosting is None and loaded.spec.host is None:
        return loaded
    from sipctl.schemas.hosting import compose

    return compose(loaded, file)
