"""What the benches share: a sipctl installed as a user installs it, and child processes
measured by the kernel (cpu seconds, wall seconds, peak RSS)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# sipctl's bookkeeping (zone-file locks and records, public-record details) for the sipctl
# processes a bench starts: a directory of the bench's own, removed at its end. As root,
# sipctl keeps it in /var/lib/sipctl otherwise, where every bench run left one entry per
# temporary spec and zone (about 200,000 on the machine the benches were written on). A
# bench that sets SIPCTL_STATE_DIR itself keeps it.
_STATE_DIR = tempfile.TemporaryDirectory(prefix="sipctl-bench-state-")
os.environ.setdefault("SIPCTL_STATE_DIR", _STATE_DIR.name)


@dataclass(frozen=True)
class Sample:
    cpu: float  # user + system seconds of the child
    wall: float
    rss_mb: float
    returncode: int
    stdout: str


def run_measured(
    argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> Sample:
    """Run ``argv`` once; the kernel's own accounting of that one child (os.wait4)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return Sample(
        usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, proc.returncode, text
    )


def median_cpu(samples: list[Sample]) -> float:
    return statistics.median(s.cpu for s in samples)


def installed_sipctl(workdir: Path, source: Path = REPO) -> Path:
    """A venv with sipctl (of ``source``, a checkout) installed from a wheel (not editable,
    as the README installs it), its dependencies taken from this interpreter's environment.
    Returns its python."""
    wheels = workdir / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    root = workdir / "venv"
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    site = next(root.glob("lib/python*/site-packages"))
    # This environment's site-packages as a plain path entry: its .pth files (an editable
    # sipctl among them) are not run, so only the wheel's sipctl is importable.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    wheel = next(wheels.glob("sipctl-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return python


def checkout(work: Path, revision: str) -> Path:
    """A worktree of this repository at ``revision`` (remove it with ``remove_checkout``)."""
    tree = work / f"at-{revision}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision],
        check=True,
        capture_output=True,
    )
    return tree


def remove_checkout(tree: Path) -> None:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False
    )


def print_table(rows: list[dict[str, str]]) -> None:
    headers = list(rows[0])
    widths = [max(len(h), *(len(r.get(h, "")) for r in rows)) for h in headers]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(row.get(h, "").rjust(w) for h, w in zip(headers, widths, strict=True)))
