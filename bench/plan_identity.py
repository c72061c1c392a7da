"""Bench: does this tree's sipctl print the same plans as the sipctl of git revision REV?

The specs: every example (``examples/**/*.yaml`` that is a spec) and every spec written out
in the tests (``tests/**/*.py``), REV's and then those only this tree has. A test's spec is
read from the source: a string that holds YAML with ``version`` and ``domain``, also as a
test fills it in with constants, like ``SPEC.replace("BACKEND", "nftables") + "  persist:
null\n"``; or a dict literal with ``version``. A spec a test builds with an f-string or
from values known only when it runs is not found; the run says how many f-strings it passed over.

Each spec is planned offline, on local targets, as examples/mysite.yaml is: the DNS layer
becomes a zone file under ``state/`` (created at apply), the PBX, firewall and fail2ban hosts
``dir:state/pbx``, a published page ``dir:state/web``; nothing else of the spec changes. A
text that is not a YAML mapping is planned as written: both sipctls must refuse it alike.

Both sipctls are installed from wheels (bench/measure.py) and run in the same directory,
each on a fresh copy of the spec, so that paths in their output are the same:

- ``plan --no-color`` and ``plan --json`` against empty state;
- after ``apply`` by REV's sipctl (not for a spec that obtains certificates by ACME), a
  ``plan --no-color`` of each against that state;

and for each, exit code, stdout and stderr must be byte-identical (but for the time a JSON
plan was made, its ``created_at``). As root, an apply records
a local zone file's state in /var/lib/sipctl; the run removes the records it made.

Run: ``python bench/plan_identity.py --against REV`` (``--show`` prints the first lines of
each difference). Exits 1 when any output differs.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import REPO, checkout, installed_sipctl, print_table, remove_checkout

BOOKKEEPING = Path("/var/lib/sipctl")  # root's local records (providers/bookkeeping.py)
ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "TZ": "UTC", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class Case:
    name: str  # where the spec was found
    text: str  # the spec as planned


@dataclass(frozen=True)
class Output:
    returncode: int
    stdout: str
    stderr: str


def example_specs(root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted((root / "examples").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if _is_spec(_parsed(text)):
            yield str(path.relative_to(root)), text


def test_specs(root: Path) -> tuple[list[tuple[str, str]], int]:
    """(where, text) of every spec written out in the tests; and how many f-strings look
    like a spec (not found: their values are known only when the test runs)."""
    found: dict[str, str] = {}
    formatted = 0
    for path in sorted((root / "tests").rglob("*.py")):
        where = path.relative_to(root)
        module = ast.parse(path.read_text(encoding="utf-8"))
        names: dict[str, str] = {}
        for statement in module.body:  # module constants: SPEC = """...""" (or dedented)
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                value = _static_text(statement.value, names)
                if isinstance(target, ast.Name) and value is not None:
                    names[target.id] = value
        for node in ast.walk(module):
            if isinstance(node, ast.JoinedStr):
                parts = "".join(
                    v.value for v in node.values if isinstance(v, ast.Constant) and v.value
                )
                formatted += "version" in parts and "domain" in parts
            elif isinstance(node, ast.Constant | ast.Call | ast.BinOp):
                text = _static_text(node, names)
                if text is not None and "version" in text and "domain" in text and "\n" in text:
                    found.setdefault(textwrap.dedent(text), f"{where}:{node.lineno}")
            elif isinstance(node, ast.Dict):
                try:
                    value = ast.literal_eval(node)
                except (ValueError, SyntaxError, TypeError):
                    continue
                if isinstance(value, dict) and "version" in value:
                    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
                    found.setdefault(text, f"{where}:{node.lineno}")
    return [(where, text) for text, where in found.items()], formatted


def _static_text(node: ast.expr, names: dict[str, str]) -> str | None:
    """The text ``node`` evaluates to when only constants make it: a string, a module
    constant, ``dedent(...)``, ``.replace(A, B)``, ``+``; None otherwise."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _static_text(node.left, names), _static_text(node.right, names)
        return left + right if left is not None and right is not None else None
    if not isinstance(node, ast.Call) or node.keywords:
        return None
    args = [_static_text(a, names) for a in node.args]
    if None in args:
        return None
    texts = [a for a in args if a is not None]
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called == "dedent" and len(texts) == 1:
        return textwrap.dedent(texts[0])
    if called == "replace" and isinstance(func, ast.Attribute) and len(texts) == 2:
        base = _static_text(func.value, names)
        return base.replace(texts[0], texts[1]) if base is not None else None
    return None


