"""Shell completion: the protocol each shell's script speaks (the environment typer reads,
with no terminal; asked in-process), then the script the installed ``sipctl
--show-completion`` prints, run by the real bash, zsh and fish, which ask the installed
``sipctl``.

``sipctl val<TAB>`` must become ``validate`` and ``sipctl plan --det<TAB>``
``--detailed-exitcode``; a completion request has no arguments of its own, which once
printed the help instead of an answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.common import sipctl_in_process
from fixtures.state_dir import child_env

SIPCTL = Path(sys.executable).with_name("sipctl")  # the console script pip installed

# (what the user typed, the word the shell must complete it to)
TYPED = [("sipctl val", "validate"), ("sipctl plan --det", "--detailed-exitcode")]


def shell_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return child_env(
        {
            "PATH": f"{SIPCTL.parent}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            **extra,
        }
    )


def ask(tmp_path: Path, env: dict[str, str]) -> str:
    """What ``sipctl`` answers a completion request (argv empty, as every shell sends it),
    asked in this process (the scripts below ask the installed program)."""
    done = sipctl_in_process(env=shell_env(tmp_path, **env))
    assert done.returncode == 0, done.stderr
    assert "Usage:" not in done.stdout + done.stderr, "help printed instead of completions"
    return done.stdout


def protocol(shell: str, typed: str) -> dict[str, str]:
    """The environment the script of ``shell`` sets for ``sipctl`` when TAB follows ``typed``."""
    if shell == "bash":
        words = typed.split(" ")
        return {
            "_SIPCTL_COMPLETE": "complete_bash",
            "COMP_WORDS": typed,
            "COMP_CWORD": str(len(words) - 1),
        }
    env = {"_SIPCTL_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": typed}
    if shell == "fish":
        env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return env


def words(shell: str, answer: str) -> list[str]:
    """The candidate words in ``answer``, in the form each shell's script reads."""
    if shell == "bash":
        return answer.split()
    if shell == "fish":  # word<TAB>description, one a line
        return [line.split("\t")[0] for line in answer.splitlines()]
    # zsh: _arguments '*: :(("word":"description"<newline>"word":"description"...))'
    lines = answer.removeprefix("_arguments '*: :((").splitlines()
    return [line.split('"')[1] for line in lines if line.startswith('"')]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize(("typed", "expected"), TYPED)
def test_the_protocol_completes_commands_and_options(
    tmp_path: Path, shell: str, typed: str, expected: str
) -> None:
    assert words(shell, ask(tmp_path, protocol(shell, typed))) == [expected]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_an_empty_word_offers_every_command(tmp_path: Path, shell: str) -> None:
    offered = words(shell, ask(tmp_path, protocol(shell, "sipctl ")))
    assert {"validate", "plan", "apply", "drift", "audit"} <= set(offered), offered


def completion_script(tmp_path: Path, shell: str) -> Path:
    """The script ``sipctl --show-completion`` prints when run from ``shell`` (it detects the
    shell it runs in); ``; true`` keeps the shell from replacing itself with sipctl."""
    done = subprocess.run(
        [shell, "-c", "sipctl --show-completion; true"],
        env=shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    assert "_SIPCTL_COMPLETE" in done.stdout
    script = tmp_path / f"sipctl.{shell}"
    script.write_text(done.stdout)
    return script


def run_shell(tmp_path: Path, argv: list[str]) -> str:
    done = subprocess.run(
        argv, env=shell_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("typed", "expected"), TYPED)
def test_bash_runs_its_script(tmp_path: Path, typed: str, expected: str) -> None:
    """The function the script registers with ``complete -F``, called as bash calls it."""
    script = completion_script(tmp_path, "bash")
    program = (
        f"source {script}\n"
        "complete -p sipctl\n"
        f"COMP_WORDS=({typed})\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        "_sipctl_completion sipctl\n"
        "printf 'reply:%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    if typed.endswith(" "):
        program = program.replace("COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))", "COMP_CWORD=1")
    out = run_shell(tmp_path, ["bash", "--norc", "--noprofile", "-c", program])
    assert "-F _sipctl_completion sipctl" in out
    assert [line[6:] for line in out.splitlines() if line.startswith("reply:")] == [expected]


@pytest.mark.programs
@pytest.mark.parametrize(("typed", "expected"), TYPED)
def test_fish_runs_its_script(tmp_path: Path, typed: str, expected: str) -> None:
    script = completion_script(tmp_path, "fish")
    out = run_shell(
        tmp_path,
        ["fish", "--no-config", "-c", f"source {script}; complete --do-complete '{typed}'"],
    )
    assert [line.split("\t")[0] for line in out.splitlines()] == [expected]


# An interactive zsh on a pseudo-terminal (zsh's own zpty), with its completion system
# loaded and sipctl's script sourced: type the words and TAB, then make the shell print the
# line it completed (Ctrl-A, "print -r -- ::", Ctrl-E, "::", Enter).
ZSH_DRIVER = r"""
zmodload zsh/zpty
script=$1 typed=$2
zpty -b z 'zsh -f -i'
zpty -w z 'PS1="> "; autoload -Uz compinit; compinit -u -D'
zpty -w z "source ${(q)script}"
zpty -w -n z "${typed}"$'\t'
sleep 0.5
zpty -w -n z $'\C-a''print -r -- ::'$'\C-e''::'$'\n'
out=""
for i in {1..600}; do
  zpty -r -t z chunk && out+=$chunk
  [[ $out == *$'\n'::sipctl*::* ]] && break  # the line printed, not the line edited
  sleep 0.1
done
zpty -d z
print -r -- "$out" | tr -d '\r' | grep -a -x '::sipctl.*::'
"""


@pytest.mark.programs
@pytest.mark.parametrize(("typed", "expected"), TYPED)
def test_zsh_runs_its_script(tmp_path: Path, typed: str, expected: str) -> None:
    script = completion_script(tmp_path, "zsh")
    driver = tmp_path / "drive.zsh"
    driver.write_text(ZSH_DRIVER)
    out = run_shell(tmp_path, ["zsh", "-f", str(driver), str(script), typed])
    line = typed.rsplit(" ", 1)[0] + " " + expected
    assert out.strip() == f"::{line}::", out
