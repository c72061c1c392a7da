"""Asterisk's ``dialplan show <context>`` output, read into data: a pure parser.

What Asterisk prints is what it runs: the context as loaded from every file (sipctl's own and
the admin's ``[ctx](+)`` additions, each step with its ``[file:line]``), plus whatever was added
at runtime (``dialplan add extension``, AMI, AGI; source ``[pbx_config]`` without a line).
Measured on Asterisk 22::

    [ Context 'guest-call' created by 'pbx_config' ]
      'director' =>     1. Set(SIPCTL_IP=${CHANNEL(pjsip,remote_addr)}) [extensions_sipctl.conf:4]
                        2. Dial(PJSIP/105)                            [extensions_sipctl.conf:7]
      '_011X.' =>       1. Dial(PJSIP/${EXTEN}@trunk)                 [pbx_config]
      Include =>        'default'                                     [pbx_config]
      Alt. Switch =>    'Realtime/foo@bar'                            [pbx_config]

``dialplan show CONTEXT`` does not descend into included contexts: the caller asks for each
one. ``dialplan show EXT@CONTEXT`` does: it shows what matches EXT there (exact, patterns)
and in every context included, each under "[ Included context 'NAME' created by ... ]".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# "[ Context 'x' ...": ``dialplan show EXT@CONTEXT`` heads the matches of an included context
# "[ Included context 'y' ...".
_CONTEXT_RE = re.compile(
    r"^\[ (?:Included c|C)ontext '(?P<name>[^']*)' created by '(?P<registrar>[^']*)' \]"
)
_EXTEN_RE = re.compile(r"^\s+'(?P<exten>[^']*)'\s+=>\s+(?P<rest>.*)$")
# "1. App(args)   [source]", "[label] 2. ...": the source is the last bracketed word.
_STEP_RE = re.compile(
    r"^(?:\[(?P<label>[^\]]*)\]\s*)?(?P<priority>\d+)\.\s+(?P<body>.*?)\s*(?:\[(?P<source>[^\[\]]*)\])?\s*$"
)
_HINT_RE = re.compile(r"^hint:\s*(?P<body>.*?)\s*(?:\[(?P<source>[^\[\]]*)\])?\s*$")
_CONT_RE = re.compile(r"^\s{10,}(?P<rest>(?:\[[^\]]*\]\s*)?\d+\.\s+.*)$")
_INCLUDE_RE = re.compile(r"^\s+Include =>\s+'(?P<name>[^']*)'\s*(?:\[(?P<source>[^\[\]]*)\])?")
_SWITCH_RE = re.compile(r"^\s+Alt\. Switch =>\s+'(?P<name>[^']*)'\s*(?:\[(?P<source>[^\[\]]*)\])?")


@dataclass(frozen=True)
class Step:
    """One priority of an extension: ``Dial(PJSIP/105)`` as application and argument text."""

    priority: int
    app: str  # as written (Asterisk matches application names case-insensitively)
    args: str
    source: str  # "extensions.conf:16", or "pbx_config" for a runtime addition
    label: str | None = None

    @property
    def text(self) -> str:
        return f"{self.app}({self.args})"


@dataclass
class Extension:
    name: str  # as Asterisk shows it; a pattern starts with "_"
    steps: list[Step] = field(default_factory=list)
    hint: str | None = None

    @property
    def is_pattern(self) -> bool:
        return self.name.startswith("_")

    @property
    def source(self) -> str:
        return self.steps[0].source if self.steps else ""

    def matches(self, exten: str) -> bool:
        """Whether a call to ``exten`` matches this extension, by Asterisk's rules: an
        exact name, or a pattern (``_`` then X, Z, N, ``[...]``, ``.`` one or more of
        anything, ``!`` zero or more, any other character itself); ``-`` counts nowhere."""
        if not self.is_pattern:
            return self.name.replace("-", "") == exten.replace("-", "")
        return _pattern_re(self.name).fullmatch(exten.replace("-", "")) is not None


_PATTERN_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}


def _pattern_re(pattern: str) -> re.Pattern[str]:
    """An Asterisk pattern (``_1XX``, ``_0[1-3]Z.``) as a regular expression."""
    parts: list[str] = []
    text = pattern[1:]
    index = 0
    while index < len(text):
        char = text[index]
        if char == "[":
            end = text.find("]", index + 1)
            if end < 0:
                parts.append(re.escape(char))
            else:
                inner = text[index + 1 : end]
                parts.append("[" + "".join(c if c == "-" else re.escape(c) for c in inner) + "]")
                index = end + 1
                continue
        elif char != "-":  # ignored in names and patterns alike (outside brackets)
            parts.append(_PATTERN_CLASSES.get(char.upper(), re.escape(char)))
            if char in ".!":
                break  # the rest is matched already
        index += 1
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Include:
    context: str  # may carry a time condition after "|" or ","
    source: str

    @property
    def target(self) -> str:
        return re.split(r"[|,]", self.context, maxsplit=1)[0]


@dataclass(frozen=True)
class Switch:
    spec: str  # "Realtime/ctx@family", "DUNDi/e164", "Loopback/..."
    source: str


@dataclass
class Context:
    name: str
    registrar: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[Include] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)


def split_application(body: str) -> tuple[str, str]:
    """``Dial(PJSIP/105,20)`` -> ("Dial", "PJSIP/105,20"); a bare ``Hangup`` -> ("Hangup", "")."""
    name, paren, rest = body.partition("(")
    if not paren:
        return body.strip(), ""
    args = rest[:-1] if rest.endswith(")") else rest
    return name.strip(), args


def _step(text: str) -> Step | None:
    match = _STEP_RE.match(text.strip())
    if match is None:
        return None
    app, args = split_application(match["body"])
    return Step(int(match["priority"]), app, args, match["source"] or "", match["label"])


def parse_dialplan_show(output: str) -> dict[str, Context]:
    """Every context in the output, by name. Lines it does not know are skipped."""
    contexts: dict[str, Context] = {}
    current: Context | None = None
    exten: Extension | None = None
    for line in output.splitlines():
        if not line.strip():
            continue
        if (m := _CONTEXT_RE.match(line)) is not None:
            current = contexts.setdefault(m["name"], Context(m["name"], m["registrar"]))
            exten = None
            continue
        if current is None:
            continue
        if (m := _INCLUDE_RE.match(line)) is not None:
            current.includes.append(Include(m["name"], m["source"] or ""))
            exten = None
        elif (m := _SWITCH_RE.match(line)) is not None:
            current.switches.append(Switch(m["name"], m["source"] or ""))
            exten = None
        elif (m := _EXTEN_RE.match(line)) is not None:
            exten = current.extensions.setdefault(m["exten"], Extension(m["exten"]))
            rest = m["rest"].strip()
            if (hint := _HINT_RE.match(rest)) is not None:
                exten.hint = hint["body"]
            elif (step := _step(rest)) is not None:
                exten.steps.append(step)
        elif (
            exten is not None
            and (m := _CONT_RE.match(line)) is not None
            and (step := _step(m["rest"])) is not None
        ):
            exten.steps.append(step)
    return contexts


def context_missing(output: str) -> bool:
    """``dialplan show X`` of a context that does not exist."""
    return "There is no existence of" in output
