"""The click-to-call page in a real headless Chromium, calling through the real Asterisk 22.

The page is rendered by sipctl and served by a local HTTP server; Chromium (fake microphone,
the PBX's name mapped to loopback, the test certificate pinned) loads it and clicks. The
call must travel the whole way: WSS into Asterisk, the browsers' guest endpoint, the guest
context, PJSIP/105, the phone answering; RTP is counted at the phone and in the browser.
Codecs (``transports.wss.opus``, the default): the browser talks Opus; phone 107 has Opus
too and gets it end to end, untranscoded; phone 105 has ulaw only and is bridged through
Asterisk's Opus transcoder. Each leg's formats are read from ``core show channel``.
The same browser takes the README's screenshot (docs/webrtc-page.png).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from asterisk_helpers import apply_spec, spec_data, write_spec
from fixtures.asterisk import (
    OPUS_PHONE_EXTENSION,
    TEST_CERT_FILE,
    TEST_KEY_FILE,
    AsteriskInstance,
    running_asterisk,
)
from fixtures.certs import WSS_HOST, spki_pin
from fixtures.common import REPO, free_port, require
from fixtures.fail2ban_reader import fail2ban_regex
from fixtures.rtp_phone import AnsweringPhone
from fixtures.waiting import WAIT_SECONDS, wait_until

from sipctl.reconciler.render.fail2ban import FILTER_TEXT
from sipctl.reconciler.render.webrtc import page_files
from sipctl.schemas.loader import load_spec

pytestmark = pytest.mark.asterisk

SCREENSHOT = REPO / "docs" / "webrtc-page.png"
EXAMPLE_TITLE = yaml.safe_load((REPO / "examples" / "mysite.yaml").read_text())["webrtc"]["page"][
    "title"
]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def pbx() -> Iterator[AsteriskInstance]:
    with running_asterisk(opus_phone=True) as instance:
        yield instance


@pytest.fixture(scope="module")
def page_url(pbx: AsteriskInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Apply the spec to the PBX, render the page, serve it on loopback."""
    data: dict[str, Any] = spec_data(
        pbx, tls={"cert_file": TEST_CERT_FILE, "key_file": TEST_KEY_FILE}
    )
    data["users"]["desk"] = OPUS_PHONE_EXTENSION
    data["servers"] = [{"host": WSS_HOST, "ipv4": ["127.0.0.1"]}]
    data["transports"]["wss"] = {"port": pbx.wss_port}
    # The example's page title, so the README's screenshot shows the page the example makes;
    # video on, as in the example: the page offers the camera.
    data["webrtc"] = {"page": {"title": EXAMPLE_TITLE, "names": ["director", "alex", "desk"]}}
    data["asterisk"]["video"] = True
    spec_file = write_spec(tmp_path_factory.mktemp("spec"), data)
    apply_spec(spec_file)
    root = tmp_path_factory.mktemp("www")
    _write_page(root, spec_file)
    # The same page pointed at a port where nothing listens: /down/index.html
    data["transports"]["wss"] = {"port": free_port()}
    _write_page(root / "down", write_spec(tmp_path_factory.mktemp("down"), data))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def _write_page(root: Path, spec_file: Path) -> None:
    for name, text in page_files(load_spec(spec_file).spec).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_chromium(profile: Path, microphone: str = "fake") -> Any:
    """Headless Chromium through Debian's chromedriver. ``microphone``: ``fake`` (a test
    tone, allowed without asking) or ``denied`` (every permission prompt refused)."""
    require(Path(CHROMIUM).exists(), "chromium (Debian package chromium)")
    require(Path(CHROMEDRIVER).exists(), "chromedriver (Debian package chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    permission = (
        "--use-fake-ui-for-media-stream" if microphone == "fake" else "--deny-permission-prompts"
    )
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a test machine
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",  # the closed network refuses its connections
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--use-fake-device-for-media-stream",
        permission,
        "--autoplay-policy=no-user-gesture-required",
        f"--host-resolver-rules=MAP {WSS_HOST} 127.0.0.1",
        # Trust exactly the test certificate's key, nothing else.
        f"--ignore-certificate-errors-spki-list={spki_pin()}",
        "--window-size=720,760",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def status_of(driver: Any) -> str:
    return str(driver.execute_script(
        "return document.querySelector('[data-sipctl-status]').textContent"
    ))  # fmt: skip


