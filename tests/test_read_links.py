"""Reads never follow a symbolic link: at the file or at a directory on the way to it.

The attack: ``/etc/asterisk`` belongs to the asterisk user on Debian, who can run
``ln -s /root/.my.cnf /etc/asterisk/pjsip_sipctl.conf``; a plan that read through the link
printed root's password into the merge-request comment (``--markdown``), the log (``-v``) and
the saved plan (``--out``). Here every path the providers of a full spec read gets such a
link, owned by another account, on a ``dir:`` target through the real CLI, on ``local`` and
over SSH (a real sshd): the plan must name the link and hold nothing of what it points to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from sipctl.cli import run
from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext, load_provider
from sipctl.providers.bookkeeping import BOOKKEEPING_DIR
from sipctl.providers.firewall.shell import cat_shell
from sipctl.providers.transport.files import is_kernel_file
from sipctl.providers.transport.host_profile import host_profile_path
from sipctl.providers.transport.local import LocalTransport
from sipctl.providers.transport.ssh import SshTransport
from sipctl.reconciler.engine import selected_layers
from sipctl.schemas.loader import load_spec
from sipctl.schemas.spec import Ssh
from sipctl.schemas.targets import parse_target

REPO = Path(__file__).resolve().parent.parent
SECRET = b"[client]\nuser=root\npassword=TopSecret4711\n"
THE_ACCOUNT = 1234  # the service account that owns the directory (asterisk on Debian)
SAID = "symbolic link; sipctl does not read through links"


def read_paths(spec: Path) -> dict[str, list[str]]:
    """{target: [every path its providers read]}, from the providers' own declarations
    (the same lists the read gate's table is made of)."""
    loaded = load_spec(spec)
    ctx = RunContext(base_dir=loaded.base_dir)
    found: dict[str, list[str]] = {}
    try:
        for layer in selected_layers(loaded, None):
            provider = load_provider(layer.provider_name(loaded.spec))(loaded, ctx)
            for reads in provider.gate_reads(layer.render(loaded.spec)):
                paths = found.setdefault(reads.target, [])
                for path in (*reads.files, *reads.redacted, *reads.keys):
                    if path not in paths and not is_kernel_file(path):
                        paths.append(path)
    finally:
        ctx.close()
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """examples/mysite.yaml applied once to its dir: targets (every layer but DNS on one)."""
    work = tmp_path_factory.mktemp("site")
    shutil.copy(REPO / "examples" / "mysite.yaml", work / "sipctl.yaml")
    before = Path.cwd()
    os.chdir(work)
    try:
        assert run(["apply", "--auto-approve", "--no-verify", "-f", "sipctl.yaml"]) == 0
    finally:
        os.chdir(before)
    yield work


def _plan(work: Path, capsys: pytest.CaptureFixture[str], what: object = None) -> str:
    """Everything a plan puts anywhere: Markdown, -v log, errors and the saved plan."""
    out = work / "plan.json"
    out.unlink(missing_ok=True)
    before = Path.cwd()
    os.chdir(work)
    try:
        code = run(["plan", "-f", "sipctl.yaml", "--markdown", "-v", "--out", str(out)])
    finally:
        os.chdir(before)
    captured = capsys.readouterr()
    saved = out.read_text() if out.exists() else ""
    assert code != 0, f"a plan through a link must not succeed: {what}"
    return captured.out + captured.err + saved


def _host(work: Path, target: str, path: str) -> Path:
    ref = parse_target(target)
    assert ref.kind == "dir", target
    return work / ref.path / path.lstrip("/")


def test_the_example_reads_many_paths(site: Path) -> None:
    paths = read_paths(site / "sipctl.yaml")
    assert sum(len(p) for p in paths.values()) >= 10, paths
    assert "/etc/asterisk/pjsip_sipctl.conf" in paths["dir:state/pbx"]


# The host profile says which programs run; a dir: target runs none, so its plan never
# reads it (the profile's own strict reader: providers/transport/host_profile.py). Nor the
# mark of files not loaded yet (providers/load_mark.py): only an apply that reloads a
# program writes one.
def read_on_dir(paths: list[str]) -> list[str]:
    profiles = ("/etc/sipctl/host.yaml", host_profile_path(os.environ))
    return [p for p in paths if p not in profiles and not _load_mark(p)]


def _load_mark(path: str) -> bool:
    return str(Path(path).parent) == BOOKKEEPING_DIR and "-not-loaded." in Path(path).name


@pytest.mark.root
def test_a_link_at_any_file_read_is_named_and_not_followed(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = site / "root-my.cnf"
    secret.write_bytes(SECRET)
    for target, paths in read_paths(site / "sipctl.yaml").items():
        for path in read_on_dir(paths):
            host = _host(site, target, path)
            host.parent.mkdir(parents=True, exist_ok=True)
            kept = host.with_name(host.name + ".kept")
            if host.exists():
                host.rename(kept)
            host.symlink_to(secret)
            os.lchown(host, THE_ACCOUNT, THE_ACCOUNT)
            try:
                text = _plan(site, capsys, (target, path))
            finally:
                host.unlink()
                if kept.exists():
                    kept.rename(host)
            assert "TopSecret4711" not in text, (target, path)
            assert f"{path} is a {SAID}" in text, (target, path, text[-2000:])


@pytest.mark.root
def test_a_link_at_a_directory_on_the_way_is_named_and_not_followed(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for target, paths in read_paths(site / "sipctl.yaml").items():
        for path in read_on_dir(paths):
            host = _host(site, target, path)
            directory = host.parent
            if not directory.is_dir():
                continue
            planted = site / "planted"
            planted.mkdir()
            (planted / host.name).write_bytes(SECRET)
            real = directory.with_name(directory.name + ".real")
            directory.rename(real)
            directory.symlink_to(planted)
            os.lchown(directory, THE_ACCOUNT, THE_ACCOUNT)
            try:
                text = _plan(site, capsys)
            finally:
                directory.unlink()
                real.rename(directory)
                shutil.rmtree(planted)
            assert "TopSecret4711" not in text, (target, path)
            assert "symbolic link" in text, (target, path, text[-2000:])


def _plant(root: Path, path: str, secret: Path) -> tuple[Path, Path]:
    """A link at ``root/path`` (to ``secret``) and a tree whose directory is a link."""
    at_file = root / "file" / path.lstrip("/")
    at_file.parent.mkdir(parents=True, exist_ok=True)
    at_file.symlink_to(secret)
    os.lchown(at_file, THE_ACCOUNT, THE_ACCOUNT)
    at_dir = root / "dir" / path.lstrip("/")
    planted = root / "planted" / path.lstrip("/")
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(SECRET)
    at_dir.parent.parent.mkdir(parents=True, exist_ok=True)
    at_dir.parent.symlink_to(planted.parent)
    os.lchown(at_dir.parent, THE_ACCOUNT, THE_ACCOUNT)
    return at_file, at_dir


def _every_read_path(site: Path) -> list[str]:
    return sorted({p for paths in read_paths(site / "sipctl.yaml").values() for p in paths})


@pytest.mark.root
def test_local_reads_refuse_links_at_the_file_and_on_the_way(site: Path, tmp_path: Path) -> None:
    secret = tmp_path / "root-my.cnf"
    secret.write_bytes(SECRET)
    transport = LocalTransport(parse_target("local"), RunContext(base_dir=tmp_path))
    for path in _every_read_path(site):
        at_file, at_dir = _plant(tmp_path / path.strip("/").replace("/", "_"), path, secret)
        for planted, said in ((at_file, f"{at_file} is a {SAID}"), (at_dir, "reached through")):
            with pytest.raises(ProviderError) as caught:
                transport.read_files([str(planted)])
            assert said in caught.value.message and "TopSecret" not in caught.value.message


def test_ssh_reads_refuse_links_at_the_file_and_on_the_way(
    site: Path, tmp_path: Path, ssh_server: SshServer
) -> None:
    secret = tmp_path / "root-my.cnf"
    secret.write_bytes(SECRET)
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        for path in _every_read_path(site):
            at_file, at_dir = _plant(tmp_path / path.strip("/").replace("/", "_"), path, secret)
            for planted, said in ((at_file, f"{at_file} is a {SAID}"), (at_dir, "reached")):
                with pytest.raises(ProviderError) as caught:
                    transport.read_files([str(planted)])
                assert said in caught.value.message, caught.value.message
                assert "TopSecret" not in caught.value.message
            # the same files without links are read (the refusal is the link's, not the path's)
            plain = tmp_path / "plain" / path.lstrip("/")
            plain.parent.mkdir(parents=True, exist_ok=True)
            plain.write_bytes(b"plain\n")
            assert transport.read_files([str(plain)])[str(plain)].content == b"plain\n"
    finally:
        transport.close()


def test_a_link_swapped_in_between_the_checks_and_the_open_is_refused(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    """The SSH read script opens the file once and checks the real path of what it opened:
    a path whose directory is a link reaches another file, and is refused whatever the
    timing. Here the link is in place from the start, at a directory the checks before the
    open never look at (only the file itself is tested with -L)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.conf").write_bytes(SECRET)
    (tmp_path / "via").symlink_to(tmp_path / "real")
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        with pytest.raises(ProviderError, match="reached through a symbolic link"):
            transport.read_files([str(tmp_path / "via" / "x.conf")])
    finally:
        transport.close()


@pytest.mark.root
def test_the_firewall_script_reads_its_persist_file_through_no_link(tmp_path: Path) -> None:
    """The firewall's read script (also the read gate's) prints a persist file; a link at it
    or at a directory on the way is said, not followed (real sh, real files)."""
    secret = tmp_path / "root-my.cnf"
    secret.write_bytes(SECRET)
    at_file, at_dir = _plant(tmp_path, "/etc/iptables.up", secret)
    for planted in (at_file, at_dir):
        done = subprocess.run(
            ["sh", "-c", cat_shell(str(planted))], capture_output=True, timeout=10, check=False
        )
        assert done.returncode == 5, done
        assert b"TopSecret" not in done.stdout + done.stderr
        assert f"{planted} is a {SAID}".encode() in done.stdout
    plain = tmp_path / "plain.up"
    plain.write_bytes(b"*filter\n")
    done = subprocess.run(["sh", "-c", cat_shell(str(plain))], capture_output=True, check=False)
    assert (done.returncode, done.stdout) == (0, b"*filter\n")
    missing = subprocess.run(["sh", "-c", cat_shell(str(tmp_path / "no"))], check=False)
    assert missing.returncode == 3


@pytest.mark.root
def test_the_zone_file_is_read_through_no_link_of_another_account_nor_shown_from_an_include(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dns.file may sit in a directory of the DNS server's account: its link to a file of
    root's is refused, and a file the zone $INCLUDEs is never quoted in an error."""
    zone = site / "state" / "mysite.ru.zone"
    secret = site / "root-my.cnf"
    secret.write_bytes(b"password TopSecret4711\n")  # dnspython would quote the word
    kept = zone.read_bytes()
    try:
        zone.rename(zone.with_name("real.zone"))
        zone.symlink_to(secret)
        os.lchown(zone, THE_ACCOUNT, THE_ACCOUNT)
        text = _plan(site, capsys)
        assert "TopSecret4711" not in text
        assert "is a symbolic link that another account owns" in text
        zone.unlink()
        zone.write_bytes(kept + f"$INCLUDE {secret}\n".encode())
        text = _plan(site, capsys)
        assert "TopSecret4711" not in text and "sipctl shows no text of a file" in text
    finally:
        zone.unlink(missing_ok=True)
        zone.with_name("real.zone").unlink(missing_ok=True)
        zone.write_bytes(kept)


def test_ssh_writes_refuse_a_directory_swapped_for_a_link(
    tmp_path: Path, ssh_server: SshServer
) -> None:
    """Writes as strict as reads over SSH: a directory on the way that is a link (swapped in
    after the apply read it, by the account that owns its parent) is refused right before
    anything is created there, and nothing lands where it points."""
    from sipctl.errors import ProviderError as Refused
    from sipctl.providers.transport.pool import FileWrite

    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    ssh = Ssh.model_validate(ssh_server.ssh_spec())
    transport = SshTransport(parse_target(ssh_server.target), ssh, RunContext(base_dir=tmp_path))
    try:
        target = str(tmp_path / "conf" / "keys" / "asterisk.key")
        (tmp_path / "conf" / "keys").symlink_to(tmp_path / "elsewhere")
        os.lchown(tmp_path / "conf" / "keys", THE_ACCOUNT, THE_ACCOUNT)
        with pytest.raises(Refused, match="a directory on the way to it is a symbolic link"):
            transport.write_files([FileWrite(target, b"key\n", None)])
        assert list((tmp_path / "elsewhere").iterdir()) == []
        (tmp_path / "conf" / "keys").unlink()
        (tmp_path / "conf" / "keys").mkdir()
        transport.write_files([FileWrite(target, b"key\n", None)])  # a real directory: fine
        assert Path(target).read_bytes() == b"key\n"
    finally:
        transport.close()
