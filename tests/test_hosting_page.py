"""The click-to-call page of each customer of a hosting PBX (dir: targets, no programs).

The host's file owns the web root (``webrtc.publish``), WSS and the browsers' guest
endpoint; each customer file with a ``webrtc`` section has its own page, published under the
root in a directory named by its domain: its names, title and domain, the host's ``wss://``
URL, and the From that selects the host's browsers' endpoint. Two customers' pages share no
file of their own; the static files (SIP.js) are the host's, one copy for all in
``sipctl-shared/``. A customer whose file is gone has its page taken down, and the other's
and the shared files stay byte for byte (they go with the last page); drift sees a page
file changed by hand.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sipctl.cli import run
from sipctl.errors import SpecError
from sipctl.reconciler.render.asterisk import pjsip_text
from sipctl.schemas.loader import load_spec, load_spec_text

HOST: dict[str, Any] = {
    "version": 1,
    "domain": "pbx1.hoster.example",
    "hosting": {"name": "pbx1"},
    "transports": {"udp": {"port": 5060}, "wss": {"port": 8089}},
    "servers": [{"host": "sip.hoster.example", "ipv4": ["203.0.113.10"]}],
    "asterisk": {
        "target": "dir:state/pbx1",
        "tls": {"cert_file": "/etc/asterisk/keys/a.pem", "key_file": "/etc/asterisk/keys/a.key"},
    },
    "webrtc": {"host": "wss.hoster.example", "publish": "dir:state/web:/call"},
}


def _customer(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "domain": f"{name}.example",
        "host": "pbx1",
        "local_context": f"{name}-phones",
        "users": {"director": 105},
        "rooms": {"meeting": {}},
        **extra,
    }


@pytest.fixture
def hoster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pbx1 with three customers: a and b with a page (the same names), c without one."""
    monkeypatch.chdir(tmp_path)
    files = {
        "pbx1.yaml": HOST,
        "a.yaml": _customer("a", webrtc={"page": {"title": "Call A"}}),
        "b.yaml": _customer("b", webrtc={"page": {"title": "Call B", "names": ["meeting"]}}),
        "c.yaml": _customer("c"),
    }
    for name, data in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_each_customers_page_is_its_own_under_the_hosts_web_root(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = _cli(capsys, "apply", "-f", "pbx1.yaml", "--auto-approve", "--no-verify")
    assert code == 0, shown
    root = hoster / "state" / "web" / "call"
    # c has none; the static files are there once, for every page
    assert sorted(p.name for p in root.iterdir()) == ["a.example", "b.example", "sipctl-shared"]
    assert [str(p.relative_to(root)) for p in root.rglob("sip.js")] == [
        "sipctl-shared/vendor/sip.js"
    ]
    assert sorted(str(p.relative_to(root)) for p in (root / "a.example").rglob("*")) == [
        "a.example/cards",
        "a.example/cards/director.vcf",
        "a.example/cards/meeting.vcf",
        "a.example/index.html",
    ]
    for name, title, calls in (
        ("a", "Call A", ["director", "meeting"]),
        ("b", "Call B", ["meeting"]),
    ):
        page = (root / f"{name}.example" / "index.html").read_text()
        assert f"<title>{title}</title>" in page
        assert f'data-sipctl-domain="{name}.example"' in page, page
        assert re.findall(r'data-sipctl-call="([^"]+)"', page) == calls
        # the host's WSS and the host's browsers' guest endpoint
        assert 'data-sipctl-server="wss://wss.hoster.example:8089/ws"' in page, page
        assert 'data-sipctl-from="sip:guest@webrtc.pbx1.hoster.example"' in page, page
        assert "connect-src wss://wss.hoster.example:8089/ws;" in page
        assert '<script type="module" src="../sipctl-shared/sipctl-call.js">' in page, page
        assert '<link rel="stylesheet" href="../sipctl-shared/sipctl-call.css">' in page, page
    text = pjsip_text(load_spec("pbx1.yaml").spec)
    assert "[sipctl-browsers]" in text  # found by the page's From host: the host's own
    assert "@[wW][eE][bB][rR][tT][cC][.][pP][bB][xX]1[.]" in text
    # a second plan is empty, and what was applied is what is there
    code, shown = _cli(capsys, "plan", "-f", "pbx1.yaml", "--detailed-exitcode")
    assert code == 0, shown
    code, shown = _cli(capsys, "drift", "-f", "pbx1.yaml")
    assert code == 0 and "No drift" in shown, shown
    (root / "b.example" / "index.html").write_text("<p>changed by hand</p>\n")
    code, shown = _cli(capsys, "drift", "-f", "pbx1.yaml")
    assert code != 0 and "b.example/index.html" in shown, shown


def test_a_gone_customer_takes_its_page_with_it(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = _cli(capsys, "apply", "-f", "pbx1.yaml", "--auto-approve", "--no-verify")
    assert code == 0, shown
    root = hoster / "state" / "web" / "call"
    a_before = _digests(root / "a.example")
    shared_before = _digests(root / "sipctl-shared")
    (hoster / "b.yaml").unlink()
    code, shown = _cli(capsys, "plan", "-f", "pbx1.yaml")
    assert "- webrtc page dir:state/web:/call/b.example/index.html" in shown, shown
    assert not re.search(r"[-+~] webrtc page \S+/(a\.example|sipctl-shared)/", shown), shown
    code, shown = _cli(
        capsys, "apply", "-f", "pbx1.yaml", "--auto-approve", "--no-verify", "--force"
    )
    assert code == 0, shown
    # the page's directories went once empty (b.example/cards/ first), never the web root
    assert not (root / "b.example").exists() and (root / "a.example" / "cards").is_dir()
    assert "removed the empty directory /call/b.example" in shown, shown
    assert _digests(root / "a.example") == a_before
    assert _digests(root / "sipctl-shared") == shared_before, "the host's, not b's"
    code, shown = _cli(capsys, "plan", "-f", "pbx1.yaml", "--detailed-exitcode")
    assert code == 0, shown
    # the last page gone, the shared files go with it, and their directories
    (hoster / "a.yaml").unlink()
    code, shown = _cli(
        capsys, "apply", "-f", "pbx1.yaml", "--auto-approve", "--no-verify", "--force"
    )
    assert code == 0, shown
    assert "removed /call/sipctl-shared/vendor/sip.js" in shown, shown
    assert list(root.iterdir()) == [], "nothing of sipctl's is left in the web root"


def test_a_customers_page_is_rendered_from_its_own_file(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``render`` of a customer file writes its page; its own plan publishes nothing (the
    host's does)."""
    code, shown = _cli(capsys, "render", "-f", "a.yaml", "--dir", "out")
    assert code == 0, shown
    page = (hoster / "out" / "webrtc" / "index.html").read_text()
    assert 'data-sipctl-domain="a.example"' in page
    assert 'data-sipctl-from="sip:guest@webrtc.pbx1.hoster.example"' in page
    code, shown = _cli(capsys, "plan", "-f", "a.yaml")
    assert code == 0 and "webrtc" not in shown, shown


@pytest.mark.parametrize("key", ["publish", "host"])
def test_where_a_page_goes_is_the_hosts(key: str) -> None:
    value = "dir:/srv/web:/a" if key == "publish" else "a.example"
    text = yaml.safe_dump(_customer("a", webrtc={key: value}))
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    said = str(caught.value) + " ".join(caught.value.problems)
    assert f"webrtc.{key} belongs to the host's file" in said, said


def test_a_host_has_no_page_of_its_own() -> None:
    text = yaml.safe_dump(dict(HOST, webrtc={"page": {"title": "Hoster"}}))
    with pytest.raises(SpecError) as caught:
        load_spec_text(text)
    said = str(caught.value) + " ".join(caught.value.problems)
    assert "webrtc.page belongs to each customer's file" in said, said


def test_a_customer_page_needs_its_hosts_wss(
    hoster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = dict(HOST, transports={"udp": {"port": 5060}})
    host.pop("webrtc")
    (hoster / "pbx1.yaml").write_text(yaml.safe_dump(host, sort_keys=False))
    code, shown = _cli(capsys, "validate", "-f", "a.yaml")
    assert code != 0 and "the host's transports.wss" in shown, shown