def wait_for(driver: Any, words: str, timeout: float = 20.0) -> list[str]:
    """Wait until the status element says ``words``; return every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = status_of(driver)
        if not seen or seen[-1] != text:
            seen.append(text)
        if words.lower() in text.lower():
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the status never said {words!r}; it said {seen}")


# Every text the status element shows, in order (polling could miss a short one).
RECORD_STATUS = """
window.sipctlTestStatuses = [];
const status = document.querySelector('[data-sipctl-status]');
new MutationObserver(() => window.sipctlTestStatuses.push(status.textContent))
  .observe(status, {childList: true, characterData: true, subtree: true});
"""

# The browser's own view of the call's audio: packets each way and the codec of each.
BROWSER_RTP = """
const done = arguments[arguments.length - 1];
import('./sipctl-call.js').then(async (page) => {
  const session = page.activeSession();
  const pc = session && session.sessionDescriptionHandler.peerConnection;
  if (!pc) { done(null); return; }
  const stats = await pc.getStats();
  const codecs = {};
  stats.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  const out = {received: 0, sent: 0, codec_in: null, codec_out: null};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.received += s.packetsReceived; out.codec_in = codecs[s.codecId];
    }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      out.sent += s.packetsSent; out.codec_out = codecs[s.codecId];
    }
  });
  done(out);
});
"""


# The browser's view of the call's video: frames it encoded and sent, frames it received
# and decoded, and the codec of each.
BROWSER_VIDEO = """
const done = arguments[arguments.length - 1];
import('./sipctl-call.js').then(async (page) => {
  const session = page.activeSession();
  const pc = session && session.sessionDescriptionHandler.peerConnection;
  if (!pc) { done(null); return; }
  const stats = await pc.getStats();
  const codecs = {};
  stats.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  const out = {encoded: 0, sent: 0, decoded: 0, received: 0, codec_in: null, codec_out: null};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.decoded += s.framesDecoded || 0; out.received += s.packetsReceived;
      out.codec_in = codecs[s.codecId];
    }
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.encoded += s.framesEncoded || 0; out.sent += s.packetsSent;
      out.codec_out = codecs[s.codecId];
    }
  });
  const remote = document.querySelector('[data-sipctl-remote-video]');
  out.shown = remote ? remote.videoWidth : 0;
  out.hidden = document.querySelector('[data-sipctl-videos]').hidden;
  done(out);
});
"""


def browser_video(driver: Any) -> dict[str, Any]:
    driver.set_script_timeout(10)
    found = driver.execute_async_script(BROWSER_VIDEO)
    assert isinstance(found, dict), "the page has no call"
    return found


def heard_both_ways(driver: Any, phone_heard: Any, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
    """The browser's audio stats once both sides heard more than 25 packets (half a second
    of audio), or when ``timeout`` is over: a loaded machine starts media late."""
    deadline = time.monotonic() + timeout
    audio = browser_audio(driver)
    while min(audio["received"], phone_heard()) <= 25 and time.monotonic() < deadline:
        time.sleep(0.25)
        audio = browser_audio(driver)
    return audio


def browser_audio(driver: Any) -> dict[str, Any]:
    driver.set_script_timeout(10)
    found = driver.execute_async_script(BROWSER_RTP)
    assert isinstance(found, dict), "the page has no call"
    return found


def channel_formats(pbx: AsteriskInstance) -> dict[str, dict[str, str]]:
    """Each live channel's native formats and transcoding (``core show channel``)."""
    found: dict[str, dict[str, str]] = {}
    for line in pbx.rx("core show channels concise").splitlines():
        name = line.split("!", 1)[0]
        if not name.startswith("PJSIP/"):
            continue
        shown = pbx.rx(f"core show channel {name}")
        found[name.rsplit("-", 1)[0]] = {
            key: match[1].strip()
            for key in ("NativeFormats", "ReadTranscode", "WriteTranscode")
            if (match := re.search(rf"^\s*{key}: (.*)$", shown, re.M))
        }
    return found


BROWSER_LEG = "PJSIP/sipctl-browsers"


