"""Declared host reads fetched together (``providers/transport/batch.py``), on this machine's
real file system and programs: every read gets exactly what it would get alone, in one round
trip per host, and a host that cannot be read fails each read of it, naming host and file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.properties import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipctl.errors import ProviderError
from sipctl.providers.base import RunContext
from sipctl.providers.firewall.shell import parse_sections
from sipctl.providers.transport.batch import HostRead, HostScript, fetch
from sipctl.providers.transport.pool import HostTransport

NAMES = ("a.conf", "b.conf", "c.conf", "missing.conf")
WORDS = ("one", "two", "three")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in NAMES[:-1]:
        (tmp_path / name).write_text(f"content of {name}\n")
    return tmp_path


def _script(boundary: str) -> str:
    """A read script as the firewall's: sections between boundary lines, stderr of its own."""
    return (
        f"printf '\\n%s %s\\n' \"{boundary}\" said\n"
        "echo hello; echo oops >&2\n"
        f'printf \'\\n%s rc=%s\\n\' "{boundary}" "$?"\n'
    )


def _read(
    transport: HostTransport, root: Path, names: list[str], words: list[str], script: bool
) -> HostRead:
    return HostRead(
        transport,
        files=tuple(str(root / n) for n in names),
        programs=tuple(("printf", "%s", w) for w in words),
        script=HostScript("test-script", _script) if script else None,
    )


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.lists(
        st.tuples(
            st.integers(0, 1),  # which host
            st.lists(st.sampled_from(NAMES), max_size=4),
            st.lists(st.sampled_from(WORDS), max_size=3),
            st.booleans(),  # with a read script
        ),
        min_size=1,
        max_size=5,
    )
)
def test_each_read_gets_what_it_would_alone_in_one_round_trip_per_host(
    files: Path, shape: list[tuple[int, list[str], list[str], bool]]
) -> None:
    ctx = RunContext(base_dir=files)
    try:
        # two "hosts": this machine, and the same directory as a dir: target's root
        hosts: list[HostTransport] = [ctx.transports.get("local"), ctx.transports.get("dir:/")]
        reads = [  # a dir: target runs no program
            _read(hosts[host], files, names, words if host == 0 else [], script and host == 0)
            for host, names, words, script in shape
        ]
        alone = [
            r.transport.read_and_run(list(r.files), [list(p) for p in r.programs]) for r in reads
        ]
        asked: list[int] = []
        with pytest.MonkeyPatch.context() as patch:
            for kind in {type(h) for h in hosts}:
                original = kind.read_and_run

                def counted(self, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
                    asked.append(id(self))
                    return _original(self, *args, **kwargs)

                patch.setattr(kind, "read_and_run", counted)
            fetched = fetch(reads)
        wanted = {id(r.transport) for r in reads if r.files or r.programs or r.script}
        assert sorted(asked) == sorted(wanted), "one round trip per host"
        for read, got, (files_alone, results_alone) in zip(reads, fetched, alone, strict=True):
            assert got.read is read
            assert {p: f.content for p, f in got.files.items()} == {
                p: f.content for p, f in files_alone.items()
            }
            assert [(r.exit_status, r.stdout) for r in got.results] == [
                (r.exit_status, r.stdout) for r in results_alone
            ]
            if read.script is not None:
                sections = parse_sections(got.script.stdout, got.script.boundary)
                assert sections["said"].body.split() == ["hello", "oops"]
                assert sections["said"].status == 0
    finally:
        ctx.close()


def test_a_host_that_cannot_be_read_fails_each_of_its_reads_naming_host_and_file(
    files: Path,
) -> None:
    (files / "link.conf").symlink_to(files / "a.conf")
    ctx = RunContext(base_dir=files)
    try:
        host = ctx.transports.get(f"dir:{files}")
        broken = HostRead(host, files=("/b.conf", "/link.conf"))
        fine = HostRead(host, files=("/c.conf",))
        first, second = fetch([broken, fine])
        for got in (first, second):
            assert got.error is not None
            with pytest.raises(ProviderError) as raised:
                _ = got.files
            message = raised.value.message
            assert "/link.conf" in message and str(files) in message, message
            assert "content of a.conf" not in message  # what it points to: never
    finally:
        ctx.close()
