"""The TSIG key that signs an RFC 2136 provider's messages: which key, and its secret.

The spec names the key (``dns.tsig``: name, algorithm, and where the secret is: an
environment variable or a file). A file may be a BIND key file (``tsig-keygen NAME``), which
then says which key it is. The secret is read once, when first needed, remembered as a
secret of the run (scrubbed from every message), and checked to be strict base64: dnspython
would skip a typo's characters and make another key, and the server's BADSIG would not say
why.
"""

from __future__ import annotations

import base64
import binascii
import re
import stat
from typing import TYPE_CHECKING

import dns.exception
import dns.name
import dns.tsig
import dns.tsigkeyring

from sipctl.errors import FileTooLarge, ProviderError
from sipctl.providers.dns.wire import QueryCodec
from sipctl.schemas.admin_files import MAX_ADMIN_FILE_BYTES, read_regular_file

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.loader import LoadedSpec

_BIND_KEY_SECRET = re.compile(r'secret\s+"([^"]+)"')
_BIND_KEY_NAME = re.compile(r'\bkey\s+"?([A-Za-z0-9._-]+)"?\s*\{')
_BIND_KEY_ALGORITHM = re.compile(r'\balgorithm\s+"?([A-Za-z0-9-]+)"?\s*;')


def _is_strict_base64(text: str) -> bool:
    """RFC 4648 base64, nothing skipped: what a TSIG secret in a BIND key file is."""
    try:
        return bool(text) and bool(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return False


class _Made:
    """A keyring and the writer of its signed queries, made once per process for each key
    (name, algorithm, secret): a run over thousands of domains signs with one or two keys,
    and checking the secret, building the keyring and keying its HMAC cost as much as a
    small zone's read. Only a key that was made (its secret checked) is kept here."""

    def __init__(self, ring: dict[dns.name.Name, dns.tsig.Key]) -> None:
        self.ring = ring
        self._codec: QueryCodec | None = None

    def codec(self) -> QueryCodec:
        if self._codec is None:
            self._codec = QueryCodec(next(iter(self.ring.values())))
        return self._codec


_MADE: dict[tuple[str, str, str], _Made] = {}


def _named_key(text: str, default: tuple[str, str], where: str) -> tuple[str, str]:
    """The name and algorithm of the one key in a BIND key file (``tsig-keygen NAME``).

    A key file says which key it is; the spec's name and algorithm stand for a bare secret.
    """
    names = _BIND_KEY_NAME.findall(text)
    if len(names) > 1:
        raise ProviderError(
            f"{where}: the TSIG key file holds {len(names)} keys ({', '.join(names)}); "
            "give sipctl a file with one"
        )
    algorithm = _BIND_KEY_ALGORITHM.search(text)
    return (
        names[0] if names else default[0],
        algorithm.group(1).lower() if algorithm else default[1],
    )


class TsigKey:
    """The key of one provider's run (none: unsigned requests)."""

    def __init__(self, loaded: LoadedSpec, ctx: RunContext) -> None:
        assert loaded.spec.dns is not None
        self._loaded = loaded
        self._ctx = ctx
        self._tsig = loaded.spec.dns.tsig
        self._ring: dict[dns.name.Name, dns.tsig.Key] | None = None
        self._query_codec: QueryCodec | None = None
        self._made: _Made | None = None
        self.notes: list[str] = []  # warnings for the plan (a secret file others can read)
        # The key signing this run: the spec's, or the one a BIND key file names (a CI job
        # picks a read-only key for plan and the writing key for apply by the file it writes).
        tsig = self._tsig
        self._key: tuple[str, str] | None = (tsig.name, tsig.algorithm) if tsig else None

    def name(self) -> str:
        assert self._key is not None
        return self._key[0]

    def algorithm(self) -> str:
        return self._key[1] if self._key is not None else str(dns.tsig.default_algorithm)

    def name_text(self) -> str:
        return repr(self._key[0]) if self._key else "(none: unsigned requests)"

    @property
    def signer(self) -> str:
        """Which key signs this run's messages, for messages (its name, never its secret)."""
        self.keyring()
        return self.who()

    def who(self) -> str:
        return f"key {self._key[0]!r}" if self._key else "this host"

    def codec(self) -> QueryCodec:
        """The writer of this run's signed queries (made once: the key does not change)."""
        if self._query_codec is None:
            self.keyring()
            made = self._made
            self._query_codec = made.codec() if made is not None else QueryCodec(None)
        return self._query_codec

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key] | None:
        """The TSIG keyring, its secret read from the environment or a file (never shown)."""
        tsig = self._tsig
        if tsig is None:
            return None
        if self._ring is not None:
            return self._ring
        if tsig.secret_env is not None:
            secret = self._ctx.env.get(tsig.secret_env, "").strip()
            if not secret:
                from sipctl.schemas.env_names import unset_variable

                where = self._loaded.where(("dns", "tsig", "secret_env"))
                raise ProviderError(
                    unset_variable(
                        tsig.secret_env,
                        where,
                        "dns.tsig.secret_env",
                        f"the base64 secret of the TSIG key {tsig.name!r}",
                    )
                )
        else:
            assert tsig.secret_file is not None
            path = self._loaded.resolve_path(tsig.secret_file)
            try:
                mode = path.stat().st_mode
                data = read_regular_file(path, MAX_ADMIN_FILE_BYTES)
            except FileTooLarge as exc:
                raise ProviderError(
                    f"{self._where()}: the TSIG secret file {exc}",
                    hint="give the file that holds the key's base64 secret, or the BIND key file",
                ) from None
            except OSError as exc:
                raise ProviderError(
                    f"{self._where()}: cannot read the TSIG secret file {path}: {exc.strerror}"
                ) from None
            secret = data.decode("utf-8", errors="replace").strip()
            found = _BIND_KEY_SECRET.search(secret)  # also accept a BIND key file
            if found:
                self._key = _named_key(
                    secret, self._key or (tsig.name, tsig.algorithm), self._where()
                )
                secret = found.group(1)
            if mode & 0o044:
                readers = " and ".join(
                    who for bit, who in ((0o040, "group"), (0o004, "others")) if mode & bit
                )
                self.notes.append(
                    f"{self._where()}: the TSIG secret file {path} is readable by {readers} "
                    f"(mode {stat.S_IMODE(mode):04o}); anyone who reads it can change the zone: "
                    f"chmod 600 {path}"
                )
        self._ctx.remember_secret(secret)
        if tsig.secret_env is not None:
            from sipctl.schemas.env_names import variable_named

            source = variable_named(tsig.secret_env, "dns.tsig.secret_env")
        else:
            source = str(tsig.secret_file)
        name, algorithm = self._key or (tsig.name, tsig.algorithm)
        made = _MADE.get((name, algorithm, secret))
        if made is None:
            made = _MADE.setdefault(
                (name, algorithm, secret), self._make(name, algorithm, secret, source)
            )
        self._made, self._ring = made, made.ring
        return self._ring

    def _where(self) -> str:
        """Where the spec names the key (found only for a message: it may read the spec
        again for its positions)."""
        return self._loaded.where(("dns", "tsig"))

    def _make(self, name: str, algorithm: str, secret: str, source: str) -> _Made:
        """The keyring of a key not made before in this process; its secret checked."""
        if not _is_strict_base64(secret):
            # dnspython's decoder skips characters outside the alphabet: a typo would make
            # a different key, and the server's BADSIG would say nothing about why.
            raise ProviderError(
                f"{self._where()}: the TSIG secret of key {name!r} (from {source}) is not valid "
                "base64: only A-Z, a-z, 0-9, '+' and '/', '=' padding at the end, a multiple "
                "of 4 characters (copy it from the 'secret' of the server's key file)"
            )
        try:
            return _Made(dns.tsigkeyring.from_text({name: (algorithm, secret)}))
        except (ValueError, dns.exception.DNSException):
            raise ProviderError(
                f"{self._where()}: the TSIG key {name!r} ({algorithm}) from {source} cannot be "
                "used: check its algorithm and that the secret is base64"
            ) from None
