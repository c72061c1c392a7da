"""The SSH login to a host (paramiko): its host key checked, its user, its key.

The host key is checked against the spec's ``known_hosts`` (hashed and ``[host]:port``
entries included). An unknown or changed key is refused — never added — with the
fingerprint the server offered and how to add it after checking it out of band. The key is
the spec's ``ssh.key_file``, else ssh-agent's and ``~/.ssh/id_*``. Every failure is one
line that says what to check, never a key's content.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from sipctl.errors import FileTooLarge, ProviderError
from sipctl.schemas.targets import TargetRef

if TYPE_CHECKING:
    from sipctl.providers.base import RunContext
    from sipctl.schemas.spec import Ssh

# paramiko logs failures of its transport thread with tracebacks; with no handler of its own
# Python's last-resort handler would print them to stderr, beside our one-line error.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
# A known_hosts of 100,000 hosts is some 40 MB; a file beyond this is not one (/dev/zero)
MAX_KNOWN_HOSTS_BYTES = 64 << 20


class _HostKeyRefused(Exception):
    """Raised by the policy below when the server's key is not in known_hosts."""

    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("unknown host key")
        self.key = key


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise _HostKeyRefused(key)


class SshLogin:
    """How to log in to one host; ``connect`` makes a new client each time it is asked."""

    def __init__(self, ref: TargetRef, options: Ssh, ctx: RunContext) -> None:
        self.ref = ref
        self._options = options
        self._ctx = ctx
        self.user = ref.user or _local_user(ctx)

    def _local_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._ctx.base_dir / path

    @property
    def known_hosts(self) -> Path:
        return self._local_path(self._options.known_hosts)

    def _host_key_name(self) -> str:
        return self.ref.host if self.ref.port == 22 else f"[{self.ref.host}]:{self.ref.port}"

    def connect(self) -> paramiko.SSHClient:
        """A new logged-in client; ProviderError saying what to check when it cannot be."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RefuseUnknown())
        _load_known_hosts(self.ref, self.known_hosts, client.get_host_keys())
        auth, tried = self._auth_arguments()
        timeout = self._options.connect_timeout
        try:
            client.connect(
                self.ref.host,
                port=self.ref.port,
                username=self.user,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                **auth,  # type: ignore[arg-type]
            )
        except Exception as exc:
            client.close()
            raise self._connect_error(exc, tried) from exc
        return client

    def _auth_arguments(self) -> tuple[dict[str, object], str]:
        """paramiko's auth options, and a description of the keys tried, for messages."""
        key_file = self._options.key_file
        if key_file:
            path = self._local_path(key_file)
            return {
                "pkey": _load_key(self.ref, path),
                "allow_agent": False,
                "look_for_keys": False,
            }, (f"key file {path}")
        tried = []
        if os.environ.get("SSH_AUTH_SOCK"):
            tried.append("the keys of ssh-agent")
        home = Path("~/.ssh").expanduser()
        tried += [str(home / name) for name in _DEFAULT_KEYS if (home / name).exists()]
        return {"allow_agent": True, "look_for_keys": True}, ", ".join(tried) or (
            "no key (no key_file, no ssh-agent, no ~/.ssh/id_*)"
        )

    def _connect_error(self, exc: Exception, tried: str) -> ProviderError:
        where = f"{self.ref}"
        if isinstance(exc, _HostKeyRefused):
            return ProviderError(
                f"{where}: host key not known: the server offered {_describe(exc.key)}, "
                f"which is not in {self.known_hosts}; check that fingerprint out of band, "
                f"then add it with "
                f"`ssh-keyscan -p {self.ref.port} {self.ref.host} >> {self.known_hosts}`"
            )
        if isinstance(exc, paramiko.BadHostKeyException):
            return ProviderError(
                f"{where}: host key CHANGED: the server offered {_describe(exc.key)}, but "
                f"{self.known_hosts} has {_describe(exc.expected_key)}; this may be an attack — "
                f"if the host was reinstalled, check the new key out of band, then run "
                f"`ssh-keygen -R '{self._host_key_name()}' -f {self.known_hosts}` and "
                f"`ssh-keyscan -p {self.ref.port} {self.ref.host} >> {self.known_hosts}`"
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return ProviderError(
                f"{where}: the server refused to log in user {self.user!r} (tried: {tried}); "
                f"authorize the key for that user, or set ssh.key_file"
            )
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            if all(getattr(e, "errno", None) == errno.ECONNREFUSED for e in exc.errors.values()):
                return ProviderError(
                    f"{where}: connection refused on port {self.ref.port}: is sshd running?"
                )
            return ProviderError(f"{where}: host unreachable (no route to {self.ref.host})")
        if isinstance(exc, socket.gaierror):
            return ProviderError(f"{where}: cannot resolve host name {self.ref.host!r}")
        if isinstance(exc, TimeoutError | socket.timeout):
            return ProviderError(
                f"{where}: no answer within {self._options.connect_timeout:g} s "
                f"(host down, or a firewall drops port {self.ref.port})"
            )
        if isinstance(exc, ConnectionRefusedError):
            return ProviderError(
                f"{where}: connection refused on port {self.ref.port}: is sshd running?"
            )
        if isinstance(exc, OSError):
            return ProviderError(f"{where}: cannot connect: {exc.strerror or exc}")
        if isinstance(exc, paramiko.SSHException):
            text = str(exc)
            if "banner" in text or "No existing session" in text:
                return ProviderError(
                    f"{where}: no SSH answer on port {self.ref.port} within "
                    f"{self._options.connect_timeout:g} s (is an SSH server listening there?)"
                )
            return ProviderError(f"{where}: SSH handshake failed: {text}")
        return ProviderError(f"{where}: cannot connect: {exc}")


def _load_known_hosts(ref: TargetRef, path: Path, into: paramiko.HostKeys) -> None:
    """Add the entries of a known_hosts file (hashed and ``[host]:port`` ones included).

    Like OpenSSH, a line that cannot be parsed is skipped rather than failing every host;
    ``@cert-authority`` and ``@revoked`` lines are skipped too (not supported). The keys go
    to the client's own table, which is never saved: nothing is ever added to the file.
    """
    from sipctl.schemas.admin_files import read_regular_file

    try:
        data = read_regular_file(path, MAX_KNOWN_HOSTS_BYTES)
    except FileNotFoundError:
        return
    except FileTooLarge as exc:
        raise ProviderError(f"{ref}: known_hosts {exc}") from None
    except OSError as exc:
        raise ProviderError(f"{ref}: cannot read known_hosts {path}: {exc.strerror}") from exc
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("@"):
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
        except (paramiko.hostkeys.InvalidHostKey, paramiko.SSHException, ValueError):
            continue
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            into.add(name, entry.key.get_name(), entry.key)


def _load_key(ref: TargetRef, path: Path) -> paramiko.PKey:
    """Load a private key; every failure is one line that names the file, never its content."""
    from sipctl.schemas.admin_files import MAX_ADMIN_FILE_BYTES, read_regular_file

    if not path.exists():
        raise ProviderError(f"{ref}: ssh.key_file {path} does not exist")
    try:
        # A FIFO, a device or a huge file is refused by the one reader before paramiko opens
        # the file (it would wait, or never end). paramiko then reads the (small) file again:
        # it finds a key's type only from a path, and finding it here would copy its job.
        read_regular_file(path, MAX_ADMIN_FILE_BYTES)
        return paramiko.PKey.from_path(path)
    except FileTooLarge as exc:
        raise ProviderError(f"{ref}: ssh.key_file {exc}") from None
    except TypeError as exc:
        # cryptography says "password was not given but private key is encrypted".
        raise ProviderError(
            f"{ref}: ssh.key_file {path} is protected by a passphrase; load it into ssh-agent "
            f"(`ssh-add {path}`) and leave key_file out of the spec"
        ) from exc
    except paramiko.PasswordRequiredException as exc:
        raise ProviderError(
            f"{ref}: ssh.key_file {path} is protected by a passphrase; use ssh-agent"
        ) from exc
    except OSError as exc:
        raise ProviderError(f"{ref}: cannot read ssh.key_file {path}: {exc.strerror}") from exc
    except (ValueError, paramiko.SSHException) as exc:
        # The library's message may quote the key's bytes: it is left out.
        raise ProviderError(
            f"{ref}: ssh.key_file {path} is not a private key sipctl can use "
            "(ed25519, ecdsa or rsa)"
        ) from exc


def _describe(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def _local_user(ctx: RunContext) -> str:
    import getpass

    return ctx.env.get("USER") or getpass.getuser()
