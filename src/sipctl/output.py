"""Everything sipctl prints goes through here: colors, and secrets scrubbed from every line.

What ``--quiet`` keeps is decided here, once, by the kind of line:

- the result (``out``: a plan, a report, JSON, ``Apply complete!``) on stdout: always;
- errors (``error``) and warnings (``warn``, and any line the engine hands ``info`` that
  starts ``Warning: ``): always, on stderr: they need the reader's attention;
- notes, info and progress (``info``, ``progress``, ``notes`` for a report's ``note:``
  lines): not with ``--quiet``. ``-v`` outranks ``--quiet``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from sipctl.errors import hint_line
from sipctl.secret_names import SECRET_KEYS, SECRET_LAST_WORDS, SECRET_WORDS, secret_name

WARNING_PREFIX = "Warning: "

# What a terminal or a CI log would act on rather than show: C0/C1 controls but the line
# break and tab, DEL, and the bidirectional overrides. A spec's values hold none (the loader
# refuses them), but a file's name or live data may: shown escaped, never acted on.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# sipctl's own colors (views.Painter, the Error:/Warning: prefixes), kept when it colors;
# any other sequence (conceal: 8) is escaped as the rest
_COLOR = re.compile("\x1b\\[(?:0|1|31|32|33)m")


# The password of a URL's user part (``ssh://root:PASSWORD@host``), to the last '@' of the
# value (a password may hold '@' and '/'): no spec key takes one, but a refused value is
# quoted back in its error, which goes to CI logs and merge request comments. The value is
# quoted there as Python quotes it: in '...' unless it holds a "'", then in "...". So the
# user and password may hold one kind of quote, the kind that does not end the value: a
# pattern for each (a password of both kinds, or of whitespace, is refused in a form that
# may still show a part of it).
_URL_PASSWORDS = tuple(
    re.compile(rf"(://[^\s/@:{quotes}]*):[^\s{quotes}]*@") for quotes in ("'\"", '"', "'")
)


def password_masked(value: str) -> str:
    """``value`` (one string of a spec, not text around it) with the password of a URL in it
    written ``***``: from the first ':' after '://' to the value's last '@', whatever the
    password holds (quotes, whitespace, '@', '/'). Knowing where the value ends is what the
    text scrub below cannot: a value is masked before it is quoted into a message."""
    scheme = value.find("://")
    if scheme < 0:
        return value
    colon, at = value.find(":", scheme + 3), value.rfind("@")
    if colon < 0 or at < colon:
        return value
    return f"{value[: colon + 1]}***{value[at:]}"


def with_values_masked(text: str, values: object, keys: object = ()) -> str:
    """``text`` (a message that may quote ``values``: a spec's value, or a section or list
    of them) with each of their strings, bare or quoted as Python quotes it, masked by
    ``password_masked`` and then, when long, cut by ``shown_value`` (where a value is a
    section, a long key of it too: a user's name of 1,000 characters); ``keys`` (the path
    of the value) are masked."""
    strings = sorted(_strings(values), key=len, reverse=True)  # a value may hold another
    for value in strings:
        for shown in (value, value.strip()):
            masked = password_masked(shown)
            if masked != shown or len(repr(shown)) > LONGEST_SHOWN:
                for quote in (repr, ascii):  # as a check quotes it: {value!r} or {value!a}
                    text = text.replace(quote(shown), shown_value(masked, quote))
                text = text.replace(shown, shown_value(masked, None))
    for value in strings:  # then what is left of one: a check quoted a part of it (a label)
        if len(value) > LONGEST_SHOWN:
            text = _parts_cut(text, password_masked(value))
    for number in _long_numbers(values):  # (found 99999...): a bound's check quotes it bare
        text = text.replace(str(number), shown_value(number, None))
    for key in _strings(keys):
        masked = password_masked(key)
        if masked != key or len(key) > LONGEST_SHOWN:
            text = text.replace(repr(key), shown_value(masked)).replace(
                key, shown_value(masked, None)
            )
    return text


# The longest a spec's value is quoted into a message, quotes included: errors are read by
# people (file, line, key, what was expected); a value of thousands of characters would
# bury all that in a terminal or a CI log.
LONGEST_SHOWN = 80
# How a value cut by ``shown_value`` ends, before its length.
VALUE_CUT = "\u2026"


def shown_value(value: str | int, quote: Callable[[str], str] | None = repr) -> str:
    """``value`` as a message quotes it (``repr``, ``ascii``, or bare when ``quote`` is
    None): whole when it takes at most LONGEST_SHOWN characters, else its beginning, "\u2026"
    and its length
    (``'99999\u2026' (5,000 characters)``). The cut falls between characters, never inside
    an escape of the quoted form (it is the beginning's own ``repr``) nor before a mark that
    combines with the character ahead of it."""
    if isinstance(value, int):
        digits = str(value)
        if len(digits) <= LONGEST_SHOWN:
            return digits
        return f"{digits[: LONGEST_SHOWN - 1]}{VALUE_CUT} ({len(digits.lstrip('-')):,} digits)"
    shown_as = quote if quote is not None else str
    if len(shown_as(value)) <= LONGEST_SHOWN:
        return shown_as(value)
    end = LONGEST_SHOWN - 1  # room for the cut mark
    while end > 0 and len(shown_as(value[:end])) > LONGEST_SHOWN - 1:
        end -= 1
    end = _between_characters(value, end)
    beginning = value[:end]
    if quote is not None:
        text = quote(beginning)
        shown = f"{text[:-1]}{VALUE_CUT}{text[-1]}"
    else:
        shown = f"{beginning}{VALUE_CUT}"
    return f"{shown} ({len(value):,} characters)"


def _parts_cut(text: str, value: str) -> str:
    """``text`` with each run of more than LONGEST_SHOWN characters that is a part of
    ``value`` (as it is, or inside Python's quotes) cut to its beginning and length."""
    bodies = [value, repr(value)[1:-1], ascii(value)[1:-1]]
    at = 0
    while at + LONGEST_SHOWN < len(text):
        probe = text[at : at + LONGEST_SHOWN + 1]
        body = next((b for b in bodies if probe in b), None)
        if body is None:
            at += 1
            continue
        end = at + LONGEST_SHOWN + 1
        while end < len(text) and text[at : end + 1] in body:
            end += 1
        run = text[at:end]
        keep = _between_escapes(run, _between_characters(run, LONGEST_SHOWN - 1))
        shown = f"{run[:keep]}{VALUE_CUT} ({len(run):,} characters)"
        text = text[:at] + shown + text[end:]
        at += len(shown)
    return text


def _between_characters(text: str, end: int) -> int:
    """``end``, or a little before it where a cut there would split what a reader sees as
    one character (at most 8 back: a run of joined emoji is cut where it must be)."""
    for back in range(min(end, 8) + 1):
        if end - back < len(text) and not _joins_the_one_before(
            text[end - back], text[end - back - 1] if end - back > 0 else ""
        ):
            return end - back
    return end


def _between_escapes(text: str, end: int) -> int:
    """``end``, or the start of the backslash escape (``\\u200d``) it would fall inside."""
    lengths = {"x": 4, "u": 6, "U": 10, "N": 2}
    at = 0
    while at < end:
        if text[at] == "\\":
            size = lengths.get(text[at + 1 : at + 2], 2)
            if at + size > end:
                return at
            at += size
        else:
            at += 1
    return end


def _joins_the_one_before(char: str, before: str) -> bool:
    """Whether a cut between ``before`` and ``char`` would split what a reader sees as one
    character: a combining accent, a variation selector, a zero-width joiner's pair."""
    import unicodedata

    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me")
        or "\ufe00" <= char <= "\ufe0f"
        or "\U000e0100" <= char <= "\U000e01ef"
        or "\u200d" in (char, before)
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # a skin tone of the emoji before it
    )


def _scalars(values: object) -> Iterator[object]:
    """Every value inside ``values`` (a value, or a section or list of them, keys included)
    that is no section or list, in order. The one walk of a refused value: each section or
    list is entered once however often it is reached, so a YAML alias that names one again,
    or names the section it stands in (``a: &x {b: *x}``, which PyYAML builds as a section
    that holds itself), ends; and it keeps its own stack, so a deep nesting is no
    RecursionError."""
    entered: set[int] = set()
    stack: list[object] = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, dict | list | tuple | set | frozenset):
            if id(value) in entered:
                continue
            entered.add(id(value))
            if isinstance(value, dict):
                parts = [part for pair in value.items() for part in pair]
            else:
                parts = list(value)
            stack.extend(reversed(parts))
        else:
            yield value


