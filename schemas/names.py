"""Validators for the names that travel from the spec into dialplan, DNS and config files.

Names are data, never code: every rule here exists so that no value of a spec can change
the meaning of a file sipctl writes. The rules are allowlists, not blocklists.
"""

from __future__ import annotations

import hashlib
import re

# Asterisk gives these extension names a meaning of their own (h: hangup, i: invalid, ...).
SPECIAL_EXTENSIONS = frozenset({"a", "e", "h", "i", "o", "s", "t", "T", "fax", "talk"})
# Asterisk 22 keeps 79 characters of every name sipctl writes into its files: a section of a
# config file (pjsip, confbridge and extensions.conf alike: a category's name is 80 bytes with
# its NUL, longer ones are cut), a context (AST_MAX_CONTEXT 80), an extension and the user
# part a caller dialled (AST_MAX_EXTENSION 80: res_pjsip_session copies the request URI's user
# into that many bytes), a conference (ConfBridge refuses a name of MAX_CONF_NAME = 80 or more).
# A ConfBridge profile could hold 127 (MAX_PROFILE_NAME 128) but is a config section first.
# Measured on 22 in tests/test_asterisk_name_length.py: a Goto to an extension of 80
# characters lands on its first 79. Names made from a spec's value fit through
# asterisk_name; names a caller or Asterisk must find as written are refused when longer.
MAX_DNS_NAME = 253  # characters of a name in its text form without the last dot (255 octets)
MAX_ASTERISK_NAME = 79
MAX_EXTENSION_LENGTH = MAX_ASTERISK_NAME
# Callers reach a name in any case (``Director`` rings ``director``): the dialplan holds the
# name in lower case, and looks a name dialled in another case up in lower case; where it
# cannot (``unknown_callers: not-found``, and the rooms context the internal phones reach),
# it holds one pattern that matches every case of the name (``case_pattern``). Asterisk
# cuts an extension at 255 characters (pbx_config's buffer; measured on 22: a longer pattern
# matches nothing), and each letter costs 4 (``[dD]``): a name with letters may have 63
# characters (one rule, which the JSON Schema can say too).
MAX_LETTERED_NAME_LENGTH = 63

# A SIP user part that is also a literal (non-pattern) Asterisk extension: letters, digits and
# a few marks. Excluded on purpose: a leading "_" (turns the name into a pattern), "-" and
# spaces (Asterisk strips them from extensions), "!" "[" "]" "." at the start, and every
# character that is syntax in extensions.conf or pjsip.conf: , ; ( ) [ ] { } " ' \ and
# whitespace or control characters.
_USER_RE = re.compile(r"[A-Za-z0-9+][A-Za-z0-9._+*~]*")
# The characters of a name in lower case, as Asterisk's FILTER() reads a set ("a-z" a range):
# what the guest dialplan keeps of a dialled name before it looks it up (render's
# asterisk_lookup). tests/test_asterisk_lookup.py proves it equals _USER_RE's set, folded.
LOWER_NAME_CHARACTERS = "0-9a-z._+*~"
_EXTENSION_RE = re.compile(r"[0-9]{1,20}")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_CONTEXT_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_ASTERISK_NAME - 1}}}")
_SOUND_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*(?:/[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_TSIG_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,250}[A-Za-z0-9_.])?")
# extensions.conf's own sections, and the contexts sipctl's dialplan defines for itself
# (reconciler/render: the rooms, their hangup handler, the guests' MESSAGE sink).
SIPCTL_CONTEXTS = frozenset(
    {
        "sipctl-rooms",
        "sipctl-room-events",
        "sipctl-no-guest-messages",
        "sipctl-outbound",
        "sipctl-outbound-call",
        "sipctl-outbound-names",
        "sipctl-domains",  # a hosting PBX's called domains
    }
)
# A hosting PBX's contexts of each customer: sipctl-guest-<domain>, sipctl-rooms-<domain>,
# or a digest of a long domain (32 hex digits), the one form a context name can take (a
# domain has dots). import picks sipctl-guest-2, -3... for a guest context: no digest.
SIPCTL_CONTEXT_PREFIXES = ("sipctl-guest-", "sipctl-rooms-")
_DIGEST = "[0-9a-f]{32}"
_DERIVED_CONTEXT_RE = re.compile(
    "(?:" + "|".join(re.escape(p) for p in SIPCTL_CONTEXT_PREFIXES) + ")" + _DIGEST
)
_RESERVED_CONTEXTS = frozenset({"general", "globals"}) | SIPCTL_CONTEXTS
# What a name to call may hold, in words: the error of a wrong one and the spec reference.
USER_NAME_RULE = (
    "ASCII letters (a-z, A-Z), digits and . _ + * ~ (not first, except +); no spaces, '-', "
    "quotes, brackets or dialplan pattern characters"
)
_SPECIAL_FOLDED = frozenset(name.lower() for name in SPECIAL_EXTENSIONS)


