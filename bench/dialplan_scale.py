"""Bench: what the guest dialplan of many users costs the real Asterisk 22.

For each revision (``--against REV``, default main, and this checkout) and each size
(``--users 1000,4000,10000``), sipctl of that revision renders a spec of that many users
(``sipctl render``: ``User<i>`` -> 105, unknown_callers reject, route dial), and the test
PBX of tests/fixtures (Asterisk 22 in its chroot) loads the rendered ``pjsip_sipctl.conf``
and ``extensions_sipctl.conf``. Measured, interleaved revision by revision:

- ``dialplan reload``: the wall time of ``asterisk -rx 'dialplan reload'`` (it returns when
  pbx_config has merged the new contexts), ``--runs`` times;
- one out-of-dialog OPTIONS over UDP (res_pjsip answers it by looking the user part up in the
  guest context): median wall time from send to the final answer, for a declared name as
  written in the dialplan (``user500``), the same name in another case (``USER500``) and an
  undeclared name (``nobody500``), ``--options`` times each.

Measured 2026-12-06 on the shared 2-core machine (load about 3 from other work: wall
times are rough), ``--against 599a17e --users 1000,4000,10000 --runs 2 --options 15``;
599a17e holds a pattern per name (``_[uU][sS][eE][rR]5``...), this checkout none (the
catch-all looks a name in another case up in lower case):

| users | revision | dialplan reload s | OPTIONS user500 ms | USER500 ms | nobody500 ms |
|---|---|---|---|---|---|
| 1,000 | 599a17e (patterns) | 0.06 / 0.07 | 0.2 | 0.3 | 0.3 |
| 1,000 | lookup | 0.04 / 0.03 | 0.2 | 0.2 | 0.2 |
| 4,000 | 599a17e (patterns) | 0.85 / 0.86 | 0.5 | 0.8 | 0.6 |
| 4,000 | lookup | 0.63 / 0.48 | 0.3 | 0.3 | 0.3 |
| 10,000 | 599a17e (patterns) | 14.57 / 16.30 | 0.5 | 1.2 | 1.3 |
| 10,000 | lookup | 7.09 / 6.85 | 0.5 | 0.7 | 0.7 |

Every OPTIONS was answered 200 (the catch-all exists in both). The reload halves at 10,000
users. An OPTIONS costs about a millisecond either way here: the 50-70 ms once noted for
the patterns at 10,000 users (add_name's docstring, on a machine at load ~8) did not show
on this run, whose requests are measured from send to answer over loopback.

Run as root like the tests: ``python bench/dialplan_scale.py`` (``--against REV`` compares
that revision with this checkout; ``--against ''`` measures this checkout alone).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.asterisk import AsteriskInstance, running_asterisk
from fixtures.sip_client import SipCaller
from measure import REPO, checkout, installed_sipctl, print_table, remove_checkout

PROBES = ("user500", "USER500", "nobody500")


def spec_text(pbx: AsteriskInstance, users: int) -> str:
    data = {
        "version": 1,
        "domain": "mysite.ru",
        "transports": {"udp": {"port": pbx.sip_port}},
        "users": {f"User{i}": "105" for i in range(users)},
        "asterisk": {"target": "local", "config_dir": str(pbx.config_dir)},
    }
    return yaml.safe_dump(data, sort_keys=False)


def rendered(python: Path, spec: str, work: Path) -> dict[str, str]:
    """The Asterisk files ``sipctl render`` of ``python``'s sipctl writes for ``spec``."""
    with tempfile.TemporaryDirectory(dir=work) as folder:
        path = Path(folder) / "sipctl.yaml"
        path.write_text(spec)
        out = Path(folder) / "out"
        subprocess.run(
            [str(python), "-m", "sipctl", "render", "-f", str(path), "--dir", str(out)],
            check=True,
            capture_output=True,
        )
        names = ("pjsip_sipctl.conf", "extensions_sipctl.conf")
        return {name: (out / "asterisk" / name).read_text() for name in names}


def load(pbx: AsteriskInstance, files: dict[str, str]) -> None:
    for name, text in files.items():
        (pbx.config_dir / name).write_text(text)
    for parent, child in (("pjsip.conf", "pjsip_sipctl.conf"), ("extensions.conf", "")):
        child = child or "extensions_sipctl.conf"
        path = pbx.config_dir / parent
        if f"#include {child}" not in path.read_text():
            path.write_text(path.read_text() + f"\n#include {child}\n")
    pbx.rx("module reload res_pjsip.so")


def reload_seconds(pbx: AsteriskInstance) -> float:
    start = time.perf_counter()
    out = pbx.rx("dialplan reload", timeout=600)
    took = time.perf_counter() - start
    assert "Dialplan reloaded" in out, out
    return took


def options_ms(pbx: AsteriskInstance, user: str, times: int) -> tuple[float, int]:
    """Median milliseconds of one OPTIONS to ``user``, and its final status."""
    spent: list[float] = []
    status = 0
    with SipCaller(pbx.sip_port) as caller:
        for _ in range(times):
            start = time.perf_counter()
            result = caller.options(user, domain="mysite.ru", timeout=10.0)
            spent.append((time.perf_counter() - start) * 1000)
            status = result.final
    return statistics.median(spent), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1000,4000,10000")
    parser.add_argument("--against", default="main", help="a revision to compare ('' : none)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--options", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.users.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-dialplan-"))
    trees: list[Path] = []
    pythons: dict[str, Path] = {}
    try:
        if args.against:
            tree = checkout(work, args.against)
            trees.append(tree)
            (work / "old").mkdir()
            pythons[args.against] = installed_sipctl(work / "old", tree)
        (work / "new").mkdir()
        pythons["this"] = installed_sipctl(work / "new", REPO)
        rows: list[dict[str, str]] = []
        with running_asterisk() as pbx:
            for size in sizes:
                spec = spec_text(pbx, size)
                for label, python in pythons.items():
                    load(pbx, rendered(python, spec, work))
                    reloads = [reload_seconds(pbx) for _ in range(args.runs)]
                    row = {
                        "users": f"{size:,}",
                        "revision": label,
                        "reload s": " / ".join(f"{r:.2f}" for r in reloads),
                    }
                    for probe in PROBES:
                        ms, status = options_ms(pbx, probe, args.options)
                        row[f"OPTIONS {probe} ms"] = f"{ms:.1f} ({status})"
                    rows.append(row)
                    print(row, flush=True)
        print_table(rows)
    finally:
        for tree in trees:
            remove_checkout(tree)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
