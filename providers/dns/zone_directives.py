"""Where a zone file's directives (``$INCLUDE``, ``$GENERATE``, ...) are, found as
dnspython's zone reader finds them.

``dns.zonefile.Reader.read`` walks a zone entry by entry with its tokenizer: a directive is
the first token of an entry. sipctl needs two facts of that walk before dnspython reads the
zone (the files an ``$INCLUDE`` opens, the records a ``$GENERATE`` makes), and dnspython has
no hook for either. This is the one walk both use, with dnspython's own tokenizer: it finds
where directives begin and their first argument, nothing of any record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dns.tokenizer


@dataclass(frozen=True)
class Directive:
    """One directive of a zone's text and its first argument."""

    name: str  # upper case: $INCLUDE, $GENERATE, $ORIGIN, $TTL
    line: int  # 1-based, as dnspython's tokenizer counts lines
    start: int  # where the directive's word begins in the text (characters)
    end: int  # just past its first argument (a quoted argument's closing quote included)
    argument: dns.tokenizer.Token


def directives(text: str, filename: str) -> Iterator[Directive]:
    """The directives of ``text`` in order. Where the tokenizer fails the walk stops:
    dnspython fails at the same token, before it reaches any later directive, and says
    why itself."""
    import dns.exception
    import dns.tokenizer

    tok = dns.tokenizer.Tokenizer(text, filename)

    def offset() -> int:  # where the tokenizer is in ``text`` (a delimiter it put back)
        return int(tok.file.tell()) - (1 if tok.ungotten_char else 0)

    try:
        while True:
            token = tok.get(True, True)  # leading whitespace and comments, as Reader asks
            if token.is_eof():
                return
            if token.is_identifier() and token.value.startswith("$"):
                line, start = tok.line_number, offset() - len(token.value)
                argument = tok.get()
                end = offset()
                if argument.is_quoted_string() and text[end : end + 1] == '"':
                    end += 1  # the closing quote, which the tokenizer put back
                yield Directive(token.value.upper(), line, start, end, argument)
                token = argument
            while not token.is_eol_or_eof():  # the rest of the entry
                token = tok.get()
            if token.is_eof():
                return
    except dns.exception.DNSException:
        return