def _describe(value: str) -> str:
    return repr(value)


def check_user_name(value: str) -> str:
    """A name callers may dial: ``sip:<name>@<domain>``."""
    if not isinstance(value, str):
        raise ValueError("a user name must be a string")
    if not value:
        raise ValueError("a user name must not be empty")
    if len(value) > MAX_EXTENSION_LENGTH:
        raise ValueError(
            f"a name to call may have at most {MAX_EXTENSION_LENGTH} characters (Asterisk keeps "
            f"that many of a dialled name and cuts the rest); choose a shorter name"
        )
    if value.lower() in _SPECIAL_FOLDED:
        raise ValueError(
            f"{_describe(value)} is a special extension in Asterisk's dialplan, in any case "
            f"({', '.join(sorted(_SPECIAL_FOLDED))}); choose another name"
        )
    if not _USER_RE.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9._+*~]", c)})
        shown = ", ".join(repr(c) for c in bad) if bad else repr(value[0]) + " at the start"
        raise ValueError(
            f"{_describe(value)} is not allowed as a name to call: {shown}. Use {USER_NAME_RULE}"
        )
    if len(value) > MAX_LETTERED_NAME_LENGTH and case_pattern(value) is not None:
        raise ValueError(
            f"{_describe(value)} is too long: a name with letters may have at most "
            f"{MAX_LETTERED_NAME_LENGTH} characters (callers reach it in any case, through "
            "an Asterisk pattern that must fit 255 characters)"
        )
    return value


def asterisk_name(prefix: str, key: str, *, spare: int = 0, mark: str = "") -> str:
    """The one rule for a name sipctl makes for Asterisk from a spec's value: ``prefix + key``
    when it fits :data:`MAX_ASTERISK_NAME` with ``spare`` characters left (for a longer name
    made from this one), else ``prefix + mark`` and a digest of ``key`` (Asterisk would cut
    the name, and two cut names could be one). A name that fits is written as it always was.
    """
    if len(prefix) + len(key) + spare <= MAX_ASTERISK_NAME:
        return prefix + key
    return prefix + mark + hashlib.sha256(key.encode()).hexdigest()[:32]


def canonical_name(name: str) -> str:
    """The one spelling of a user or room name in the dialplan: lower case (callers may
    dial it in any case; two names that differ only in case are refused)."""
    return name.lower()


def case_pattern(name: str) -> str | None:
    """The Asterisk pattern that matches ``name`` in every case (``_[dD][iI]...``), None when
    the name has no letters. A user name holds no pattern character but ``.``, written
    ``[.]`` here (measured on Asterisk 22: ``_[aA][.][bB]`` matches ``A.b``, not ``AxB``)."""
    if not any(c.isalpha() for c in name):
        return None
    return "_" + "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "[.]" if c == "." else c for c in name
    )


