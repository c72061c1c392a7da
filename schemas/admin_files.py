"""The admin's own YAML files (host profile, runner profile, fleet configuration): read the
same way, so each mistake in one of them is one line naming the file, the line or key, and
what to write instead, as a spec's mistakes are."""

from __future__ import annotations

import errno
import os
import select
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

# As the host profile's (MAX_PROFILE_BYTES): an admin's file is short, and one named by
# mistake (SIPCTL_PROFILE=/dev/zero, a log) is refused instead of read until memory ends.
MAX_ADMIN_FILE_BYTES = 1 << 20


def read_regular_file(path: Path, limit: int) -> bytes:
    """The content of the regular file ``path`` on this machine, of at most ``limit`` bytes
    (more: ``FileTooLarge``, naming it; a caller puts in front what the file is to it).
    Opened without waiting (``O_NONBLOCK``): a FIFO or a device named by mistake or by a
    merge request (``secret_file: /dev/zero``, a FIFO in the checkout) is an OSError "not a
    regular file", where a plain open waits for a writer for ever or reads until memory
    ends. The one way sipctl reads a local file a user or a spec names."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb", closefd=True):
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return read_open_file(fd, str(path), limit)


def read_open_file(fd: int, shown: str, limit: int) -> bytes:
    """The content of the open regular file ``fd`` (``shown``: its name in an error), of at
    most ``limit`` bytes: a larger one is refused (``FileTooLarge``) by its size before any
    byte is read, and one that grows past the limit while read once ``limit + 1`` bytes
    are. The one rule of how much sipctl reads of a file."""
    from sipctl.errors import FileTooLarge

    size = os.fstat(fd).st_size
    if size > limit:
        raise FileTooLarge(shown, size, limit)
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileTooLarge(shown, max(os.fstat(fd).st_size, len(data)), limit)
    return data


def read_spec_file(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the spec file ``path`` (the caller refuses more): a
    regular file, or a pipe a program writes to (``-f <(make-spec)``, ``-f /dev/stdin``) or
    a device (``-f /dev/zero`` ends at the limit), read to its end. Opened without waiting:
    a FIFO nothing writes to is an OSError at once, where a plain open waits for a writer
    for ever."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        fifo = stat.S_ISFIFO(os.fstat(fd).st_mode)
        chunks: list[bytes] = []
        size, waited = limit + 1, False
        while size > 0:
            try:
                chunk = os.read(fd, min(size, 1 << 16))
            except BlockingIOError:  # a writer (or a terminal), nothing written yet
                waited = True
                select.select([fd], [], [])
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
    finally:
        os.close(fd)
    # a pipe that reads as ended before any byte, without waiting, had no writer: the FIFO
    # a path names by mistake or malice (a program's pipe is held open by the program from
    # before sipctl starts: it has data, a writer, or ended with what was written)
    if fifo and not chunks and not waited:
        raise OSError(errno.EINVAL, "a FIFO no program writes to, not a regular file", str(path))
    return b"".join(chunks)


def read_admin_file(path: Path, what: str, named: str) -> str:
    """The text of the admin's file ``path`` (``what`` it is; ``named``: how the user named
    it, for the error), read no further than MAX_ADMIN_FILE_BYTES."""
    from sipctl.errors import FileTooLarge, SpecError

    try:
        data = read_regular_file(path, MAX_ADMIN_FILE_BYTES)
    except FileTooLarge as exc:
        raise SpecError(f"{named}: the {what} {exc}") from None
    except OSError as exc:
        raise SpecError(f"{named}: cannot read the {what}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{named}: the {what} is not UTF-8 text") from None


def parse_admin_file(
    text: str, source: str, model: type[M], *, what: str, hint: str, may_be_empty: bool = False
) -> M:
    """``model`` from the YAML ``text`` of ``source``; SpecError naming each bad key.

    ``what`` says what a mapping of this file is (for a file that holds none), ``hint``
    where its keys are described; ``may_be_empty``: a file without a value (empty, only
    comments) means every default."""
    import yaml
    from pydantic import ValidationError

    from sipctl.errors import SpecError
    from sipctl.schemas.messages import yaml_problem

    try:
        refuse_deep_nesting(text, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise SpecError(f"{where}: {yaml_problem(problem)}", hint=hint) from None
    if data is None and may_be_empty:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{source}: {what}", hint=hint)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{source}: {_message(err, model)}" for err in exc.errors(include_url=False)]
        raise SpecError(
            problems[0] if len(problems) == 1 else f"{source}: {len(problems)} problems",
            problems,
            hint=hint,
        ) from None


def refuse_deep_nesting(text: str, source: str) -> None:
    """A SpecError at the first section or list nested deeper than a spec may be
    (``MAX_DEPTH``), found in libyaml's events before PyYAML composes the text: PyYAML
    composes and builds by recursion, and a few thousand brackets (``[[[[...``) would end
    in a RecursionError, not a line naming the file."""
    import yaml

    from sipctl.errors import SpecError
    from sipctl.schemas.loader import MAX_DEPTH

    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
                raise SpecError(
                    f"{where}: nested more than "
                    f"{MAX_DEPTH} levels deep; no key of this file is that deep (check the "
                    "indentation and brackets)"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _message(err: Any, model: type[BaseModel]) -> str:
    """One problem of an admin file in the words of a spec's (``validation_message``):
    "must be a section ..., not a list", never pydantic's "Input should be a valid
    dictionary". The refused value and the keys of its path are quoted as a spec's are
    (``with_values_masked``): a URL's password masked, a long one cut to its beginning and
    length."""
    from sipctl.output import with_values_masked
    from sipctl.schemas.messages import unknown_key_message, validation_message

    path = tuple(err["loc"])
    dotted = ".".join(str(p) for p in path) or "(top level)"
    if err["type"] == "extra_forbidden":
        message = f"{dotted}: {unknown_key_message(path, root=model)}"
    else:
        message = f"{dotted}: {validation_message(err, path)}"
    return with_values_masked(message, err.get("input"), path)