def test_click_calls_director_and_media_flows_both_ways(
    pbx: AsteriskInstance, page_url: str, browser: Any, tmp_path: Path
) -> None:
    phone = AnsweringPhone(pbx.phone_port)
    try:
        browser.get(page_url)
        buttons = browser.find_elements("css selector", "[data-sipctl-call]")
        assert [b.get_attribute("data-sipctl-call") for b in buttons] == [
            "director",
            "alex",
            "desk",
        ]
        assert browser.title == EXAMPLE_TITLE
        start = pbx.log_size(pbx.full_log_path)
        browser.execute_script(RECORD_STATUS)
        browser.find_element("css selector", '[data-sipctl-call="director"]').click()
        wait_for(browser, "connected to director")
        seen = browser.execute_script("return window.sipctlTestStatuses")
        assert seen[:2] == ["Calling director…", "Connected to director"], seen
        full = pbx.wait_log(r"Called PJSIP/105", start, pbx.full_log_path)
        assert "sipctl-browsers" in full  # the browsers' guest endpoint took it
        assert "guest-call" in full
        assert len(phone.invites) == 1
        audio = heard_both_ways(browser, lambda: phone.rtp_received)
        assert phone.rtp_received > 25, f"the phone heard {phone.rtp_received} packets"
        assert audio["received"] > 25, f"the browser heard {audio}"
        # A ulaw-only phone: the browser talks Opus, Asterisk transcodes between the legs.
        assert phone.chosen is not None and phone.chosen[0].name == "PCMU"
        assert set(phone.received_types) == {0}, phone.received_types
        assert (audio["codec_in"], audio["codec_out"]) == ("audio/opus", "audio/opus"), audio
        legs = channel_formats(pbx)
        assert legs[BROWSER_LEG]["NativeFormats"] == "(opus)", legs
        assert legs["PJSIP/105"]["NativeFormats"] == "(ulaw)", legs
        assert legs[BROWSER_LEG]["WriteTranscode"].startswith("Yes"), legs
        # The README's screenshot: the page as a caller sees it, mid-call. Rewritten only
        # on request (SIPCTL_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean.
        shot = SCREENSHOT if os.environ.get("SIPCTL_UPDATE_SCREENSHOT") else tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
        browser.find_element("css selector", "[data-sipctl-hangup]").click()
        wait_for(browser, "call ended")
        wait_until(lambda: phone.byes, "the phone's BYE")
        assert phone.byes == 1
    finally:
        phone.close()


def test_a_phone_with_opus_gets_it_end_to_end_untranscoded(
    pbx: AsteriskInstance, page_url: str, browser: Any
) -> None:
    phone = AnsweringPhone(pbx.opus_phone_port, codecs=("opus", "PCMU"))
    try:
        browser.get(page_url)
        browser.find_element("css selector", '[data-sipctl-call="desk"]').click()
        wait_for(browser, "connected to desk")
        # Asterisk offers the phone the browser's codec (and the phone's own after it)
        offered = phone.offer()
        assert re.search(r"^a=rtpmap:\d+ opus/48000/2", offered, re.M), offered
        assert phone.chosen is not None and phone.chosen[0].name == "opus"
        opus_type = phone.chosen[1]

        def both_ways() -> dict[str, Any] | None:
            audio = browser_audio(browser)
            flowing = min(audio["received"], audio["sent"], phone.received_types[opus_type])
            return audio if flowing > 25 else None

        # half a second of Opus each way (20 ms packets), however late a loaded machine starts
        audio = wait_until(both_ways, "Opus both ways",
                           last=lambda: (phone.received_types, browser_audio(browser)))  # fmt: skip
        assert set(phone.received_types) == {opus_type}, phone.received_types
        assert (audio["codec_in"], audio["codec_out"]) == ("audio/opus", "audio/opus"), audio
        legs = channel_formats(pbx)
        for leg in (BROWSER_LEG, f"PJSIP/{OPUS_PHONE_EXTENSION}"):
            assert legs[leg] == {
                "NativeFormats": "(opus)",
                "ReadTranscode": "No",
                "WriteTranscode": "No",
            }, legs
        browser.find_element("css selector", "[data-sipctl-hangup]").click()
        wait_for(browser, "call ended")
    finally:
        phone.close()


