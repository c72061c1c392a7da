"""A peer's words are cut for a message (``peer_words``); a secret the peer echoed may lie
across the cut, and what the cut left of it must not be shown (``scrubbed``).

Proven through the real octoDNS PowerDNS plugin against a loopback API that echoes the API
key in its error body at every place around sipctl's cut, and as a property of the two
functions over any secret and any text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from octodns_specs import PDNS_KEY_ENV, pdns_spec

from sipctl.cli import run
from sipctl.output import peer_words, scrubbed

KEY = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"


class EchoingApi:
    """A loopback HTTP API refusing every request (422) with an error that repeats the
    request's X-API-Key after ``pad`` characters, as a careless or hostile API may."""

    def __init__(self) -> None:
        self.pad = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                key = self.headers.get("X-API-Key", "")
                error = "x" * outer.pad + f" key {key} refused"
                body = json.dumps({"error": error}).encode()
                self.send_response(422)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]


@pytest.fixture
def echoing_api() -> Iterator[EchoingApi]:
    api = EchoingApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()
    thread.join(5)


def test_an_api_key_echoed_across_the_cut_is_never_shown_in_part(
    echoing_api: EchoingApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec("echo.test", echoing_api.port))
    monkeypatch.setenv(PDNS_KEY_ENV, KEY)
    # sipctl keeps 300 characters of the provider's reason: the key's place runs across it
    for pad in range(260, 300, 3):
        echoing_api.pad = pad
        for args in (["plan", "-f", str(spec)], ["plan", "--json", "-f", str(spec)]):
            assert run(args) == 1
            out, err = capsys.readouterr()
            shown = out + err
            assert "refused the change set" in shown, shown
            for length in range(4, len(KEY) + 1):
                assert KEY[:length] not in shown, (pad, args, shown)


def test_a_secret_with_a_line_break_is_masked_as_a_library_quotes_it(
    echoing_api: EchoingApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An API key copied with its line break: requests refuses it as a header value and
    quotes it with the break escaped ('KEY\\n'), which is not the secret as the environment
    holds it."""
    spec = tmp_path / "sipctl.yaml"
    spec.write_text(pdns_spec("echo.test", echoing_api.port))
    monkeypatch.setenv(PDNS_KEY_ENV, KEY + "\n")
    assert run(["plan", "-f", str(spec)]) == 1
    out, err = capsys.readouterr()
    assert "InvalidHeader" in err, err
    assert KEY[:4] not in out + err, err


# A secret of upper-case letters, digits and spaces among words that hold none of those: any
# beginning of the secret in the result is the secret's, not the words'.
_SECRETS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/= ", min_size=4, max_size=40).filter(
    lambda s: len(s.strip()) >= 4
)
_WORDS = st.text("abcdefghijklmnopqrstuvwxyz:,()\"'\n\t ", max_size=80)


@given(secret=_SECRETS, before=_WORDS, after=_WORDS, limit=st.integers(1, 150))
def test_no_beginning_of_a_secret_survives_a_cut(
    secret: str, before: str, after: str, limit: int
) -> None:
    shown = scrubbed(peer_words(before + secret + after, limit), {secret})
    one_line = " ".join(secret.split())
    for length in range(4, len(one_line) + 1):
        assert one_line[:length] not in shown


@given(words=_WORDS, limit=st.integers(1, 150))
def test_a_cut_is_marked_and_words_without_a_secret_are_kept(words: str, limit: int) -> None:
    one_line = " ".join(words.split())
    shown = peer_words(words, limit)
    assert shown == one_line if len(one_line) <= limit else shown == one_line[:limit] + "..."
    assert scrubbed(shown, {"SECRET"}) == shown
