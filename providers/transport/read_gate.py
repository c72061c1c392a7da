"""The read gate: what a read-only SSH login for ``plan`` may ask of a host, and nothing more.

A plan job reads root-only things on the PBX (firewall rules, ``fail2ban-client``, ``asterisk
-rx``, config files, sipctl's records). With a normal login it sends ``sh -s`` scripts, which
no ``sudoers`` or ``authorized_keys`` rule can restrict. With the read-only login (environment
``SIPCTL_SSH_READ_ONLY=1``, see ``ssh.py``) it sends a *request* instead, and the key is tied
to a gate on the host (``command="/usr/local/sbin/sipctl-read-gate",restrict``). The gate is a
POSIX sh script that ``sipctl read-gate`` renders from the spec(s):

- every request line must be EQUAL to a line of the gate's table (``case`` with fully quoted
  patterns: literal strings, never patterns, never evaluated); the table lists the exact
  files plan reads (``f PATH``), the private keys plan checks (``k PATH``: only their sha256
  and public key leave the host), the programs with their exact words (``p WORDS``), and
  named scripts rendered into the gate by sipctl (``s NAME``: the firewall snapshot);
- each branch runs the gate's OWN words for that line: nothing of the request reaches a
  shell, a program's arguments or a path, except the answer marker, which must match
  ``@sipctl-<16 hex>@`` exactly;
- the whole request is checked before anything runs; one unknown line refuses it whole
  (exit ``GATE_REFUSED``, a one-line reason on stderr);
- a file is opened once, then checked through ``/proc/self/fd``: a path reached through a
  symbolic link anywhere is answered ``L`` (refused), never read.

Request::

    sipctl-read 1 @sipctl-0123456789abcdef@
    f /etc/asterisk/pjsip.conf        files first, answered as ``files.py``'s read script
    .                                 -> "<M> END" (the end of the files)
    k /etc/asterisk/keys/sip.key      -> "<M> K <mode> <mtime> <sha256> <public key>"
    p asterisk -rx 'pjsip show endpoints'   -> its output, then "\\n<M> <status>"
    s firewall-iptables               -> the script's sections (boundary: the marker)
    end

A file the table marks as the admin's (``redacted``) is answered "<M> R <mode> <mtime> -"
with the values of keys whose name says they hold a secret (``secret_names``) and the
passwords in URIs hidden (``redact``); no hash of the real file leaves the host (a short PIN
falls to a hash in milliseconds).

Pure: this module renders the gate and the requests and parses the answers; ``ssh.py``
sends them and ``src/sipctl/cli_gate.py`` prints the gate.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from sipctl.errors import RefusedError
from sipctl.output import peer_words
from sipctl.providers.transport.files import is_kernel_file
from sipctl.providers.transport.pool import CommandResult, HostFile, HostTransport
from sipctl.providers.transport.programs import quoted
from sipctl.schemas.values import canonical_path
from sipctl.secret_names import CAMEL_SECRET_NAME, SECRET_NAME, python_rule

PROTOCOL = 1
SSH_COMMAND = f"sipctl-read {PROTOCOL}"  # what the client asks sshd to run (the gate checks it)
GATE_PATH = "/usr/local/sbin/sipctl-read-gate"
GATE_REFUSED = 65  # the gate's exit status for a request it refuses (EX_DATAERR)
MAX_LINES = 4000
MAX_REQUEST_BYTES = 1 << 20
READ_ONLY_ENV = "SIPCTL_SSH_READ_ONLY"
# A redacted file's lines "KEY = value" / "KEY => value" whose KEY says it holds a secret
# (``secret_names``) are answered as "KEY = (hidden by the read gate)"; so is such a line
# commented out (";TRUNK_PASSWORD=old"): it often holds the old secret.
# Any other value may hold a URI with credentials (``contact=sip:alice:pw@host``, a Dial
# string ``SIP/alice:pw@host``): what lies between the user's ":" and the "@" is hidden.
# One rule, two spellings of it: the gate's sed (POSIX ERE, C locale) and ``redact`` below,
# which gives plan the same fingerprint of a file through the gate and through a root login.
# ``redact`` also runs on what a gate answers: an older gate, which hid fewer keys, gives
# the same fingerprint as this one (redact(older answer) == redact(file): a test proves it).
HIDDEN = "(hidden by the read gate)"
_KEY_RULE = f"^([[:space:];-]*{SECRET_NAME}[[:space:]]*=>?).*$"
# A line that closes a block comment before such a key ("x --; password=y"): Asterisk reads
# the key after the "--;", so its value is hidden from the first "--;" a secret key follows.
# A rule of its own after _KEY_RULE (not an alternative in it: POSIX's longest submatch
# would pick another "=" than Python's first alternative).
_AFTER_COMMENT_RULE = f"(--;[[:space:]]*{SECRET_NAME}[[:space:]]*=>?).*$"
# The same three rules of a camelCase name (boxPin, userKey: ``CAMEL_SECRET_NAME``), each
# right after its case-insensitive one and without the I flag: sed's I applies to a whole
# expression, and a camelCase part is told only by its capital.
_CAMEL_KEY_RULE = f"^([[:space:];-]*{CAMEL_SECRET_NAME}[[:space:]]*=>?).*$"
_CAMEL_AFTER_COMMENT_RULE = f"(--;[[:space:]]*{CAMEL_SECRET_NAME}[[:space:]]*=>?).*$"
_URI_RULE = "([/:][^:@/;[:space:]=,]+:)[^@/;[:space:]]*@"
# And an application's argument NAME=value whose NAME says so, in any line: a dialplan's
# ``exten => _00X.,1,Set(TRUNK_PASSWORD=hunter2)``, to the argument's end (a "," or ")").
# Written without parentheses, which would end the argument: a redacted line redacts to itself.
HIDDEN_ARGUMENT = "hidden-by-the-read-gate"
_ARG_RULE = f"([(,][[:space:]]*{SECRET_NAME})=[^,)]*"
_CAMEL_ARG_RULE = f"([(,][[:space:]]*{CAMEL_SECRET_NAME})=[^,)]*"
# And an HTTP header the dialplan sends whose name says so, as HTTP writes it:
# ``Set(CURLOPT(httpheader)=Authorization: Bearer TOKEN)``, to the argument's end.
_HEADER_RULE = f"(httpheader\\)[[:space:]]*=[[:space:]]*{SECRET_NAME}[[:space:]]*:)[^,)]*"
_SED = (
    f"s/{_KEY_RULE}/\\1 {HIDDEN}/I; s/{_CAMEL_KEY_RULE}/\\1 {HIDDEN}/; "
    f"s/{_AFTER_COMMENT_RULE}/\\1 {HIDDEN}/I; s/{_CAMEL_AFTER_COMMENT_RULE}/\\1 {HIDDEN}/; "
    f"s#{_URI_RULE}#\\1{HIDDEN}@#g; "
    f"s#{_ARG_RULE}#\\1={HIDDEN_ARGUMENT}#gI; s#{_CAMEL_ARG_RULE}#\\1={HIDDEN_ARGUMENT}#g; "
    f"s#{_HEADER_RULE}#\\1 {HIDDEN_ARGUMENT}#gI"
)
_KEY_RE = re.compile(python_rule(_KEY_RULE).encode(), re.IGNORECASE)
_CAMEL_KEY_RE = re.compile(python_rule(_CAMEL_KEY_RULE).encode())
_AFTER_COMMENT_RE = re.compile(python_rule(_AFTER_COMMENT_RULE).encode(), re.IGNORECASE)
_CAMEL_AFTER_COMMENT_RE = re.compile(python_rule(_CAMEL_AFTER_COMMENT_RULE).encode())
_URI_RE = re.compile(python_rule(_URI_RULE).encode())
_ARG_RE = re.compile(python_rule(_ARG_RULE).encode(), re.IGNORECASE)
_CAMEL_ARG_RE = re.compile(python_rule(_CAMEL_ARG_RULE).encode())
_HEADER_RE = re.compile(python_rule(_HEADER_RULE).encode(), re.IGNORECASE)


def redact(content: bytes) -> bytes:
    """``content`` with the values of secret keys and the passwords of URIs hidden, exactly as
    the gate's sed answers it (tests/test_read_gate_local.py runs the real sed against it).
    Idempotent: a redacted file redacts to itself."""
    lines = content.split(b"\n")
    out = []
    hidden = b" " + HIDDEN.encode()
    argument = b"=" + HIDDEN_ARGUMENT.encode()
    header = b" " + HIDDEN_ARGUMENT.encode()
    for line in lines:  # in the sed's order
        line = _KEY_RE.sub(lambda m: m.group(1) + hidden, line, count=1)
        line = _CAMEL_KEY_RE.sub(lambda m: m.group(1) + hidden, line, count=1)
        line = _AFTER_COMMENT_RE.sub(lambda m: m.group(1) + hidden, line, count=1)
        line = _CAMEL_AFTER_COMMENT_RE.sub(lambda m: m.group(1) + hidden, line, count=1)
        line = _URI_RE.sub(lambda m: m.group(1) + HIDDEN.encode() + b"@", line)
        line = _ARG_RE.sub(lambda m: m.group(1) + argument, line)
        line = _CAMEL_ARG_RE.sub(lambda m: m.group(1) + argument, line)
        out.append(_HEADER_RE.sub(lambda m: m.group(1) + header, line))
    return b"\n".join(out)


NO_OPENSSL = b"no-openssl"  # a key answer's public key when the host has no openssl
_MARKER_RE = re.compile(r"@sipctl-[0-9a-f]{16}@")
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass(frozen=True)
class GateReads:
    """What one layer's ``read`` asks of one host: its share of the gate's table."""

    target: str  # the target as the spec spells it (compared by TargetRef.key)
    files: tuple[str, ...] = ()
    redacted: tuple[str, ...] = ()  # files of the admin's: secret values hidden (redact)
    keys: tuple[str, ...] = ()  # private keys: only their sha256 and public key are answered
    programs: tuple[tuple[str, ...], ...] = ()
    scripts: tuple[tuple[str, str], ...] = ()  # (name, POSIX sh printing sections on "$m")


@dataclass
class GateTable:
    """The union of the reads of every layer (of every spec) that reaches one host."""

    files: dict[str, bool] = field(default_factory=dict)  # path -> redacted (ordered)
    keys: dict[str, None] = field(default_factory=dict)
    programs: dict[tuple[str, ...], None] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)

    def add(self, reads: GateReads) -> None:
        for path in reads.files:
            path = check_path(path)
            self.files[path] = self.files.get(path, False)
        for path in reads.redacted:
            self.files[check_path(path)] = True  # hidden for one layer: hidden for all
        for path in reads.keys:
            self.keys[check_path(path)] = None
        # a key is never handed out as a file, whoever asks (every path here is canonical)
        for path in [p for p in self.files if p in self.keys]:
            del self.files[path]
        for argv in reads.programs:
            program_line(argv)  # checks the words
            self.programs[tuple(argv)] = None
        for name, script in reads.scripts:
            if not _NAME_RE.fullmatch(name):
                raise ValueError(f"sipctl bug: {name!r} is not a gate script name")
            self.scripts[name] = script


class GateError(ValueError):
    """A value that cannot be a line of the gate's table (a newline in a word, ...)."""


