"""``sipctl import`` of a PBX that is a host of several customer domains: a host file and one
file per customer, whose plan against the same PBX and zones says No changes. On the
example's dir: PBX with zone files, and on the real Asterisk 22 with a real BIND."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fixtures.bind import SECRET_ENV, BindServer
from fixtures.hosting import EXAMPLE, copy_example, rfc2136_customer, write_host

from sipctl.cli import run


def _zones_allowed(hoster: Path, admin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The imported files (in imported/) name the zones where they are, in state/ beside
    imported/: the admin allows that directory in the runner profile (kept in ``admin``),
    for the zones and for the dir: targets standing in for the PBX and the web root."""
    admin.mkdir(exist_ok=True)
    (admin / "runner-profile.yaml").write_text(
        f"version: 1\nzone_files: [{hoster}/state]\ndir_targets: [{hoster}/state]\n"
    )
    monkeypatch.setenv("SIPCTL_PROFILE", str(admin / "runner-profile.yaml"))


def test_the_example_host_imports_as_files_that_plan_no_changes(
    hosting_example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _zones_allowed(hosting_example, hosting_example.parent, monkeypatch)
    args = ["import", "--domain", "pbx1.hoster.example", "--asterisk", "dir:state/pbx1"]
    code = run([*args, "--dns", "zonefile:state/{domain}.zone", "--out", "imported"])
    said = capsys.readouterr()
    assert code == 0, said.out + said.err
    assert said.err.count("A plan of it shows no changes.") == 3, said.err
    imported = hosting_example / "imported"
    assert sorted(p.name for p in imported.iterdir()) == [
        "alpha.example.yaml",
        "beta.example.yaml",
        "pbx1.yaml",
    ]
    assert run(["plan", "-f", str(imported), "--detailed-exitcode"]) == 0, capsys.readouterr()
    host = yaml.safe_load((imported / "pbx1.yaml").read_text())
    assert "users" not in host
    # the admin's binding of each customer to the context its phones are in, as found
    assert host["hosting"] == {
        "name": "pbx1",
        "local_contexts": {
            name: yaml.safe_load((EXAMPLE / f"{name}.yaml").read_text())["local_context"]
            for name in ("alpha.example", "beta.example")
        },
    }
    assert host["asterisk"]["guest_context"] == "guest-call"
    for name in ("alpha.example", "beta.example"):
        example = yaml.safe_load((EXAMPLE / f"{name}.yaml").read_text())
        customer = yaml.safe_load((imported / f"{name}.yaml").read_text())
        assert customer["host"] == "pbx1"
        assert customer["local_context"] == example["local_context"]
        assert customer["users"].keys() == example["users"].keys()
        assert customer["users"]["director"] == str(example["users"]["director"])
        assert "transports" not in customer and "servers" not in customer  # the host's
        assert customer.get("rooms") == example.get("rooms")


def test_import_writes_no_spec_through_a_link(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out that is a link (a checkout's, to ~/.ssh/authorized_keys, say) is refused before
    anything is read, and what it points to is left as it is: import wrote through it."""
    keys = hosting_example / "authorized_keys"
    keys.write_text("ssh-ed25519 AAAA admin\n")
    (hosting_example / "one.yaml").symlink_to(keys)
    args = ["import", "--domain", "alpha.example", "--dns", "zonefile:state/alpha.example.zone"]
    assert run([*args, "--out", "one.yaml"]) == 1
    assert "--out one.yaml: is a symbolic link" in capsys.readouterr().err
    assert keys.read_text() == "ssh-ed25519 AAAA admin\n"
    assert run([*args, "--out", "alpha.yaml"]) == 0, capsys.readouterr()
    assert "domain: alpha.example" in (hosting_example / "alpha.yaml").read_text()


def test_a_host_with_customers_pages_imports_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The host's web root and each customer's page (title, names, the cards' names)."""
    from test_hosting_page import HOST, _customer

    monkeypatch.chdir(tmp_path)
    zone = "state/{}.example.zone"
    pages = {"a": {"title": "Call A"}, "b": {"title": "Call B", "names": ["meeting"]}}
    # absolute places: the page's record names its files by the place as the spec writes it
    host = {**HOST, "webrtc": {**HOST["webrtc"], "publish": f"dir:{tmp_path}/state/web:/call"}}
    host["asterisk"] = {**HOST["asterisk"], "target": f"dir:{tmp_path}/state/pbx1"}
    files: dict[str, Any] = {"pbx1.yaml": host}
    for name in ("a", "b", "c"):
        dns = {"provider": "zonefile", "file": zone.format(name), "create_file": True}
        extra: dict[str, Any] = {"dns": dns}
        if name in pages:
            extra["webrtc"] = {"page": pages[name]}
        if name == "a":
            extra["cards"] = {"organization": "A Ltd", "names": {"director": "Anna"}}
        files[f"{name}.yaml"] = _customer(name, **extra)
    for file, data in files.items():
        (tmp_path / file).write_text(yaml.safe_dump(data, sort_keys=False))
    assert run(["apply", "-f", ".", "--auto-approve", "--no-verify"]) == 0, capsys.readouterr()
    capsys.readouterr()
    _zones_allowed(tmp_path, tmp_path / "admin", monkeypatch)
    args = ["import", "--domain", "pbx1.hoster.example", "--asterisk", f"dir:{tmp_path}/state/pbx1"]
    code = run([*args, "--dns", "zonefile:state/{domain}.zone", "--out", "imported"])
    said = capsys.readouterr()
    assert code == 0, said.out + said.err
    assert said.err.count("A plan of it shows no changes.") == 4, said.err
    imported = yaml.safe_load(Path("imported/pbx1.yaml").read_text())
    assert imported["webrtc"] == {
        "host": "wss.hoster.example",
        "publish": f"dir:{tmp_path}/state/web:/call",
    }
    a = yaml.safe_load(Path("imported/a.example.yaml").read_text())
    assert a["webrtc"]["page"]["title"] == "Call A" and a["cards"] == files["a.yaml"]["cards"]
    b = yaml.safe_load(Path("imported/b.example.yaml").read_text())
    assert b["webrtc"]["page"] == {"names": ["meeting"], "title": "Call B"}
    assert "webrtc" not in yaml.safe_load(Path("imported/c.example.yaml").read_text())


def test_a_host_is_imported_into_a_directory_and_each_zone_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(copy_example(tmp_path / "hoster"))
    assert run(["apply", "-f", "pbx1.yaml", "--auto-approve", "--no-verify"]) == 0
    capsys.readouterr()
    args = ["import", "--domain", "pbx1.hoster.example", "--asterisk", "dir:state/pbx1"]
    assert run([*args, "--dns", "zonefile:state/{domain}.zone"]) == 1
    assert "give --out DIR" in capsys.readouterr().err
    assert run([*args, "--dns", "zonefile:state/one.zone", "--out", "imported"]) == 1
    assert "write {domain} where each customer's zone goes" in capsys.readouterr().err


@pytest.mark.asterisk
def test_a_live_host_imports_as_files_that_plan_no_changes(
    bind: BindServer,
    hosting_zones: list[str],
    hosting_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two customers' records on a real BIND, their names on the real Asterisk 22."""
    from fixtures.asterisk import running_asterisk

    zones = hosting_zones
    monkeypatch.chdir(tmp_path)
    hoster = tmp_path / "hoster"
    hoster.mkdir()
    with running_asterisk() as pbx:
        server = {"host": hosting_server, "priority": 10}
        config_dir = write_host(hoster, pbx, servers=[server])["asterisk"]["config_dir"]
        users = ["{director: 105, alex: 106}", "{director: 105, sales: {ring: [101, 106]}}"]
        for n, zone in enumerate(zones):
            text = rfc2136_customer(bind, zone, f"c{n}-phones", users[n])
            (hoster / f"customer{n}.yaml").write_text(text)
        assert run(["apply", "-f", str(hoster), "--auto-approve", "--no-verify"]) == 0, (
            capsys.readouterr()
        )
        capsys.readouterr()
        url = f"rfc2136://{bind.server}/{{domain}}?key={bind.key_name}"
        url += f"&algorithm={bind.algorithm}&secret_env={SECRET_ENV}"
        args = ["import", "--domain", "pbx1.hoster.example", "--dns", url]
        args += ["--asterisk", "local", "--config-dir", config_dir, "--out", "imported"]
        code = run(args)
        said = capsys.readouterr()
        assert code == 0, said.out + said.err
        assert said.err.count("A plan of it shows no changes.") == 3, said.err
        imported = tmp_path / "imported"
        code = run(["plan", "-f", str(imported), "--detailed-exitcode"])
        assert code == 0, capsys.readouterr()
        second = yaml.safe_load((imported / f"{zones[1]}.yaml").read_text())
        assert second["users"]["sales"] == {"ring": ["101", "106"], "timeout": 20}
        assert second["local_context"] == "c1-phones"


def test_a_host_whose_customer_files_fail_validate_writes_no_file(
    hosting_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file of a host's import is checked with the others, as 'sipctl validate' of the
    directory would, before any is written. A domains context edited by hand to serve
    sub.beta.example too makes two customer files whose zones nest, which a hosting directory
    refuses: no file at all is written, exit code as the one-domain import's, the files
    named as they would be written."""
    dialplan = hosting_example / "state/pbx1/etc/asterisk/extensions_sipctl.conf"
    text = dialplan.read_text()
    beta = next(line for line in text.splitlines() if line.startswith("exten => beta.example."))
    sub = beta.replace("beta.example.", "sub.beta.example.")
    dialplan.write_text(text.replace(beta, f"{beta}\n{sub.replace('.,1', ',1')}\n{sub}"))
    zone = (hosting_example / "state/beta.example.zone").read_text()
    sub_zone = hosting_example / "state/sub.beta.example.zone"
    sub_zone.write_text(zone.replace("beta.example.", "sub.beta.example."))
    args = ["import", "--domain", "pbx1.hoster.example", "--asterisk", "dir:state/pbx1"]
    code = run([*args, "--dns", "zonefile:state/{domain}.zone", "--out", "imported"])
    said = capsys.readouterr()
    assert code == 1, said.out + said.err
    assert "do not pass 'sipctl validate', so none is written" in said.err, said.err
    assert "imported/sub.beta.example.yaml:4:1: domain: sub.beta.example lies inside" in said.err
    assert "sipctl-import-" not in said.err, said.err  # named as written, not the scratch copy
    assert not (hosting_example / "imported").exists()
