"""The click-to-call page, derived from the spec: a pure function (reads only package data).

``page_files(spec)`` is the whole page: ``index.html`` (the spec's title, one
``data-sipctl-call`` button per callable name, the status element, the hang-up button),
``sipctl-call.js`` and ``sipctl-call.css`` (the page's own logic and look), and
``vendor/sip.js`` with ``vendor/LICENSE.sip.js`` (SIP.js, rebuilt by
``scripts/vendor-sipjs``), and ``cards/<name>.vcf``, the vCard each name links
(``reconciler/render/cards.py``). Nothing is loaded from another host; the page's
Content-Security-Policy lets it connect to the PBX's ``wss://`` URL and nowhere else.

The browser calls ``sip:<name>@<domain>`` over ``wss://<webrtc host>:<port>/ws`` as
``sip:guest@webrtc.<domain>``: that From host selects the browsers' guest endpoint
(``reconciler/render/asterisk.py``). Spec values reach the HTML escaped; names are user
names (no quotes or markup possible) and land in attributes and text only.

On a host of many customers (``hosting``) each customer file with a ``webrtc`` section has
a page of its own (``page_view``): its names, title and domain, the host's ``wss://`` URL,
and the From of the host's browsers' guest endpoint (``sip:guest@webrtc.<host domain>``),
whose guest context routes by the called domain as for any guest. The host publishes
them all under its web root, each in a directory named by its customer's domain
(``customer_page_dir``): its ``index.html`` and cards, which are the customer's own. The
static files (SIP.js alone is 273 KB) are the same for every page, so the host publishes
them once, in ``SHARED_DIR`` beside the customers' directories, and each customer's page
links them there (``../sipctl-shared/sipctl-call.js``, which imports ``./vendor/sip.js``
beside itself): 1,000 customers hold one copy, not 1,000. They are the host's files, in
its record like the pages; a customer whose file is gone has its own files taken down, never
the shared ones (they go with the last page). A page of a single company, and a customer's
page rendered from its own file, keep every file beside their ``index.html``.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from sipctl.reconciler.render.asterisk import webrtc_from_host
from sipctl.reconciler.render.cards import CARDS_DIR, card_href, file_stem, vcard
from sipctl.reconciler.resources import Address, Resource
from sipctl.schemas.values import split_publish

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec

LAYER = "webrtc"
ASSETS = "webrtc_page"
PAGE_DIR = "webrtc"  # under ``sipctl render --dir``
STATIC_FILES = ("sipctl-call.js", "sipctl-call.css", "vendor/sip.js", "vendor/LICENSE.sip.js")
# On a host, the customers' pages' one copy of STATIC_FILES, under the web root. No dot in
# its name: a customer's directory is its domain, which always has one.
SHARED_DIR = "sipctl-shared"
# A directory sipctl made for a page holds one of these: a page's own index.html, or the
# shared static files' sipctl-call.js (what a removal may empty up to, and no further).
OWN_DIR_FILES = ("index.html", STATIC_FILES[0])


# The same few files for every page: a host of 1,000 customers' pages reads each once.
@functools.cache
def _asset(name: str) -> str:
    return (resources.files("sipctl.reconciler.render") / ASSETS / name).read_text("utf-8")


def page_view(spec: Spec) -> Spec:
    """The spec a page is rendered from: ``spec`` itself, or for a host's customer the
    customer with its host's parts of a page (WSS, the host browsers connect to, video)."""
    from sipctl.schemas.spec import Webrtc, WebrtcPage

    host = spec.served_by
    if host is None:
        return spec
    page = spec.webrtc.page if spec.webrtc is not None else WebrtcPage()
    webrtc = Webrtc.model_construct(host=host.webrtc_host(), page=page, publish=None)
    return spec.model_copy(
        update={"transports": host.transports, "asterisk": host.asterisk, "webrtc": webrtc}
    )


def page_from_host(spec: Spec) -> str:
    """The host of the From of the page's calls (and verify's WebSocket probe): it selects
    the browsers' guest endpoint of the PBX, which is the host's for a host's customer."""
    return webrtc_from_host((spec.served_by or spec).domain)


def page_from_uri(spec: Spec) -> str:
    return f"sip:guest@{page_from_host(spec)}"


def customer_page_dir(domain: str) -> str:
    """Where a customer's page goes under its host's web root (and render's webrtc/)."""
    return domain.lower()


def server_url(spec: Spec) -> str | None:
    """``wss://<host>:<port>/ws``, or None without transports.wss or a host."""
    host = spec.webrtc_host()
    if spec.transports.wss is None or host is None:
        return None
    return f"wss://{host}:{spec.transports.wss.port}/ws"