def check_path(path: str) -> str:
    """``path`` in its canonical spelling (the table's and the request's: one per file)."""
    if not path.startswith("/") or any(c in path for c in "\n\r\x00"):
        raise GateError(f"{path!r} is not an absolute path on one line")
    return canonical_path(path)


def program_line(argv: Sequence[str]) -> str:
    if not argv or any(c in word for word in argv for c in "\n\r\x00"):
        raise GateError(f"a program's words may not hold a line break or NUL: {list(argv)!r}")
    return "p " + quoted(argv)


def read_only_login(env: Mapping[str, str]) -> bool:
    """True when this process logs in to hosts with the read-only key (``READ_ONLY_ENV``)."""
    return env.get(READ_ONLY_ENV, "").strip().lower() in ("1", "yes", "true")


def refuse_apply(env: Mapping[str, str]) -> None:
    """Refuse an apply at once, before any lock or write, when the login is read-only."""
    if read_only_login(env):
        raise RefusedError(
            f"{READ_ONLY_ENV} is set: this job logs in to hosts with the read-only plan key, "
            "which cannot write, take a host lock or run a command; nothing was done",
            hint=f"apply from the job that has the write credentials, without {READ_ONLY_ENV}",
        )


class GatedTransport(Protocol):
    """An SSH transport whose login is read-only (``ssh.SshTransport`` with READ_ONLY_ENV)."""

    read_only: bool

    def gate_script(self, name: str, timeout: float) -> tuple[str, str, int, str]: ...

    def gate_read(
        self,
        paths: Sequence[str],
        keys: Sequence[str],
        programs: Sequence[Sequence[str]],
        *,
        script: str | None = None,
        timeout: float = ...,
    ) -> tuple[
        dict[str, HostFile], list[PublicKeyAnswer], list[CommandResult], tuple[str, str] | None
    ]: ...


