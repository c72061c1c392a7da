"""Two customers' click-to-call pages in a real headless Chromium, through one real Asterisk 22.

The host's file has WSS; customers a.example and b.example each have a page and a
``director`` at 105, in their own phones' context (a's 105 is the phone on phone_port,
b's the one on opus_phone_port). Each page is served from its customer's directory under
one web root, as the host publishes them; a click on ``director`` rings that customer's
phone and no other, through the host's browsers' guest endpoint.
"""

from __future__ import annotations

import functools
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.asterisk import TEST_CERT_FILE, TEST_KEY_FILE, AsteriskInstance
from fixtures.certs import WSS_HOST, ca_file
from fixtures.common import free_port
from fixtures.hosting import customer_spec, host_spec, write_hoster
from fixtures.rtp_phone import AnsweringPhone
from fixtures.waiting import wait_until
from test_webrtc_browser import start_chromium, wait_for

from sipctl.reconciler.render.webrtc import site_files
from sipctl.reconciler.verify.run import run_verify
from sipctl.schemas.loader import load_spec

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
def hoster(hosting_pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host with its two customers, applied."""
    host = host_spec(
        hosting_pbx,
        transports={"udp": {"port": hosting_pbx.sip_port}, "wss": {"port": hosting_pbx.wss_port}},
        servers=[{"host": WSS_HOST, "ipv4": ["127.0.0.1"]}],
        asterisk=hosting_pbx.spec_section(
            tls={"cert_file": TEST_CERT_FILE, "key_file": TEST_KEY_FILE}
        ),
        webrtc={},
    )
    customers = {n: customer_spec(n, webrtc={"page": {"title": f"Call {n}"}}) for n in "ab"}
    return write_hoster(tmp_path_factory.mktemp("hoster"), host, customers)


@pytest.fixture(scope="module")
def site(hoster: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every customer's page, as the host publishes them, served on loopback."""
    root = tmp_path_factory.mktemp("www")
    for name, text in site_files(load_spec(hoster / "pbx1.yaml").spec).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    # the pages call through the host's one copy of SIP.js, beside no page of its own
    assert [str(p.relative_to(root)) for p in root.rglob("sip.js")] == [
        "sipctl-shared/vendor/sip.js"
    ]
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.parametrize(("domain", "which"), [("a.example", 0), ("b.example", 1)])
def test_each_customers_page_rings_its_own_director(
    hosting_pbx: AsteriskInstance, site: str, browser: Any, domain: str, which: int
) -> None:
    hosting_phones = (
        AnsweringPhone(hosting_pbx.phone_port),
        AnsweringPhone(hosting_pbx.opus_phone_port),
    )
    try:
        browser.get(f"{site}/{domain}/index.html")
        assert browser.title == f"Call {domain[0]}"
        start = hosting_pbx.log_size(hosting_pbx.full_log_path)
        browser.find_element("css selector", '[data-sipctl-call="director"]').click()
        wait_for(browser, "connected to director")
        full = hosting_pbx.log_since(start, hosting_pbx.full_log_path)
        # the host's browsers' endpoint took the call; the called domain chose the customer
        assert "sipctl-browsers" in full, full
        assert f"sipctl-guest-{domain}" in full, full
        rang, other = hosting_phones[which], hosting_phones[1 - which]
        assert len(rang.invites) == 1 and not other.invites
        browser.find_element("css selector", "[data-sipctl-hangup]").click()
        wait_for(browser, "call ended")
        wait_until(lambda: rang.byes, "the phone's BYE")
        assert rang.byes == 1
    finally:
        for phone in hosting_phones:
            phone.close()


def test_verify_of_a_customer_asks_the_hosts_websocket(
    hosting_pbx: AsteriskInstance, hoster: Path
) -> None:
    """DNS is asked of a port where nothing answers: the WebSocket check stands on its own,
    at the host's wss:// host, as the customer's page calls."""
    report = run_verify(
        load_spec(hoster / "b.yaml"),
        f"127.0.0.1:{free_port()}",
        timeout=3.0,
        ssl_context=ssl.create_default_context(cafile=str(ca_file())),
    )
    assert [w["statuses"] for w in report.wss] == [{"director": 200}], report.wss
    assert f"WebSocket: wss://{WSS_HOST}:{hosting_pbx.wss_port}/ws" in report.to_text()