# With asterisk.video: the camera button (off until pressed: a call starts audio-only unless
# the caller chose video) and where the video shows, the remote large, the own small.
CAMERA_BUTTON = (
    '  <button type="button" class="sipctl-call__camera" data-sipctl-camera '
    'aria-pressed="false">Camera off</button>\n'
)
VIDEOS = (
    '  <div class="sipctl-call__videos" data-sipctl-videos hidden>\n'
    "    <video data-sipctl-remote-video autoplay playsinline muted></video>\n"
    "    <video data-sipctl-local-video autoplay playsinline muted></video>\n"
    "  </div>\n"
)


def content_security_policy(spec: Spec, *, meta: bool = False) -> str:
    """The page's Content-Security-Policy: its own files, the PBX's ``wss://`` URL and
    nothing else. ``frame-ancestors 'none'`` (no other site may frame the page and trick a
    visitor into calling) works only as an HTTP header, which is why the page's ``<meta>``
    leaves it out and ``server_snippets`` sends the whole policy."""
    policy = [
        "default-src 'self'",
        f"connect-src {server_url(spec) or chr(39) + 'none' + chr(39)}",
        "media-src 'self' blob: mediastream:",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    if not meta:
        policy.append("frame-ancestors 'none'")
    return "; ".join(policy)


# Headers a web server sends with the page: the policy above, and the same "no framing"
# for browsers that predate frame-ancestors.
def _headers(spec: Spec) -> list[tuple[str, str]]:
    return [
        ("Content-Security-Policy", content_security_policy(spec)),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]


SERVER_DIR = "server"  # under render's webrtc/: not part of the page, never published


def server_snippets(spec: Spec) -> dict[str, str]:
    """``server/nginx.conf`` and ``server/apache.conf``: the page's HTTP headers, to include
    where the web server serves the page (a ``location`` of nginx, a ``<Directory>`` or
    ``<Location>`` of Apache with mod_headers)."""
    headers = _headers(spec)
    where = spec.webrtc.publish if spec.webrtc is not None and spec.webrtc.publish else None
    about = f" (published to {where})" if where else ""
    nginx = [
        f"# sipctl: HTTP headers of the click-to-call page of {spec.domain}{about}.",
        "# Include this file in the nginx location that serves the page, e.g.",
        "#   location /call/ { include /etc/nginx/snippets/sipctl-call.conf; }",
        "# (nginx drops a server's add_header lines in a location that has its own.)",
        *(f'add_header {name} "{value}" always;' for name, value in headers),
    ]
    apache = [
        f"# sipctl: HTTP headers of the click-to-call page of {spec.domain}{about}.",
        "# Include this file in the <Directory> or <Location> that serves the page, e.g.",
        "#   <Directory /var/www/html/call> Include /etc/apache2/sipctl-call.conf </Directory>",
        "# It needs mod_headers (a2enmod headers).",
        *(f'Header always set {name} "{value}"' for name, value in headers),
    ]
    return {
        f"{SERVER_DIR}/nginx.conf": "\n".join(nginx) + "\n",
        f"{SERVER_DIR}/apache.conf": "\n".join(apache) + "\n",
    }


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def index_html(spec: Spec, assets: str = "") -> str:
    """The page; ``assets``: where its static files are, relative to it ("" beside it)."""
    server = server_url(spec) or ""
    title = spec.webrtc.page.title if spec.webrtc is not None else "Call us"
    buttons = "\n".join(
        f'    <li><button type="button" data-sipctl-call="{html.escape(name)}">'
        f"Call {html.escape(name)}</button> "
        f'<a class="sipctl-call__card" data-sipctl-card="{html.escape(name)}" '
        f'href="{CARDS_DIR}/{card_href(name, ".vcf")}" download>card</a></li>'
        for name in spec.page_names()
    )
    video = spec.asterisk is not None and spec.asterisk.video
    values = {
        "video": "yes" if video else "no",
        "camera": CAMERA_BUTTON if video else "",
        "videos": VIDEOS if video else "",
        "title": html.escape(title),
        "server": html.escape(server),
        # the attribute is in double quotes; the policy's own quotes are single ones
        "csp": html.escape(content_security_policy(spec, meta=True), quote=False),
        "domain": html.escape(spec.domain),
        "from_uri": html.escape(page_from_uri(spec)),
        "buttons": buttons,
        "assets": assets,
    }
    # One pass: a value is never searched for placeholders again (a title "{{buttons}}"
    # put the call buttons' markup into the page's <title> and heading).
    return _PLACEHOLDER.sub(lambda found: values[found.group(1)], _asset("index.html"))


def page_files(spec: Spec, shared: bool = False) -> dict[str, str]:
    """Path inside the page's directory -> text, for every file of the page: with each
    name's vCard in ``cards/``, which the page links (the QR codes stay in render's own
    ``cards/``: the page is text only, and needs no extra). ``shared``: a host's customer's
    page, whose static files are the host's one copy in ``../SHARED_DIR/``."""
    spec = page_view(spec)
    if shared:
        files = {"index.html": index_html(spec, f"../{SHARED_DIR}/")}
    else:
        files = {"index.html": index_html(spec), **shared_files()}
    for name in spec.page_names():
        files[f"{CARDS_DIR}/{file_stem(name)}.vcf"] = vcard(spec, name)
    return files


def shared_files() -> dict[str, str]:
    """The static files every page uses, by their path beside its ``index.html``."""
    return {name: _asset(name) for name in STATIC_FILES}


def site_files(spec: Spec) -> dict[str, str]:
    """Path under the web root -> text: the page of ``spec``, or on a host every
    customer's page in its own directory (customers without a webrtc section have none)
    and, while there is one, the static files they all link, once, in ``SHARED_DIR``."""
    if spec.hosting is None:
        return page_files(spec)
    pages = {
        f"{customer_page_dir(customer.domain)}/{name}": text
        for customer in spec.customers
        if customer.webrtc is not None
        for name, text in page_files(customer, shared=True).items()
    }
    if not pages:
        return {}
    return {**{f"{SHARED_DIR}/{name}": text for name, text in shared_files().items()}, **pages}


def webrtc_artefacts(spec: Spec) -> dict[str, str]:
    """Files for ``sipctl render --dir`` (written under webrtc/)."""
    view = page_view(spec)
    if view.webrtc is None or view.transports.wss is None:
        return {}
    files = site_files(spec)
    return {**files, **server_snippets(view)} if files else {}


RECORD_ADDRESS = Address(LAYER, "record", "published page")


def file_name(target: str, path: str) -> str:
    """A published file's name in plans and in sipctl's record: ``TARGET:PATH``, the
    spelling of ``webrtc.publish`` (the same path on two targets is two files)."""
    return f"{target}:{path}"


def file_address(name: str) -> Address:
    return Address(LAYER, "file", name)


def render_webrtc(spec: Spec) -> list[Resource]:
    """With ``webrtc.publish``: each page file at its published place, owned by sipctl, and
    sipctl's record of them (what a later spec with another or no ``publish`` removes).

    No payload: the provider renders the files again at apply, so a saved plan stays small.
    """
    files = published_files(spec)
    if not files:
        return []
    # A host's customers' pages hold the same static files: each distinct text is hashed
    # once (1,000 pages: 2.2 -> 0.5 s).
    known: dict[str, dict[str, object]] = {}
    for text in files.values():
        if text not in known:
            known[text] = file_value(text.encode("utf-8"))
    values = {name: dict(known[text]) for name, text in files.items()}
    resources = [Resource(file_address(name), value, None) for name, value in values.items()]
    digests = {name: str(value["sha256"]) for name, value in values.items()}
    resources.append(Resource(RECORD_ADDRESS, record_value(digests), None))
    return resources


def publish_place(spec: Spec) -> tuple[str, str] | None:
    """(target, directory) of ``webrtc.publish`` (None: the page is not published)."""
    if spec.webrtc is None or spec.webrtc.publish is None or spec.transports.wss is None:
        return None
    return split_publish(spec.webrtc.publish)


def published_files(spec: Spec) -> dict[str, str]:
    """``TARGET:PATH`` name -> text of every published file (empty without ``publish``)."""
    place = publish_place(spec)
    if place is None:
        return {}
    target, root = place
    return {
        file_name(target, f"{root.rstrip('/')}/{name}"): text
        for name, text in sorted(site_files(spec).items())
    }


def file_value(content: bytes) -> dict[str, object]:
    """A published file compares by its content's digest (plans stay short); the provider
    reads live files with the same function."""
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def record_value(digests: Mapping[str, str]) -> dict[str, object]:
    """The record's value: each file sipctl published (``TARGET:PATH``) and its sha256."""
    return {"files": dict(sorted(digests.items()))}


def describe_webrtc(kind: str, name: str, value: Any) -> dict[str, str]:
    """A published page file in a plan's words: ``webrtc page TARGET:PATH`` and its size
    (its content is compared by digest); sipctl's record of them as how many it lists."""
    if not isinstance(value, Mapping):
        return {}
    if kind == "record":
        files = value.get("files")
        count = len(files) if isinstance(files, Mapping) else 0
        return {"webrtc sipctl's record of the published page": f"{count} file(s)"}
    digest = str(value.get("sha256", ""))[:12]
    return {f"webrtc page {name}": f"{value.get('bytes')} bytes, sha256 {digest}…"}