def _long_numbers(values: object) -> list[int]:
    return [
        n
        for n in _scalars(values)
        if isinstance(n, int) and not isinstance(n, bool) and len(str(n)) > LONGEST_SHOWN
    ]


def masked_passwords(data: Any) -> Any:
    """``data`` (a spec's document) with every string, key or value, ``password_masked``."""
    return _each_string(data, password_masked)


def _each_string(data: Any, change: Callable[[str], str]) -> Any:
    """``data`` (a document: sections, lists, scalars) with ``change`` made to every string
    in it, key or value; the document keeps its shape."""
    if isinstance(data, str):
        return change(data)
    if isinstance(data, dict):
        return {_each_string(k, change): _each_string(v, change) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_each_string(v, change) for v in data]
    return data


def _strings(values: object) -> list[str]:
    return [s for s in _scalars(values) if isinstance(s, str)]


# The secret of an Asterisk dial string or switch (``Dial(IAX2/trunk:SECRET@host/${EXTEN})``,
# ``switch => IAX2/user:SECRET@host/context``, chan_sip's ``SIP/user:SECRET@host``) and of a
# SIP URI without '//' (``sip:alice:SECRET@host``): audit and import quote the live dialplan
# Asterisk shows, where admins write a trunk's credentials so. The user is one word right
# after the technology's '/' (or 'sip:'), the technology a word of its own (not a path's or
# a host's last part: https://a.example/x:y@z is a URL's path), and neither the user nor
# the password holds a '{': ``SIP/${EXTEN:1}@trunk`` and ``relay/sip:${EXTEN}@...`` hold
# variables, not a password.
_DIAL_PASSWORDS = re.compile(
    r"""((?:(?<![\w./:@-])[A-Za-z][A-Za-z0-9]*/|(?<![\w./:@-])sips?:)[^\s/@:{}'"(),;=|]+):[^\s/@'"(),;|{}]*@""",
    re.IGNORECASE,
)