CALL_FROM_CONSOLE = """
const done = arguments[arguments.length - 1];
import('./sipctl-call.js').then((page) => { page.call('nobody'); done(true); });
"""


def test_undeclared_name_from_the_console_ends_in_the_reject_path(
    pbx: AsteriskInstance, page_url: str, browser: Any, tmp_path: Path
) -> None:
    browser.get(page_url)
    assert browser.find_elements("css selector", '[data-sipctl-call="nobody"]') == []
    start = pbx.log_size()
    browser.set_script_timeout(10)
    browser.execute_async_script(CALL_FROM_CONSOLE)
    text = pbx.wait_log(r"Wrong call IP=", start)
    # the browser's address, from its WebSocket connection, last on the line for fail2ban
    assert "Wrong call IP=127.0.0.1\n" in text
    assert "nobody" not in text.split("Wrong call", 1)[1].splitlines()[0]
    # sipctl's fail2ban filter takes exactly the browser's address from that line
    log, filter_file = tmp_path / "messages.log", tmp_path / "sipctl-asterisk.conf"
    log.write_text(text)
    filter_file.write_text(FILTER_TEXT)
    assert fail2ban_regex(log, filter_file) == ["127.0.0.1"]
    wait_for(browser, "call ended", timeout=20)


def test_a_server_that_does_not_answer_is_said_in_words(page_url: str, browser: Any) -> None:
    browser.get(page_url.replace("/index.html", "/down/index.html"))
    browser.find_element("css selector", '[data-sipctl-call="alex"]').click()
    wait_for(browser, "could not reach the server")
    assert browser.find_element("css selector", '[data-sipctl-call="alex"]').is_enabled()


def test_a_blocked_microphone_is_said_in_words(page_url: str, tmp_path: Path) -> None:
    driver = start_chromium(tmp_path / "profile", microphone="denied")
    try:
        driver.get(page_url)
        driver.find_element("css selector", '[data-sipctl-call="director"]').click()
        wait_for(driver, "microphone blocked")
    finally:
        driver.quit()


def test_the_camera_button_sends_and_shows_video_both_ways(
    pbx: AsteriskInstance, page_url: str, browser: Any
) -> None:
    """asterisk.video: true. The camera button (off by default) makes the next call send the
    fake camera's video; phone 105 sends every video packet back through the PBX, so the
    browser decodes frames that crossed Asterisk both ways, and shows them."""
    phone = AnsweringPhone(pbx.phone_port, video_echo=True)
    try:
        browser.get(page_url)
        camera = browser.find_element("css selector", "[data-sipctl-camera]")
        assert camera.get_attribute("aria-pressed") == "false"
        camera.click()
        assert camera.get_attribute("aria-pressed") == "true" and camera.text == "Camera on"
        browser.find_element("css selector", '[data-sipctl-call="director"]').click()
        wait_for(browser, "connected to director")
        assert "m=video" in phone.offer(), "Asterisk offered the phone the browser's video"

        def enough(video: dict[str, Any], audio: dict[str, Any]) -> bool:
            return (
                min(video["encoded"], video["sent"], video["decoded"]) >= 10
                and min(phone.video_received, phone.video_sent) >= 10
                and min(audio["received"], audio["sent"]) > 25
            )

        deadline = time.monotonic() + 20  # a loaded machine is slow to start both streams
        video, audio = browser_video(browser), browser_audio(browser)
        while not enough(video, audio) and time.monotonic() < deadline:
            time.sleep(0.5)
            video, audio = browser_video(browser), browser_audio(browser)
        assert min(video["encoded"], video["sent"]) >= 10, video
        assert min(phone.video_received, phone.video_sent) >= 10, (
            phone.video_received,
            phone.video_sent,
        )
        assert video["decoded"] >= 10, f"frames back through the PBX: {video}"
        assert video["codec_in"] == video["codec_out"] == "video/VP8", video
        assert video["hidden"] is False and video["shown"] > 0, video
        assert min(audio["received"], audio["sent"]) > 25, audio
        browser.find_element("css selector", "[data-sipctl-hangup]").click()
        wait_for(browser, "call ended")
        assert browser.execute_script(
            "return document.querySelector('[data-sipctl-videos]').hidden"
        )
    finally:
        phone.close()