def check_extension(value: object) -> str:
    """An internal extension: digits only (it ends up in Dial(PJSIP/<ext>))."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an extension must be digits, like 105")
    text = str(value)
    if not _EXTENSION_RE.fullmatch(text):
        raise ValueError(f"{_describe(text)} is not an extension: use 1 to 20 digits, like 105")
    return text


def is_dns_label(label: str) -> bool:
    """1 to 63 letters, digits or '-', not starting or ending with '-'."""
    return _LABEL_RE.fullmatch(label) is not None


def check_hostname(value: str) -> str:
    """A DNS host name; returned in lower case without the trailing dot."""
    if not isinstance(value, str):
        raise ValueError("a host name must be a string")
    name = value[:-1] if value.endswith(".") else value
    if not name:
        raise ValueError("a host name must not be empty")
    if len(name) > MAX_DNS_NAME:
        raise ValueError(f"a host name may have at most {MAX_DNS_NAME} characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{_describe(value)} is not a fully qualified name (like sip.example.com)")
    for label in labels:
        if not label.isascii() and label:
            raise ValueError(_international_name(value))
        if not _LABEL_RE.fullmatch(label):
            raise ValueError(
                f"{_describe(value)} is not a valid host name: label {_describe(label)} must be "
                "1 to 63 letters, digits or '-' and not start or end with '-'"
            )
        if label[:4].lower() == "xn--" and a_label_text(label) is None:
            raise ValueError(
                f"{_describe(value)} is not a valid host name: label {_describe(label)} begins "
                "with 'xn--', the mark of an international name's ASCII form, but is not one "
                "(what follows is not Punycode of a name's letters); check its spelling, or "
                "write the name in Unicode and 'sipctl validate' prints its ASCII form"
            )
    if labels[-1].isdigit():
        raise ValueError(f"{_describe(value)} looks like an address, not a host name")
    return name.lower()


def a_label_text(label: str) -> str | None:
    """The Unicode text an international label (``xn--`` and Punycode, RFC 5890's A-label)
    spells, None when ``label`` is none: what follows ``xn--`` must decode as Punycode (RFC
    3492) and encode back to itself, into visible characters, one at least not ASCII (an
    all-ASCII label is never written so). Registries and resolvers hold no other ``xn--``
    label: ``xn--zz`` decodes to nothing, ``xn--a`` to a control character, ``xn--abc-`` to
    plain ``abc``."""
    tail = label[4:].lower()
    try:
        text = tail.encode("ascii").decode("punycode")
        again = text.encode("punycode").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    if again != tail or text.isascii() or not text.isprintable():
        return None
    return text


def display_domain(name: str) -> str:
    """``name`` (a DNS name in its ASCII form, as a spec writes it) as a person reads it:
    each international label (``xn--``) in its Unicode form, ``xn--e1afmkfd.xn--p1ai`` ->
    ``пример.рф``. Only for text people read (a page's heading, a card's title): SIP URIs,
    DNS names and links keep the ASCII form, which SIP and DNS need. A label that does not
    decode to one that encodes back to it stays as it is."""
    return ".".join(_display_label(label) for label in name.split("."))


def _display_label(label: str) -> str:
    if label[:4].lower() != "xn--":
        return label
    try:
        shown = label.encode("ascii").decode("idna")
        same = shown.encode("idna").decode("ascii").lower() == label.lower()
    except UnicodeError:
        return label
    return shown if same else label


def _international_name(value: str) -> str:
    """An internationalized name is written in DNS (and so in a spec) as its ASCII form."""
    try:
        ascii_form = value.encode("idna").decode("ascii")
        # IDNA 2003 maps some names to others ('ß.de' to 'ss.de'): suggest only a form that
        # reads back as the name that was written
        same = ascii_form.encode("ascii").decode("idna") == value.lower()
        check_hostname(ascii_form)  # and one that is a host name itself
    except ValueError:  # UnicodeError too
        same = False
    if not same:
        return (
            f"{_describe(value)} is not a valid host name: a label holds ASCII letters, digits "
            "and '-' only"
        )
    return (
        f"{_describe(value)} is not a valid host name: write an international name in its "
        f"ASCII (punycode) form, {_describe(ascii_form)}"
    )


def check_context(value: str) -> str:
    if not isinstance(value, str) or not _CONTEXT_RE.fullmatch(value):
        raise ValueError(
            f"{_describe(str(value))} is not a dialplan context name: use letters, digits, "
            f"'_' and '-' (at most {MAX_EXTENSION_LENGTH})"
        )
    if value.lower() in _RESERVED_CONTEXTS or _DERIVED_CONTEXT_RE.fullmatch(value.lower()):
        raise ValueError(
            f"{_describe(value)} is reserved in extensions.conf (or by sipctl, whose own "
            f"contexts are {', '.join(sorted(SIPCTL_CONTEXTS))} and "
            f"{', '.join(p + '<digest>' for p in SIPCTL_CONTEXT_PREFIXES)}): choose another "
            "name"
        )
    return value


# The Server/User-Agent text sipctl writes as pjsip.conf's user_agent: one config value (no
# ';', no line break), a few plain words.
_HEADER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/()+-]{0,63}")
NO_VERSION = "no-version"
UNMANAGED = "unmanaged"


def check_server_header(value: str) -> str:
    if not isinstance(value, str) or not _HEADER_RE.fullmatch(value) or value != value.strip():
        raise ValueError(
            f"{_describe(str(value))} is not a header text: use 'no-version', 'unmanaged', or "
            "up to 64 letters, digits, spaces and . _ / ( ) + - (no ';')"
        )
    return value


def check_sound(value: str) -> str:
    if not isinstance(value, str) or not _SOUND_RE.fullmatch(value) or len(value) > 200:
        raise ValueError(
            f"{_describe(str(value))} is not a sound name: use a name like ss-noservice or "
            "custom/bad-user (letters, digits, '_', '-', '/'; no extension, no '..')"
        )
    return value


def check_tsig_name(value: str) -> str:
    if not isinstance(value, str) or not _TSIG_NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{_describe(str(value))} is not a TSIG key name (like sipctl or sipctl-key.)"
        )
    return value


def _lower_if_str(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# What the JSON Schema can say of each name (editors flag a bad value as it is typed); the
# checks above stay the authority, and the schema test proves the two agree on a table of
# good and bad values. Patterns are ECMA-262 regexes that Python's re reads the same way.
USER_NAME_PATTERN = "^" + _USER_RE.pattern + "$"
EXTENSION_PATTERN = "^" + _EXTENSION_RE.pattern + "$"
# One DNS label, as a pattern other patterns are built of (a zone entry of a profile too).
LABEL_PATTERN = _LABEL_RE.pattern
_LABEL = LABEL_PATTERN
# At least two labels, the last not all digits, an optional trailing dot.
HOSTNAME_PATTERN = rf"^(?=.{{1,253}}\.?$)(?:{_LABEL}\.)+(?![0-9]+\.?$){_LABEL}\.?$"
CONTEXT_PATTERN = "^" + _CONTEXT_RE.pattern + "$"
SOUND_PATTERN = "^" + _SOUND_RE.pattern + "$"
HEADER_PATTERN = "^" + _HEADER_RE.pattern + "$"
TSIG_NAME_PATTERN = "^" + _TSIG_NAME_RE.pattern + "$"


def _ci(word: str) -> str:
    """A case-insensitive regex for ``word`` (ECMA-262 has no inline (?i))."""
    # "-" stays bare: "\\-" outside a class is an error in ECMA-262's unicode mode.
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else c if c == "-" else re.escape(c)
        for c in word
    )


# What the JSON Schema says of a special extension name, in any case (spec.py's UserName).
SPECIAL_NAME_PATTERN = "^(?:" + "|".join(_ci(w) for w in sorted(_SPECIAL_FOLDED)) + ")$"
# What the JSON Schema says of a name with letters (spec.py's UserName: then maxLength).
LETTERED_NAME_PATTERN = "[A-Za-z]"

# What the JSON Schema says of a reserved context name (spec.py's ContextName).
RESERVED_CONTEXT_PATTERN = (
    "^(?:"
    + "|".join(
        [_ci(w) for w in sorted(_RESERVED_CONTEXTS)]
        + [_ci(p) + "[0-9a-fA-F]{32}" for p in SIPCTL_CONTEXT_PREFIXES]
    )
    + ")$"
)


# An entry of a host profile, as a spec names it (asterisk.program, fail2ban.program,
# dns.reload): schemas/profiles.py.
ENTRY_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ENTRY_NAME_RE = re.compile(ENTRY_NAME_PATTERN)


def check_entry_name(value: str) -> str:
    if not isinstance(value, str) or not _ENTRY_NAME_RE.fullmatch(value):
        raise ValueError(
            f"{_describe(str(value))} is not the name of a host profile entry (like default "
            "or pbx1: lower-case letters, digits, '_' and '-'); a spec names an entry of the "
            "host's /etc/sipctl/host.yaml, never a program (see: sipctl docs security)"
        )
    return value


# A label the C resolver reads as a number (decimal, octal 017, hex 0x1f): a host of such
# labels only is an address to getaddrinfo (inet_aton: 127.1, 2130706433, 0x7f000001).
_NUMERIC_LABEL_RE = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)")


def check_connect_host(host: str) -> None:
    """A host sipctl connects to (an ssh:// target's, dns.server's): a name of DNS labels,
    or an IPv4 address in its one spelling, so that the host the runner profile's ``to``
    and the probe scope compare as written is the one the resolver connects to."""
    import ipaddress

    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if all(_NUMERIC_LABEL_RE.fullmatch(label) for label in labels):
        try:
            address = ipaddress.IPv4Address(host.rstrip("."))
        except ValueError:
            address = None
        if address is None or str(address) != host:
            raise ValueError(
                f"{host!r} is not an IPv4 address as written (the resolver would read it as "
                "one): write its four numbers from 0 to 255 without leading zeros, like "
                "192.0.2.7"
            )
        return
    if len(host) > MAX_DNS_NAME or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(
            f"{host!r} is not a host name: labels of 1 to 63 letters, digits or '-' (not "
            "first or last) between single dots, like pbx.example.com"
        )