# A value written NAME=value where the NAME says it holds a secret (``secret_names``, the
# read gate's rule): a live dialplan's ``Set(TRUNK_PASSWORD=hunter2)`` that audit or import
# quotes, a ``[globals]`` line, a URL's ``?api_key=...``. The name is a word of its own
# (``--password-file=PATH`` names an option, not a secret); the value ends where an
# argument, a quote or the line does. Spaces or tabs may stand around the "=" (a config
# line ``TRUNK_PASSWORD = hunter2``, ``=>`` too); a value the read gate already hid and a
# comparison (``==``) are left as they are. An HTTP header's value starts with its scheme
# (``Authorization=Bearer TOKEN``): the credential after it is masked, the scheme stays.
# A value in quotes (``password="hunter2"``, ``pin='1234'``) is masked whole, its quotes
# kept; so is one in a JSON text's escaped quotes (``password=\\"hunter2\\"``, as a plan's
# fingerprint and a --json document write it), whose escapes the mask keeps whole: a mask
# that took the backslash before a quote would end the JSON string early.
_NAMED_VALUE = re.compile(
    r"(?<![\w.:/-])([A-Za-z_][\w.-]*)([ \t]*=>?[ \t]*"
    r"(?:(?i:bearer|basic|digest|negotiate|token)[ \t]+)?)"
    r"(?!\(hidden by the read gate\)|=)"
    r"(\"[^\"\n]*\"|'[^'\n]*'|\\\"(?:[^\"\\\n]|\\[^\"\n])*\\\""
    r"|(?:[^\s,)'\"|;\\]|\\\\|\\(?![\"\\]))+)"
)


def _named_secret_masked(match: re.Match[str]) -> str:
    if not secret_name(match[1]):
        return match[0]
    value = match[3]
    quote = '\\"' if value.startswith('\\"') else value[0] if value[0] in "\"'" else ""
    return f"{match[1]}{match[2]}{quote}***{quote}"


