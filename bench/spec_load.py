"""How long loading a spec takes, and how fast hostile YAML is refused.

    python bench/spec_load.py

Prints one table: the time and peak memory (of a child process each) of ``load_spec`` for
specs of 10 to 10,000 users, the issue's 369-byte alias bomb and a megabyte of nesting.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_MEASURE = """
import json, resource, sys, time
from sipctl.errors import SpecError
from sipctl.schemas.loader import load_spec
start = time.perf_counter()
try:
    load_spec(sys.argv[1])
    outcome = "loaded"
except SpecError as exc:
    outcome = "refused: " + str(exc).split(": ", 1)[1][:40]
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss, "outcome": outcome}))
"""


def users_spec(count: int) -> str:
    users = "".join(f"  user{i}: {1000 + i}\n" for i in range(count))
    return f"version: 1\ndomain: mysite.ru\nusers:\n{users}"


def alias_bomb() -> str:
    names = "abcdefghi"
    lines = ["version: 1", "domain: mysite.ru", "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nesting() -> str:
    half = 499_000
    return "version: 1\ndomain: mysite.ru\nusers: " + "[" * half + "]" * half + "\n"


def main() -> None:
    cases = {f"{n} users": users_spec(n) for n in (10, 1000, 10000)}
    cases["alias bomb"] = alias_bomb()
    cases["1 MB of [ ]"] = nesting()
    print(f"{'spec':<14} {'bytes':>9} {'seconds':>8} {'peak MB':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases.items():
            path = Path(tmp) / "sipctl.yaml"
            path.write_text(text)
            done = subprocess.run(
                [sys.executable, "-c", _MEASURE, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(done.stdout)
            print(
                f"{name:<14} {len(text.encode()):>9} {r['seconds']:>8.3f} "
                f"{r['rss_mb']:>8.1f}  {r['outcome']}"
            )


if __name__ == "__main__":
    main()