def gated(transport: HostTransport) -> GatedTransport | None:
    """``transport`` when its reads go through a read gate (it says so: ``read_only``), else
    None (without importing the SSH module for the other transports)."""
    return cast(GatedTransport, transport) if transport.read_only else None


# -- the request -------------------------------------------------------------------------------


def request(
    marker: str,
    *,
    files: Sequence[str] = (),
    keys: Sequence[str] = (),
    programs: Sequence[Sequence[str]] = (),
    script: str | None = None,
) -> bytes:
    """The request lines (see the module's docstring)."""
    if not _MARKER_RE.fullmatch(marker):
        raise GateError(f"sipctl bug: {marker!r} is not a gate marker")
    lines = [f"{SSH_COMMAND} {marker}"]
    lines += [f"f {check_path(p)}" for p in files]
    if files or keys:
        lines.append(".")
    lines += [f"k {check_path(p)}" for p in keys]
    lines += [program_line(argv) for argv in programs]
    if script is not None:
        lines.append(f"s {script}")
    lines.append("end")
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class PublicKeyAnswer:
    """What the gate tells of a private key: never the key itself."""

    path: str
    exists: bool
    sha256: str | None = None  # of the key file's bytes (the plan's fingerprint of it)
    public_pem: bytes | None = None  # None: not a key openssl could read, or no openssl
    mode: int | None = None
    problem: str | None = None  # "a symbolic link", "not readable", ...