def _parsed(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _is_spec(data: Any) -> bool:
    return isinstance(data, dict) and "version" in data and "domain" in data


def offline(text: str) -> str:
    """The spec on local targets (see the module); a text that is not a mapping as it is."""
    data = _parsed(text)
    if not isinstance(data, dict):
        return text
    spec = copy.deepcopy(data)
    dns = spec.get("dns")
    if isinstance(dns, dict):
        zone = dns.get("zone") or spec.get("domain")
        for key in ("server", "tsig", "octodns", "reload_command"):
            dns.pop(key, None)
        dns.update(provider="zonefile", file=f"state/{zone}.zone", create_file=True)
    asterisk = spec.get("asterisk")
    if isinstance(asterisk, dict):
        asterisk.pop("ssh", None)
        asterisk["target"] = "dir:state/pbx"
    for layer in ("firewall", "fail2ban"):
        section = spec.get(layer)
        if isinstance(section, dict):
            section.pop("ssh", None)
            section["target"] = "dir:state/pbx"
    webrtc = spec.get("webrtc")
    if isinstance(webrtc, dict) and webrtc.get("publish") is not None:
        webrtc["publish"] = "dir:state/web:/var/www/html/call"
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def _uses_acme(text: str) -> bool:
    data = _parsed(text)
    asterisk = data.get("asterisk") if isinstance(data, dict) else None
    tls = asterisk.get("tls") if isinstance(asterisk, dict) else None
    return isinstance(tls, dict) and tls.get("acme") is not None


_CREATED_AT = re.compile(r'^(\s*"created_at": )"[^"]*"', re.MULTILINE)


def run(python: Path, args: list[str], home: Path) -> Output:
    try:
        done = subprocess.run(
            [str(python), "-m", "sipctl", *args],
            cwd=home,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Output(-1, "", "timed out")
    stdout = _CREATED_AT.sub(r'\1"(the time)"', done.stdout) if "--json" in args else done.stdout
    return Output(done.returncode, stdout, done.stderr)


def fresh(home: Path, text: str) -> Path:
    """``home`` emptied, with the spec in it."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "sipctl.yaml").write_text(text, encoding="utf-8")
    return home


def compare(case: Case, home: Path, this: Path, old: Path) -> list[tuple[str, Output, Output]]:
    """(what, REV's output, this one's) of every run of ``case``."""
    results = []
    for what, args in (("plan", ["plan", "--no-color"]), ("plan --json", ["plan", "--json"])):
        before = run(old, args, fresh(home, case.text))
        after = run(this, args, fresh(home, case.text))
        results.append((what, before, after))
    if not _uses_acme(case.text):
        fresh(home, case.text)
        applied = run(old, ["apply", "--auto-approve", "--no-verify", "--no-color"], home)
        if applied.returncode == 0:
            snapshot = home.with_name(home.name + ".applied")
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.copytree(home, snapshot, symlinks=True)
            before = run(old, ["plan", "--no-color"], home)
            shutil.rmtree(home)
            shutil.copytree(snapshot, home, symlinks=True)
            after = run(this, ["plan", "--no-color"], home)
            shutil.rmtree(snapshot)
            results.append(("plan after apply", before, after))
    shutil.rmtree(home, ignore_errors=True)
    return results


def remove_records(token: str, before: set[str]) -> None:
    """The local records applies of this run made (their names hold the run's directory)."""
    if not BOOKKEEPING.is_dir():
        return
    for entry in BOOKKEEPING.iterdir():
        if entry.name not in before and token in entry.name and entry.is_file():
            entry.unlink()


def show(what: str, case: Case, before: Output, after: Output) -> None:
    print(f"--- {case.name}: {what} differs (exit {before.returncode} -> {after.returncode})")
    for stream in ("stdout", "stderr"):
        lines = list(
            difflib.unified_diff(
                getattr(before, stream).splitlines(),
                getattr(after, stream).splitlines(),
                f"REV {stream}",
                f"this {stream}",
                lineterm="",
            )
        )
        print("\n".join(lines[:40]))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", metavar="REV", required=True, help="git revision")
    parser.add_argument("--jobs", type=int, default=2, help="specs planned at once")
    parser.add_argument("--show", action="store_true", help="print each difference")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pi-", dir="/tmp"))
    token = work.name  # short: a record's name keeps the last 60 characters of its path
    this = installed_sipctl(work / "this")
    tree = checkout(work, args.against)
    try:
        old = installed_sipctl(work / "rev", tree)
        # REV's specs, then this tree's that REV does not have (a new one may use keys REV
        # does not know: then both cannot print the same)
        found: dict[str, str] = {}
        formatted = 0
        for root, mark in ((tree, f"{args.against}:"), (REPO, "")):
            from_tests, formatted = test_specs(root)
            for where, text in [*example_specs(root), *from_tests]:
                found.setdefault(text, mark + where)
    finally:
        remove_checkout(tree)
    cases = [Case(where, offline(text)) for text, where in found.items()]
    records = {e.name for e in BOOKKEEPING.iterdir()} if BOOKKEEPING.is_dir() else set()
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(
                pool.map(
                    lambda n_case: compare(n_case[1], work / str(n_case[0]), this, old),
                    enumerate(cases),
                )
            )
    finally:
        remove_records(token, records)
        shutil.rmtree(work, ignore_errors=True)
    differ = 0
    runs = 0
    rows = []
    for case, results in zip(cases, outcomes, strict=True):
        for what, before, after in results:
            runs += 1
            same = before == after
            if not same:
                differ += 1
                if args.show:
                    show(what, case, before, after)
        rows.append(
            {
                "spec": case.name,
                "runs": str(len(results)),
                "exit codes": ",".join(str(r[1].returncode) for r in results),
                "identical": "yes" if all(r[1] == r[2] for r in results) else "NO",
            }
        )
    print_table(rows)
    print(
        f"\n{len(cases)} specs (examples and tests of {args.against}, then those only this tree "
        f"has, unprefixed; {formatted} f-strings in this tree's tests look like specs and were "
        f"not planned), {runs} runs: "
        + ("every output byte-identical" if not differ else f"{differ} differ")
    )
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
