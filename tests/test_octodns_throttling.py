"""Throttling (and 5xx) through the real octoDNS plugins: retried with backoff, then one line.

Neither PowerDNS nor moto throttles, so a loopback HTTP server answers every request the way a
throttling API does (Route53's 400 ``Throttling`` error document; HTTP 429, as a rate-limiting
proxy in front of PowerDNS's API answers). The real plugins (octodns_route53 through botocore,
octodns_powerdns through requests) make the requests and raise their own exceptions; sipctl's
``call`` must retry those with a doubling delay, stop, and say so in one line that names the
plugin and shows no credential.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sipctl.errors import ProviderError
from sipctl.providers.dns import octodns_plugin
from sipctl.providers.dns.octodns_plugin import call

SECRET = "s3cret-Throttle-Key-9f2c"
ROUTE53_THROTTLING = (
    b'<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>0f4e-throttled</RequestId></ErrorResponse>"
)


class Throttler:
    """A loopback API that refuses every request as throttled and counts them."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def route53_throttler(monkeypatch: pytest.MonkeyPatch) -> Iterator[Throttler]:
    server = Throttler(400, ROUTE53_THROTTLING, "text/xml")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries off: count ours
    yield server
    server.close()


@pytest.fixture
def pdns_throttler() -> Iterator[Throttler]:
    server = Throttler(429, b'{"error": "Too Many Requests"}', "application/json")
    yield server
    server.close()


def _populate(plugin: object, zone_name: str) -> object:
    from octodns.zone import Zone

    zone = Zone(zone_name, [])
    return plugin.populate(zone, target=True, lenient=True)  # type: ignore[attr-defined]


def _throttled_line(plugin: object, provider: str, zone: str) -> tuple[str, list[float]]:
    slept: list[float] = []
    with pytest.raises(ProviderError) as raised:
        call(lambda: _populate(plugin, zone), f"read zone {zone}", provider, sleep=slept.append)
    return str(raised.value), slept


def _assert_backoff(slept: list[float]) -> None:
    # RETRIES sleeps, each about double the one before (with +-20% jitter), starting at BACKOFF
    assert len(slept) == octodns_plugin.RETRIES
    for n, delay in enumerate(slept):
        nominal = octodns_plugin.BACKOFF * 2**n
        assert 0.8 * nominal <= delay <= 1.2 * nominal, slept


def test_route53_throttling_is_retried_with_backoff_then_one_line(
    route53_throttler: Throttler,
) -> None:
    from octodns_route53 import Route53Provider

    provider = "octodns_route53.Route53Provider"
    plugin = Route53Provider("sipctl", access_key_id="AKIDTHROTTLE", secret_access_key=SECRET)
    line, slept = _throttled_line(plugin, provider, "mysite.test.")
    _assert_backoff(slept)
    assert route53_throttler.requests == octodns_plugin.RETRIES + 1  # one request per try
    assert line == (
        f"the DNS provider ({provider}) kept throttling: could not read zone mysite.test. after "
        f"{octodns_plugin.RETRIES} retries with backoff (Throttling: Rate exceeded); nothing "
        "more was sent. Try again later"
    )
    assert SECRET not in line and "\n" not in line


def test_powerdns_429_is_retried_with_backoff_then_one_line(pdns_throttler: Throttler) -> None:
    from octodns_powerdns import PowerDnsProvider

    provider = "octodns_powerdns.PowerDnsProvider"
    plugin = PowerDnsProvider("sipctl", host="127.0.0.1", port=pdns_throttler.port, api_key=SECRET)
    line, slept = _throttled_line(plugin, provider, "mysite.test.")
    _assert_backoff(slept)
    assert pdns_throttler.requests == octodns_plugin.RETRIES + 1
    assert line.startswith(f"the DNS provider ({provider}) kept throttling: could not read zone")
    assert "(429: Too Many Requests)" in line
    assert SECRET not in line and "\n" not in line


def test_throttling_that_ends_is_not_an_error(pdns_throttler: Throttler) -> None:
    # two throttled answers, then the API answers: the caller gets the result, two sleeps
    from octodns_powerdns import PowerDnsProvider

    plugin = PowerDnsProvider("sipctl", host="127.0.0.1", port=pdns_throttler.port, api_key=SECRET)
    slept: list[float] = []
    tries = iter([True, True, False])

    def action() -> str:
        if next(tries):
            return str(_populate(plugin, "mysite.test."))
        return "answered"

    assert call(action, "read zone mysite.test.", "x", sleep=slept.append) == "answered"
    assert len(slept) == 2 and slept[1] > slept[0]


def test_powerdns_500_is_retried_then_named_as_the_servers_failure() -> None:
    # PowerDNS on sqlite answers 500 "database is locked" when zones are written at once (the
    # many-domain run in test_octodns_powerdns meets it); the server answered: not "unreachable"
    from octodns_powerdns import PowerDnsProvider

    server = Throttler(500, b'{"error": "database is locked"}', "application/json")
    try:
        plugin = PowerDnsProvider("sipctl", host="127.0.0.1", port=server.port, api_key=SECRET)
        slept: list[float] = []
        with pytest.raises(ProviderError) as raised:
            call(
                lambda: _populate(plugin, "mysite.test."),
                "read zone mysite.test.",
                "P",
                sleep=slept.append,
            )
    finally:
        server.close()
    _assert_backoff(slept)
    line = str(raised.value)
    assert line.startswith("the DNS provider (P) kept failing on its side: could not read zone")
    assert "(500: database is locked)" in line and SECRET not in line
