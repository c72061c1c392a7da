"""Business cards: what ``sipctl render --dir`` writes under ``cards/``. Pure.

For every user and room of the spec (the name as the spec writes it):

- ``<name>.vcf``: a vCard 4.0 (RFC 6350) with the display name (``cards.names``, else the
  name), ``cards.organization``, and the SIP address twice: ``IMPP:sip:<name>@<domain>``
  (for address books that know SIP) and ``TEL;VALUE=uri:sip:...`` (for phones that dial any
  URI, RFC 6350 6.4.1);
- ``<name>.svg`` and ``<name>.png``: a QR code of ``sip:<name>@<domain>``, dark on white, so
  it reads on any paper;
- ``index.html``: every card on one page, to print or to put online (it loads nothing but
  the files beside it).

The QR codes come from ``segno`` (pure Python, no other dependency), an optional extra:
``pip install 'sipctl[cards]'``. Without it the vCards are still written and
:func:`qr_codes` raises :class:`CardsExtraMissing`, whose message says how to install it.
"""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING
from urllib.parse import quote

from sipctl.errors import SipctlError
from sipctl.schemas.names import display_domain

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

CARDS_DIR = "cards"  # under ``sipctl render --dir``; also beside the click-to-call page
PRODID = "-//sipctl//business cards//EN"
# RFC 6350 3.2: a content line is folded at 75 octets, the next line starts with a space.
_FOLD_OCTETS = 75
QR_ERROR_LEVEL = "m"  # 15 % of the code may be lost (a smudge, a fold) and it still reads
SVG_SCALE = 4  # pixels per module of the SVG (it scales without loss anyway)
PNG_SCALE = 8  # 8 px per module: a 29-module code is 296 px with its border


class CardsExtraMissing(SipctlError):
    """The QR code library is not installed."""


def sip_address(spec: Spec, name: str) -> str:
    """``sip:<name>@<domain>``: the address a card carries (names need no escaping: a user
    name is letters, digits and ``. _ + * ~``, all allowed in a SIP URI's user part)."""
    return f"sip:{name}@{spec.domain}"


def shown_address(spec: Spec, name: str) -> str:
    """``sip_address`` as a person reads it: an international domain in its Unicode form
    (the link and the QR code keep the ASCII address)."""
    return f"sip:{name}@{display_domain(spec.domain)}"


def card_names(spec: Spec) -> tuple[str, ...]:
    """Every name that gets a card: the users, then the rooms, as the spec writes them."""
    return (*spec.users, *(room for room in spec.rooms if room not in spec.users))


def display_name(spec: Spec, name: str) -> str:
    """``cards.names`` of this name (any case), else the name itself."""
    if spec.cards is None or not spec.cards.names:
        return name
    return _display_names(spec).get(name.lower(), name)


def _display_names(spec: Spec) -> dict[str, str]:
    """``cards.names`` by lower-case name (validate refuses two that differ only in case),
    made once per spec: a page of 10,000 names asks it 10,000 times."""
    cards = spec.cards
    assert cards is not None
    cached = _NAMES_CACHE.get("last")
    if cached is None or cached[0] is not cards:
        cached = (cards, {key.lower(): value for key, value in cards.names.items()})
        _NAMES_CACHE["last"] = cached
    return cached[1]


_NAMES_CACHE: dict[str, tuple[object, dict[str, str]]] = {}


def file_stem(name: str) -> str:
    """A card's file name without its suffix: the name in lower case (one per name)."""
    return name.lower()


def card_href(name: str, suffix: str) -> str:
    """The relative link to one of a name's card files (``*`` and ``+`` escaped)."""
    return quote(f"{file_stem(name)}{suffix}", safe="")