def parse_keys(output: bytes, marker: str, keys: Sequence[str]) -> list[PublicKeyAnswer]:
    """The answers for ``keys``: the marker lines after the files' END line, in order."""
    prefix = marker.encode() + b" "
    _, _, tail = output.partition(prefix + b"END\n")
    lines = [line[len(prefix) :] for line in tail.split(b"\n") if line.startswith(prefix)]
    if len(lines) < len(keys):
        raise ValueError("the gate did not answer for every key")
    found: list[PublicKeyAnswer] = []
    why = {"L": "reached through a symbolic link", "D": "not a regular file", "E": "not readable"}
    for path, raw in zip(keys, lines, strict=False):
        words = raw.decode("ascii", "replace").split()
        if words[:2] == ["k", "M"]:
            found.append(PublicKeyAnswer(path, False))
        elif words[:1] == ["k"] and len(words) == 2 and words[1] in why:
            found.append(PublicKeyAnswer(path, True, problem=why[words[1]]))
        elif words[:1] == ["K"] and len(words) == 5:
            public = (
                None
                if words[4] == "-"
                else NO_OPENSSL
                if words[4] == NO_OPENSSL.decode()
                else base64.b64decode(words[4], validate=True)
            )
            found.append(PublicKeyAnswer(path, True, words[3], public, int(words[1], 8)))
        else:
            raise ValueError(f"garbled answer for {path}")
    return found


# -- the gate ----------------------------------------------------------------------------------

