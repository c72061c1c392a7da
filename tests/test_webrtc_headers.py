"""The page's HTTP headers from the snippets ``sipctl render`` writes, through real nginx and
Apache: the whole Content-Security-Policy with ``frame-ancestors 'none'`` (a ``<meta>`` CSP
cannot forbid framing, so another site could frame the page and trick a visitor into a call).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.common import free_port, stop_started, wait_until_serving

REPO = Path(__file__).resolve().parent.parent
WSS = "wss://asterisk.mysite.ru:8089/ws"


@pytest.fixture(scope="module")
def rendered() -> Iterator[Path]:
    """``sipctl render`` of examples/mysite.yaml into a directory the web servers' own
    users may read (pytest's tmp directories are root's only)."""
    work = Path(tempfile.mkdtemp(prefix="sipctl-headers-"))
    try:
        work.chmod(0o755)
        shutil.copy(REPO / "examples" / "mysite.yaml", work / "sipctl.yaml")
        done = subprocess.run(
            [str(Path(sys.executable).parent / "sipctl"), "render", "-f", "sipctl.yaml",
             "--dir", "out"],
            cwd=work, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        for path in [work, *work.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield work / "out" / "webrtc"
    finally:
        shutil.rmtree(work)


def _headers(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as answer:
        assert answer.status == 200
        assert b"data-sipctl-call" in answer.read()
        return {k.lower(): v for k, v in answer.headers.items()}


def _check(headers: dict[str, str]) -> None:
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert f"connect-src {WSS};" in policy and "default-src 'self'" in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


def _serve(command: list[str], port: int, log: Path) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(process, lambda: _headers(port), command[0], 20, lambda: log.read_text())
        _check(_headers(port))
    finally:
        stop_started(process)


@pytest.mark.programs
def test_nginx_sends_the_whole_policy_with_frame_ancestors(rendered: Path) -> None:
    snippet = rendered / "server" / "nginx.conf"
    prefix = Path(tempfile.mkdtemp(prefix="sipctl-nginx-"))
    try:
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\n"
            "http {\n"
            f"  access_log off;\n  client_body_temp_path {prefix};\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n    root {rendered};\n"
            f"    location / {{ include {snippet}; }}\n  }}\n}}\n"
        )
        checked = subprocess.run(
            ["nginx", "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        _serve(
            ["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            port,
            prefix / "error.log",
        )
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.mark.programs
def test_apache_sends_the_whole_policy_with_frame_ancestors(rendered: Path) -> None:
    snippet = rendered / "server" / "apache.conf"
    prefix = Path(tempfile.mkdtemp(prefix="sipctl-apache-"))
    modules = "/usr/lib/apache2/modules"
    try:
        port = free_port()
        conf = prefix / "apache2.conf"
        conf.write_text(
            f"ServerRoot {prefix}\nServerName localhost\nListen 127.0.0.1:{port}\n"
            f"PidFile {prefix}/apache2.pid\nErrorLog {prefix}/error.log\n"
            f"Mutex file:{prefix} default\n"
            "User www-data\nGroup www-data\n"
            + "".join(
                f"LoadModule {name}_module {modules}/mod_{name}.so\n"
                for name in ("mpm_event", "authz_core", "headers", "mime", "dir")
            )
            + f"TypesConfig /etc/mime.types\nDocumentRoot {rendered}\n"
            f"<Directory {rendered}>\n  Require all granted\n  Include {snippet}\n</Directory>\n"
        )
        prefix.chmod(0o755)
        checked = subprocess.run(["apache2", "-t", "-f", str(conf)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        _serve(["apache2", "-f", str(conf), "-DFOREGROUND"], port, prefix / "error.log")
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_the_page_itself_keeps_its_meta_policy_without_frame_ancestors(rendered: Path) -> None:
    """A <meta> CSP ignores frame-ancestors: the page keeps the rest as before, so a server
    without the snippet still confines the page's connections."""
    page = (rendered / "index.html").read_text()
    assert f"connect-src {WSS};" in page and "frame-ancestors" not in page