# An HTTP header the dialplan sends, written as HTTP writes it
# (``Set(CURLOPT(httpheader)=Authorization: Bearer TOKEN)``): its value is masked when the
# header's name is a secret's (the same rule).
_HTTP_HEADER = re.compile(
    r"((?i:httpheader)\)?[ \t]*=[ \t]*)([A-Za-z][\w-]*)([ \t]*:[ \t]*"
    r"(?:(?i:bearer|basic|digest|negotiate|token)[ \t]+)?)([^\s,)'\"|;]+)"
)


def _header_secret_masked(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}{match[3]}***" if secret_name(match[2]) else match[0]


def without_passwords(text: str) -> str:
    """``text`` with every URL's password, every dial string's (above) and every value of a
    key whose name says it is a secret written ``***``.

    No pattern spans whitespace, so each is matched on the lines that may hold it only: a
    named secret's on lines with a word a secret's name holds, a password's on lines with
    an '@'. A saved plan is scrubbed whole, and a dialplan of 20,000 users is 5 MB with
    160,000 ``NAME=`` in it and one '@': matched whole, it took 3 s (``scrubbed_data``)."""
    if "=" in text:
        text = _lines_masked(text, _secret_name_hints(text), _named_values_masked)
    if "@" not in text:
        return text
    return _lines_masked(text, _found(text, "@"), _passwords_masked)


def _fewest_words(words: Iterable[str]) -> tuple[str, ...]:
    """``words`` without those that hold another of them (password holds pass): a text
    holding any of ``words`` holds one of these."""
    every = set(words)
    return tuple(sorted(w for w in every if not any(o != w and o in w for o in every)))


# A name the secret rule (``secret_name``) takes holds one of these, in any case: made of
# the rule's own words, so a word added to the rule is looked for here too.
_SECRET_NAME_WORDS = _fewest_words((*SECRET_WORDS, *SECRET_LAST_WORDS, *SECRET_KEYS))
_SECRET_NAME_HINT = re.compile("|".join(_SECRET_NAME_WORDS), re.IGNORECASE)


def _secret_name_hints(text: str) -> list[int]:
    """Where in ``text`` a word of a secret's name stands, in order: found in its case-folded
    form by ``str.find`` (an alternation of the words, case-insensitive, takes 0.8 s over
    5 MB), unless folding changes the text's length (then by the expression). Folded, as
    the expression's IGNORECASE matches: 'ſ' is an 's', the Kelvin sign a 'k'."""
    lower = text.casefold()
    if len(text) < _LONG_TEXT and not any(word in lower for word in _SECRET_NAME_WORDS):
        return []  # most of a plan's values: told by ``in``, ten times faster than a search
    if len(lower) != len(text):
        return [m.start() for m in _SECRET_NAME_HINT.finditer(text)]
    return sorted(at for word in _SECRET_NAME_WORDS for at in _found(lower, word))


# Shorter than this, a text is first asked whether it holds any word of a secret's name.
_LONG_TEXT = 4096


def _found(text: str, word: str) -> list[int]:
    """Where ``word`` starts in ``text``, each place."""
    places: list[int] = []
    at = text.find(word)
    while at >= 0:
        places.append(at)
        at = text.find(word, at + 1)
    return places


def _named_values_masked(line: str) -> str:
    line = _NAMED_VALUE.sub(_named_secret_masked, line)
    return _HTTP_HEADER.sub(_header_secret_masked, line) if ":" in line else line


def _passwords_masked(line: str) -> str:
    if "://" in line:
        for pattern in _URL_PASSWORDS:
            line = pattern.sub(r"\1:***@", line)
    return _DIAL_PASSWORDS.sub(r"\1:***@", line)


def _lines_masked(text: str, hints: Iterable[int], mask: Callable[[str], str]) -> str:
    """``text`` with ``mask`` applied to each line that holds a place of ``hints`` (in
    order), the other lines as they are."""
    parts: list[str] = []
    done = 0
    for hint in hints:
        if hint < done:
            continue  # on a line masked already
        start = text.rfind("\n", 0, hint) + 1
        end = text.find("\n", hint)
        end = len(text) if end < 0 else end
        parts += [text[done:start], mask(text[start:end])]
        done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


# How a text cut for a message ends (``peer_words``): the scrub masks a secret's beginning
# that a cut left just before it (``scrubbed``).
CUT = "..."