_HEAD = r"""set -u
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
refuse() { printf 'sipctl-read-gate: refused: %s\n' "$1" >&2; exit __REFUSED__; }
if [ "${SSH_ORIGINAL_COMMAND-}" != '__COMMAND__' ]; then
  refuse "this key only answers sipctl's read requests (protocol __PROTOCOL__), no commands"
fi
say() { printf '%s %s\n' "$m" "$*"; }
# opened PATH REAL PREFIX: fd 3 is PATH, opened once, then checked through /proc: a regular
# file whose real path is REAL (PATH without "//", "/./", "dir/.."), so no symbolic link
# was followed anywhere; REAL "-": a kernel file (/proc/net is a link to self/net, and no one
# can make links there). Else the answer is PREFIX M (missing), L (a link), D (not a regular
# file) or E (not readable), and the status is 1.
opened() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then say "${3}M"; return 1; fi
  if [ -L "$1" ]; then say "${3}L"; return 1; fi
  if [ ! -f "$1" ]; then say "${3}D"; return 1; fi
  if ! { command exec 3<"$1"; } 2>/dev/null; then say "${3}E"; return 1; fi
  if [ "$2" != - ]; then
    real=$(readlink /proc/self/fd/3 2>/dev/null) || real=
    if [ "$real" != "$2" ]; then say "${3}L"; return 1; fi
  fi
  if ! meta=$(stat -L -c '%a %Y' /proc/self/fd/3 2>/dev/null) || [ ! -f /proc/self/fd/3 ]; then
    say "${3}E"; return 1
  fi
}
file() ( # file PATH REAL: the answer of files.py's read script, for one exact path
  opened "$1" "$2" '' || exit 0
  say "F $meta"
  base64 <&3 || exit 70
  say .
)
redacted() ( # redacted PATH REAL: the file with the values of secret keys hidden; no hash
  # of the file itself leaves (it would tell a short secret: plan hashes what it is sent)
  opened "$1" "$2" '' || exit 0
  say "R $meta -"
  sed -E '__SED__' < /proc/self/fd/3 | base64 || exit 70
  say .
)
key() ( # key PATH REAL: a private key's mode, mtime, sha256 and public key; never the key
  opened "$1" "$2" 'k ' || exit 0
  sum=$(sha256sum < /proc/self/fd/3 | cut -d ' ' -f 1)
  if command -v openssl >/dev/null 2>&1; then
    pub=$(openssl pkey -pubout -passin pass: < /proc/self/fd/3 2>/dev/null | base64 | tr -d '\n')
  else
    pub=no-openssl
  fi
  say "K $meta $sum ${pub:--}"
)
prog() { # the table's words: the program and its arguments (never the request's)
  "$@" </dev/null 2>&1
  printf '\n%s %d\n' "$m" "$?"
}
"""

_MAIN = r"""
serve() {
  IFS= read -r head || refuse "empty request"
  case $head in
    'sipctl-read __PROTOCOL__ @sipctl-'__HEX16__'@') ;;
    *) refuse "not a read request of protocol __PROTOCOL__ (sipctl newer than this gate?)" ;;
  esac
  m=${head#'sipctl-read __PROTOCOL__ '}
  n=0
  nl='
'
  lines=$nl
  while :; do
    IFS= read -r line || refuse "the request ended before its end line"
    n=$((n + 1))
    [ "$n" -le __MAX_LINES__ ] || refuse "more than __MAX_LINES__ lines"
    [ "$line" != end ] || break
    if ! entry check "$line"; then
      refuse "line $n is not in this gate's table: $(printf '%.300s' "$line")"
    fi
    # each table line is answered at most once: a request costs at most one pass over the
    # table, however long it is
    case $lines in *"$nl$line$nl"*) refuse "line $n repeats an earlier line" ;; esac
    lines="$lines$line$nl"
  done
  printf '%s' "$lines" | while IFS= read -r line; do [ -z "$line" ] || entry run "$line"; done
}
head -c __MAX_BYTES__ | serve
"""


