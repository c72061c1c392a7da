"""The command line before click reads it: Terraform's spellings and global flags anywhere.

Kept free of heavy imports: it runs on every start.

- Terraform's single-dash options (``-auto-approve``, ``-out=plan``, ``-target=dns``,
  ``-detailed-exitcode``, ``-no-color``, ``-json``) are hidden aliases of sipctl's ``--``
  spellings. Without this, click would read ``-out`` as ``-o ut``.
- ``--quiet``, ``--debug`` and ``--profile FILE`` may stand anywhere; they are global, so
  they move in front of the subcommand, where the root command reads them (with ``-v`` and
  ``--no-color``).
"""

from __future__ import annotations

TERRAFORM_ALIASES = frozenset(
    {"auto-approve", "out", "target", "detailed-exitcode", "no-color", "json", "force"}
)
GLOBAL_FLAGS = frozenset({"--quiet", "--debug"})
GLOBAL_OPTIONS = frozenset({"--profile"})  # global options that take a value


def normalize_argv(argv: list[str]) -> list[str]:
    """``argv`` with Terraform's spellings translated and global flags in front."""
    hoisted: list[str] = []
    rest: list[str] = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            rest.extend(argv[index:])
            break
        if arg in GLOBAL_FLAGS or arg.partition("=")[0] in GLOBAL_OPTIONS:
            hoisted.append(arg)
            if arg in GLOBAL_OPTIONS and index + 1 < len(argv):
                hoisted.append(argv[index + 1])
                skip = True
            continue
        rest.append(_terraform(arg))
    return hoisted + rest


def _terraform(arg: str) -> str:
    if not arg.startswith("-") or arg.startswith("--"):
        return arg
    name, eq, value = arg[1:].partition("=")
    if name in TERRAFORM_ALIASES:
        return f"--{name}{eq}{value}"
    return arg


def refuse_empty_spec(argv: list[str]) -> None:
    """``-f ""`` (``-f "$SPECS"`` with the variable unset) would be read as the current
    directory, whose every spec a run then plans or applies: refused, before click reads
    it (its path type makes '' the directory '.', which a later check cannot tell apart)."""
    for index, arg in enumerate(argv):
        if arg == "--":
            return
        given = argv[index + 1] if arg in ("-f", "--file") and index + 1 < len(argv) else None
        if given == "" or arg in ("--file=", "-f="):
            from sipctl.errors import SpecError

            raise SpecError(
                f"{arg.rstrip('=')} '': an empty path (an unset variable in a script?); "
                "name a spec file or a directory"
            )