def peer_words(text: str, limit: int) -> str:
    """What a peer said (a program's output, an API's error body), on one line (each run of
    whitespace one space) and at most ``limit`` characters, a cut marked ``...``: a cut may
    fall inside a secret the peer echoed, and ``scrubbed`` masks what a cut left of one only
    where it can see the cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + CUT


def _forms(secret: str) -> set[str]:
    """How ``secret`` may stand in a message: as it is, on one line (``peer_words``), and
    escaped inside a JSON string."""
    one_line = " ".join(secret.split())
    return {f for f in (secret, one_line, json.dumps(secret)[1:-1]) if f}


def secret_forms(secrets: Iterable[str]) -> list[str]:
    """Every form of ``secrets`` a message may hold (``_forms``), the shortest first."""
    return sorted({f for secret in secrets if secret for f in _forms(secret)}, key=len)


def scrubbed(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret written ``***`` (also on one line or JSON-escaped, and its
    beginning where ``peer_words`` cut the text inside it), and every URL's password. The
    one scrub of everything sipctl prints, logs, saves or hands to a workflow's history."""
    return scrubbed_forms(text, secret_forms(secrets))


def scrubbed_forms(text: str, forms: Sequence[str]) -> str:
    """``scrubbed`` with the secrets' forms made already (``secret_forms``): the console
    scrubs every line it prints with the same few."""
    for form in reversed(forms):  # the longest first: a secret may hold a shorter one
        text = text.replace(form, "***")
    for cut in (CUT, VALUE_CUT):  # a secret in a spec's value cut by ``shown_value``, too
        if cut in text:
            for form in forms:
                text = _cut_beginnings_masked(text, form, cut)
    return without_passwords(text)


def scrubbed_data(data: Any, secrets: Iterable[str]) -> Any:
    """``data`` (a JSON document: a plan) with every string in it, key or value, ``scrubbed``
    of ``secrets``: what sipctl saves is masked as what it prints is. Each string on its own,
    so the document keeps its shape (a scrub of its JSON text could end inside an escape)."""
    return _strings_scrubbed(data, secret_forms(secrets))


def _strings_scrubbed(data: Any, forms: Sequence[str]) -> Any:
    return _each_string(data, lambda text: scrubbed_forms(text, forms))


# The shortest beginning of a secret masked before a cut: three characters of a secret tell
# little, and shorter ones would mask the last letters of ordinary words before a '...'.
_SHORTEST_BEGINNING = 4


def _cut_beginnings_masked(text: str, secret: str, cut: str) -> str:
    """``text`` with each beginning of ``secret`` that ends where a ``cut`` does written
    ``***``."""
    parts = text.split(cut)
    for index, part in enumerate(parts[:-1]):
        for length in range(min(len(secret) - 1, len(part)), _SHORTEST_BEGINNING - 1, -1):
            if part.endswith(secret[:length]):
                parts[index] = part[:-length] + "***"
                break
    return cut.join(parts)


def _escaped(char: str) -> str:
    """``\\x1b`` for a C0 control (JSON escapes those itself), else ``\\u0085``: also a
    valid escape inside a JSON string, where C1, DEL and bidi characters come raw."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x20 else f"\\u{code:04x}"


def visible(text: str, colors: bool = False) -> str:
    """``text`` with what a terminal would act on written as escapes (``\\x1b``), so a
    file named to clear the screen or to hide a line is shown, not obeyed; ``colors``:
    sipctl's own color sequences stay."""
    if _UNSAFE.search(text) is None:
        return text
    if not colors:
        return _UNSAFE.sub(lambda m: _escaped(m[0]), text)
    parts = _COLOR.split(text)
    kept = _COLOR.findall(text)
    shown = [_UNSAFE.sub(lambda m: _escaped(m[0]), part) for part in parts]
    return "".join(p + k for p, k in zip(shown, [*kept, ""], strict=True))


