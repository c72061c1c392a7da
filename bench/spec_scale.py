"""Bench: a spec with many users, on local targets (a zone file and a ``dir:`` host root).

For each size: ``validate``, a no-op ``plan`` (everything already applied), and a ``plan``
after adding ONE user, whose human output should be the change and a line summarising the
unchanged. Whole processes, sipctl installed from a wheel; cpu seconds from the kernel,
peak RSS of the process.

Run: ``python bench/spec_scale.py`` (``--sizes 10000,50000``).

Measured on 2 cores at load about 1, best of 2 (before -> after the start-up and spec work):
10,000 users validate 1.11 -> 0.66 s, no-op plan 1.85 -> 1.33 s, plan +1 user 2.87 -> 1.42 s
(5 lines); 50,000 users validate 2.51 -> 1.03 s, no-op plan 6.19 -> 2.66 s, 184 -> 149 MB,
plan +1 user 9.22 -> 4.96 s. About 0.5 s of each is start-up (see bench/startup.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import REPO, Sample, installed_sipctl, print_table, run_measured


def spec_text(users: int) -> str:
    """The README's example spec with ``users`` more users."""
    example = (REPO / "examples" / "mysite.yaml").read_text()
    head, rest = example.split("\nusers:\n", 1)
    lines = "".join(f"  user{i}: {100000 + i}\n" for i in range(users))
    return f"{head}\nusers:\n{lines}{rest}"


def best(samples: list[Sample]) -> Sample:
    return min(samples, key=lambda s: s.cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="users per spec")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (the best is shown)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipctl-bench-"))
    python = installed_sipctl(work)
    sipctl = [str(python), "-m", "sipctl"]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        home = work / f"users{size}"
        home.mkdir()
        (home / "sipctl.yaml").write_text(spec_text(size))
        (home / "more.yaml").write_text(spec_text(size + 1))
        setup = run_measured([*sipctl, "apply", "--auto-approve"], cwd=home)
        assert setup.returncode == 0, "the bench spec must apply"
        validate = best([run_measured([*sipctl, "validate"], cwd=home) for _ in range(args.runs)])
        noop = best(
            [
                run_measured([*sipctl, "plan", "--detailed-exitcode"], cwd=home)
                for _ in range(args.runs)
            ]
        )
        assert noop.returncode == 0, "a plan of an applied spec must have no changes"
        one = best(
            [
                run_measured([*sipctl, "plan", "-f", "more.yaml", "--no-color"], cwd=home)
                for _ in range(args.runs)
            ]
        )
        change_lines = one.stdout.split("\nPlan:")[0].count("\n") + 1
        rows.append(
            {
                "users": f"{size:,}",
                "validate": f"{validate.cpu:.2f} s",
                "no-op plan": f"{noop.cpu:.2f} s",
                "no-op RSS": f"{noop.rss_mb:.0f} MB",
                "plan +1 user": f"{one.cpu:.2f} s",
                "+1 plan lines": str(change_lines),
            }
        )
    print_table(rows)
    print("\ncpu seconds (user + system) of the best of", args.runs, "runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
