"""Resources: what sipctl wants to exist (desired) or found (live), by address and value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# A JSON-able value: dict/list/str/int/float/bool/None, normalized by whoever built it.
Value = Any

LAYERS = ("dns", "firewall", "fail2ban", "certificate", "asterisk")


@dataclass(frozen=True, order=True)
class Address:
    """What a resource is: unique within one target (e.g. ``dns SRV _sip._udp.mysite.ru.``)."""

    layer: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.layer}.{self.kind}[{self.name}]"

    def to_json(self) -> dict[str, str]:
        return {"layer": self.layer, "kind": self.kind, "name": self.name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Address:
        return cls(layer=str(data["layer"]), kind=str(data["kind"]), name=str(data["name"]))


@dataclass(frozen=True)
class Resource:
    """A desired resource.

    ``value`` is normalized and is what is compared with the live value. ``payload`` is what a
    provider writes to make it so (e.g. the exact text of a file); it is not compared, so a
    comment or whitespace difference never produces a change by itself.
    """

    address: Address
    value: Value
    payload: Value = None


class Kept:
    """What one provider's read keeps for its own ``apply`` (the exact bytes it read, the
    full rrsets for an UPDATE's prerequisites, ...): each provider subclasses it with a
    dataclass of typed fields, every field with a default. Never saved in a plan file."""


K = TypeVar("K", bound=Kept)


@dataclass
class LiveState:
    """What a provider read from one target. ``read`` fills it; nothing here writes.

    resources  normalized live values of the owned things that exist (absent = missing)
    notes      warnings shown with the plan (e.g. "sound bad-user not found on the PBX")
    problems   errors that stop the plan before anything is applied
    hazards    changes refused for safety unless --force (e.g. the firewall would cut SSH)
    host_hazards  changes refused that --force cannot pass: only the host profile, the PBX
               admin's own file, lifts them (a guest jump into the admin's dialplan that can
               call out: ``safety.FORCE_CANNOT_PASS``)
    skipped    one line each for what this target cannot do (e.g. no program to reload)
    kept       what the provider's apply needs from its read (its own ``Kept`` subclass)
    unloaded   resources that hold their value on the target while the program serving them
               has not loaded it (an apply was stopped between its write and the reload):
               the diff plans them as updates, so the next apply loads them
    owned_by   resources read here that are others' (what owns them, in words): the safety
               limit counts their changes against those owners, not this target's records
               (a server other domains claim, which this domain starts to use)
    """

    resources: dict[Address, Value] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hazards: list[str] = field(default_factory=list)
    host_hazards: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fingerprint_extra: Value = None
    kept: Kept | None = None
    unloaded: set[Address] = field(default_factory=set)
    owned_by: dict[Address, str] = field(default_factory=dict)

    def kept_as(self, kind: type[K]) -> K:
        """The provider's kept data as its own type; an empty one when the read kept none
        (a LiveState made elsewhere), kept from then on."""
        if self.kept is None:
            self.kept = kind()
        if not isinstance(self.kept, kind):
            raise TypeError(
                f"this live state keeps {type(self.kept).__name__}, not {kind.__name__}"
            )
        return self.kept

    def fingerprint(self, secret_forms: Sequence[str] = ()) -> str:
        """A hash of everything read: a saved plan is stale when it no longer matches. Of
        each value as the output scrub leaves it (``output.scrubbed_forms`` with
        ``secret_forms``): a secret in a live value is in no hash of the plan.

        The sha256 of ``canonical_json({"extra": ..., "resources": sorted([address, value
        as canonical JSON])})``, fed one resource at a time, and a large value's JSON a few
        thousand keys at a time: the whole document is never built (at 50,000 users the
        dialplan's JSON alone is 12 MB, and escaped again as a string inside it).
        """
        from sipctl.output import scrubbed_forms

        def masked(text: str) -> str:
            return scrubbed_forms(text, secret_forms)

        digest = hashlib.sha256()
        extra = masked(canonical_json(self.fingerprint_extra))
        digest.update(f'{{"extra":{extra},"resources":['.encode())
        # Sorted by address; addresses that print alike (none should) by their value too.
        by_address: dict[str, list[Value]] = {}
        for resource, value in self.resources.items():
            by_address.setdefault(str(resource), []).append(value)
        separator = b""
        for address in sorted(by_address):
            values = by_address[address]
            texts = sorted(canonical_json(v) for v in values) if len(values) > 1 else None
            for pieces in [[t] for t in texts] if texts else [_json_pieces(values[0])]:
                # canonical_json([address, text]), the long text escaped a piece at a time
                digest.update(separator + f"[{canonical_json(address)},".encode())
                digest.update(b'"')
                for piece in pieces:
                    _update_json_string(digest, masked(piece))
                digest.update(b'"]')
                separator = b","
        digest.update(b"]}")
        return "sha256:" + digest.hexdigest()


def _json_pieces(value: Value, keys: int = 4096) -> Iterator[str]:
    """``canonical_json(value)`` in pieces: a mapping with more than ``keys`` keys (the
    dialplan's extensions) a slice of its sorted keys at a time, so its whole text is never
    held (the pieces joined are the whole text: the keys are sorted alike)."""
    if not isinstance(value, dict) or len(value) <= keys:
        yield canonical_json(value)
        return
    ordered = sorted(value)
    yield "{"
    for start in range(0, len(ordered), keys):
        piece = canonical_json({key: value[key] for key in ordered[start : start + keys]})
        yield ("," if start else "") + piece[1:-1]
    yield "}"


def _update_json_string(digest: Any, text: str, step: int = 1 << 20) -> None:
    """Feed what ``canonical_json(text)`` holds between its quotes to ``digest`` without
    making it, for a ``text`` that is (a piece of) canonical JSON: that holds no character
    below U+0020 (the encoder escapes them all), so escaping it again only doubles its
    backslashes and escapes its quotes. Escaping is character by character: a slice at a
    time gives the whole string's."""
    for start in range(0, len(text), step):
        piece = text[start : start + step]
        digest.update(piece.replace("\\", "\\\\").replace('"', '\\"').encode())


def canonical_json(value: Value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