class Console:
    def __init__(self, no_color: bool = False, verbose: int = 0, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet  # --quiet: the result, warnings and errors only (module docstring)
        self._secrets: set[str] = set()
        self._secret_forms: list[str] = []  # secret_forms(self._secrets), made once per change
        self.color = (
            not no_color
            and "NO_COLOR" not in os.environ
            and sys.stdout.isatty()
            and os.environ.get("TERM") != "dumb"
        )
        self.err_color = not no_color and "NO_COLOR" not in os.environ and sys.stderr.isatty()
        # --json: (the report's kind, the one spec or None for many) while the command owes
        # stdout a JSON document; the error boundary prints a refusal as one if none came.
        # drift --out: the file owed that document (``json_stdout`` False without --json).
        self.json_promise: tuple[str, str | None] | None = None
        self.json_stdout = False
        self.json_file: Path | None = None
        self.wrote_out = False
        self.wrote_json_file = False
        # plan --markdown: stdout is a merge request's comment, which tells a refusal too
        # (the error boundary); of one spec, its domain (the comment's marker), else None
        self.owes_markdown = False
        self.markdown_domain: str | None = None

    def promise_json(self, kind: str, spec: str | None, stdout: bool = True) -> None:
        """This command prints a ``kind`` envelope (``spec``: of one spec, else of many);
        ``stdout``: on stdout (--json), else only in ``json_file``."""
        self.json_promise = (kind, spec)
        self.json_stdout = stdout

    def promise_markdown(self, domain: str | None) -> None:
        """This command prints a merge-request comment on stdout (``domain``: of one spec,
        the domain its marker names; None: of several)."""
        self.owes_markdown = True
        self.markdown_domain = domain

    def add_secrets(self, secrets: Iterable[str]) -> None:
        before = len(self._secrets)
        self._secrets.update(s for s in secrets if s)
        if len(self._secrets) != before:
            self._secret_forms = secret_forms(self._secrets)

    def scrub(self, text: str) -> str:
        """``text`` without the run's secrets and without any URL's password."""
        return scrubbed_forms(text, self._secret_forms)

    def scrub_data(self, data: Any) -> Any:
        """``data`` (a JSON document) with each string ``scrub``-bed (``scrubbed_data``)."""
        return _strings_scrubbed(data, self._secret_forms)

    def json_text(self, data: Any) -> str:
        """``data`` (a JSON document) as sipctl prints or saves it: each string scrubbed
        first (``scrub_data``), as a scrub of the JSON text could end inside an escape (a
        live ``password="x"`` is ``password=\\"x\\"`` there) and tell the secret."""
        from sipctl.reconciler.views import render_json

        return render_json(self.scrub_data(data))

    def _write(self, stream: TextIO, text: str) -> None:
        colors = self.color if stream is sys.stdout else self.err_color
        stream.write(visible(self.scrub(text), colors))
        stream.flush()

    def out(self, text: str = "", end: str = "\n") -> None:
        self.wrote_out = True
        self._write(sys.stdout, text + end)

    @property
    def notes(self) -> bool:
        """Whether a report shows its ``note:`` lines (not with ``--quiet``)."""
        return not self.quiet

    def info(self, text: str) -> None:
        """A progress or result line, on stderr so stdout stays machine-readable. A line
        that starts ``Warning: `` (the engine's lines of a run) is a warning: always shown."""
        if text.startswith(WARNING_PREFIX):
            self.warn(text.removeprefix(WARNING_PREFIX))
        elif not self.quiet:
            self._write(sys.stderr, text + "\n")

    def progress(self, text: str) -> None:
        """One line per step of a long run (a target read or written, a domain done): on a
        terminal only, so logs of pipelines stay quiet."""
        if not self.quiet and (self.verbose or sys.stderr.isatty()):
            self._write(sys.stderr, f"  {text}\n")

    def detail(self, text: str) -> None:
        if self.verbose:
            self._write(sys.stderr, f"  {text}\n")

    def error(self, text: str, hint: str | None = None) -> None:
        prefix = "\x1b[31mError:\x1b[0m " if self.err_color else "Error: "
        self._write(sys.stderr, prefix + text + "\n")
        if hint:
            self._write(sys.stderr, f"  {hint_line(hint)}\n")

    def warn(self, text: str) -> None:
        """Something may be wrong and needs the reader: shown even with ``--quiet``."""
        prefix = f"\x1b[33m{WARNING_PREFIX.strip()}\x1b[0m " if self.err_color else WARNING_PREFIX
        self._write(sys.stderr, prefix + text + "\n")