def _escape(text: str) -> str:
    """A vCard text value (RFC 6350 3.4): backslash, comma and semicolon escaped. Spec
    values carry no line breaks (the loader refuses them everywhere)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")


def _fold(line: str) -> str:
    """Fold one content line at 75 octets without splitting a UTF-8 character."""
    if len(line) * 4 <= _FOLD_OCTETS or len(line.encode("utf-8")) <= _FOLD_OCTETS:
        return line  # nearly every line: no need to walk it (a plan renders every card)
    out: list[str] = []
    current, size, limit = "", 0, _FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, _FOLD_OCTETS
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def vcard(spec: Spec, name: str) -> str:
    """The vCard 4.0 of one user or room (CRLF line ends, as RFC 6350 says)."""
    address = sip_address(spec, name)
    lines = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        f"PRODID:{PRODID}",
        # A room is a group of people meeting; a user is one person (or one role).
        f"KIND:{'individual' if name in spec.users else 'group'}",
        f"FN:{_escape(display_name(spec, name))}",
    ]
    if spec.cards is not None and spec.cards.organization is not None:
        lines.append(f"ORG:{_escape(spec.cards.organization)}")
    lines += [f"IMPP:{address}", f"TEL;VALUE=uri:{address}", "END:VCARD"]
    return "".join(_fold(line) + "\r\n" for line in lines)


def vcards(spec: Spec) -> dict[str, str]:
    """``<name>.vcf`` -> text, for every name (no extra needed)."""
    return {f"{file_stem(name)}.vcf": vcard(spec, name) for name in card_names(spec)}


def qr_codes(spec: Spec) -> dict[str, bytes]:
    """``<name>.svg`` and ``<name>.png`` -> bytes: each name's SIP address as a QR code.

    Raises :class:`CardsExtraMissing` without ``segno``.
    """
    try:
        import segno
    except ImportError:
        raise CardsExtraMissing(
            "QR codes for the business cards need the cards extra: pip install 'sipctl[cards]'"
            " (the vCards were written without it)"
        ) from None
    files: dict[str, bytes] = {}
    for name in card_names(spec):
        address = sip_address(spec, name)
        code = segno.make(address, error=QR_ERROR_LEVEL, micro=False)
        svg, png = io.BytesIO(), io.BytesIO()
        code.save(svg, kind="svg", scale=SVG_SCALE, light="white", title=address)
        code.save(png, kind="png", scale=PNG_SCALE, light="white")
        files[f"{file_stem(name)}.svg"] = svg.getvalue()
        files[f"{file_stem(name)}.png"] = png.getvalue()
    return files


def index_html(spec: Spec) -> str:
    """cards/index.html: one card per name, its QR code, address and vCard; prints one card
    per box and loads nothing but the files beside it."""
    organization = spec.cards.organization if spec.cards is not None else None
    cards: list[str] = []
    for name in card_names(spec):
        address = html.escape(sip_address(spec, name))
        readable = html.escape(shown_address(spec, name))
        shown = html.escape(display_name(spec, name))
        org = f'\n    <p class="org">{html.escape(organization)}</p>' if organization else ""
        cards.append(
            f'  <section class="card" data-sipctl-card="{html.escape(name)}">\n'
            f'    <img src="{card_href(name, ".svg")}" alt="QR code of {readable}" '
            'width="160" height="160">\n'
            f"    <h2>{shown}</h2>{org}\n"
            f'    <p class="address"><a href="{address}">{readable}</a></p>\n'
            f'    <p class="files"><a href="{card_href(name, ".vcf")}">vCard</a> · '
            f'<a href="{card_href(name, ".png")}">QR code (PNG)</a></p>\n'
            "  </section>"
        )
    title = html.escape(f"Business cards of {display_domain(spec.domain)}")
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<!-- Written by sipctl (sipctl render): print it, or put it online with the files "
        "beside it. -->\n"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; '
        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'\">\n"
        f"<title>{title}</title>\n"
        "<style>\n"
        "body { font-family: sans-serif; margin: 1em; }\n"
        ".cards { display: flex; flex-wrap: wrap; gap: 1em; }\n"
        ".card { border: 1px solid #999; border-radius: 6px; padding: 1em; width: 16em; "
        "break-inside: avoid; }\n"
        ".card h2 { margin: 0.3em 0 0; font-size: 1.2em; }\n"
        ".card p { margin: 0.2em 0; }\n"
        "@media print { .files { display: none; } }\n"
        "</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n"
        '<div class="cards">\n' + "\n".join(cards) + "\n</div>\n</body>\n</html>\n"
    )


def card_files(spec: Spec) -> dict[str, bytes]:
    """Every file of ``cards/`` (vCards, QR codes, index.html). Raises
    :class:`CardsExtraMissing` without ``segno``; :func:`vcards` alone needs nothing."""
    files: dict[str, bytes] = {name: text.encode() for name, text in vcards(spec).items()}
    files.update(qr_codes(spec))
    files["index.html"] = index_html(spec).encode()
    return files