def render_gate(table: GateTable, *, title: str, sources: Sequence[str] = ()) -> str:
    """The gate: POSIX sh, for ``command=`` in the authorized_keys of the plan's key;
    ``sources``: the specs it answers for (one comment line each)."""
    q = shlex.quote
    out = [
        "#!/bin/sh",
        f"# sipctl read gate (protocol {PROTOCOL}) for {_one_line(title)}",
        *(f"#   from {_one_line(source)}" for source in sources),
        "# Rendered by `sipctl read-gate`; render it again whenever the spec changes (a plan",
        "# through an outdated gate is refused, naming the line). Install it root-owned, 0755,",
        f"# as {GATE_PATH}, and tie the plan job's key to it in root's authorized_keys:",
        f'#   command="{GATE_PATH}",restrict,from="RUNNER-ADDRESSES" ssh-ed25519 AAAA...',
        "# It reads one request on stdin. Every line must EQUAL a line of the table below",
        "# (quoted case patterns match literally); the whole request is checked before",
        "# anything runs, and each line runs this file's own words, never the request's.",
        "# Files are opened once and refused when reached through a symbolic link.",
    ]
    head = (
        _HEAD.replace("__SED__", _SED)
        .replace("__REFUSED__", str(GATE_REFUSED))
        .replace("__COMMAND__", SSH_COMMAND)
        .replace("__PROTOCOL__", str(PROTOCOL))
    )
    out.append(head)
    for name, script in table.scripts.items():
        fn = "script_" + name.replace("-", "_")
        out.append(f"{fn}() {{ # s {name}: sections of a fixed script, boundary $m")
        out.append(script.rstrip("\n"))
        out.append("}")
    out.append("entry() { # entry check|run LINE: 0 when LINE is in the table; run: answer it")
    out.append("  case $2 in")
    out.append('    .) [ "$1" = check ] || say END ;;')
    for path, hidden in table.files.items():
        answer = "redacted" if hidden else "file"
        out.append(f'    {q("f " + path)}) [ "$1" = check ] || {answer} {q(path)} {_real(path)} ;;')
    for path in table.keys:
        out.append(f'    {q("k " + path)}) [ "$1" = check ] || key {q(path)} {_real(path)} ;;')
    for argv in table.programs:
        out.append(f'    {q(program_line(argv))}) [ "$1" = check ] || prog {quoted(argv)} ;;')
    for name in table.scripts:
        fn = "script_" + name.replace("-", "_")
        out.append(f'    {q("s " + name)}) [ "$1" = check ] || {fn} ;;')
    out.append("    *) return 1 ;;")
    out.append("  esac")
    out.append("  return 0")
    out.append("}")
    main = (
        _MAIN.replace("__PROTOCOL__", str(PROTOCOL))
        .replace("__HEX16__", "[0-9a-f]" * 16)
        .replace("__MAX_LINES__", str(MAX_LINES))
        .replace("__MAX_BYTES__", str(MAX_REQUEST_BYTES))
    )
    out.append(main.lstrip("\n"))
    return "\n".join(out)


def authorized_keys_line(
    public_key: str, sources: Iterable[str], gate_path: str = GATE_PATH
) -> str:
    """The line for root's authorized_keys that ties ``public_key`` to the gate."""
    words = public_key.strip().split()
    if len(words) < 2 or not re.fullmatch(r"(ssh|ecdsa|sk)-[A-Za-z0-9@.-]+", words[0]):
        raise GateError("not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA... comment')")
    if not re.fullmatch(r"[A-Za-z0-9+/=]+", words[1]):
        raise GateError("not an OpenSSH public key: its second word is not base64")
    if not re.fullmatch(r"/[\w./-]+", gate_path):
        raise GateError(f"{gate_path!r} is not an absolute path for command=")
    options = [f'command="{gate_path}"', "restrict"]
    allowed = [s.strip() for s in sources if s.strip()]
    for source in allowed:
        if not re.fullmatch(r"[0-9A-Za-z.:/*?!-]+", source):
            raise GateError(f"{source!r} is not an address, CIDR or host pattern for from=")
        _check_cidr(source)
    if allowed:
        options.append(f'from="{",".join(allowed)}"')
    return f"{','.join(options)} {words[0]} {words[1]} sipctl-plan-read-only"


def _check_cidr(source: str) -> None:
    """A from= entry with a '/' is a network sshd must be able to read: '192.0.2.0/33' or
    '192.0.2.7/24' (host bits set) would make sshd refuse the key at every login."""
    if "/" not in source:
        return
    import ipaddress

    network = source.removeprefix("!")
    try:
        ipaddress.ip_network(network, strict=True)
    except ValueError:
        try:
            meant = f" (did you mean {ipaddress.ip_network(network, strict=False)}?)"
        except ValueError:
            meant = ""
        raise GateError(f"{source!r} is not a network for from={meant}") from None


def _real(path: str) -> str:
    """The real path a file of the table must have when opened (quoted), or "-" for the
    kernel's files, which are reached through /proc's own links."""
    if is_kernel_file(path):
        return "-"
    return shlex.quote(canonical_path(path))


def _one_line(text: str) -> str:
    return peer_words(text, 200)
