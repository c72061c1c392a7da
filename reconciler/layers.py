"""The layers sipctl manages, in one table: which spec section, which provider, which renderer.

Renderers are pure: ``render(spec) -> list[Resource]`` and ``artefacts(spec) -> {file: text}``
(for ``sipctl render --dir``). They are imported only when their layer is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from sipctl.reconciler.resources import Resource

if TYPE_CHECKING:
    from sipctl.schemas.spec import Spec


@dataclass(frozen=True)
class Layer:
    name: str
    section: Callable[[Spec], Any]  # the spec section, None when the layer is not managed
    provider_name: Callable[[Spec], str]
    render_path: str  # "module:function" -> list[Resource]
    artefacts_path: str  # "module:function" -> dict[str, str]
    # "module:function" (kind, name, value) -> {what: text}: a resource in the spec's words,
    # for plans (reconciler/describe.py); "" = described by its address only.
    describe_path: str = ""
    # "module:function" (Change) -> lines: for a layer whose change reads best as a whole
    # (a certificate's renewal and its reason); used instead of describe_path.
    describe_change_path: str = ""
    # The section ``render --dir`` writes the artefacts of, where it differs from the
    # managed one (a host's customer renders its page, which its host's plan publishes).
    rendered_section: Callable[[Spec], Any] | None = None
    # the spec's key that makes this layer managed, for messages (default: the layer's name)
    key: str = ""

    @property
    def spec_key(self) -> str:
        return self.key or self.name

    def managed(self, spec: Spec) -> bool:
        """A layer whose section is left out is not managed at all."""
        return self.section(spec) is not None

    def rendered(self, spec: Spec) -> bool:
        """``render --dir`` writes this layer's artefacts of ``spec``."""
        return (self.rendered_section or self.section)(spec) is not None

    def render(self, spec: Spec) -> list[Resource]:
        result: list[Resource] = _load(self.render_path)(spec)
        return result

    def artefacts(self, spec: Spec) -> dict[str, str]:
        result: dict[str, str] = _load(self.artefacts_path)(spec)
        return result

    def describer(self) -> Callable[[str, str, Any], dict[str, str]] | None:
        return _load(self.describe_path) if self.describe_path else None

    def change_describer(self) -> Callable[[Any], list[str]] | None:
        return _load(self.describe_change_path) if self.describe_change_path else None


def _load(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    func: Callable[..., Any] = getattr(import_module(module), name)
    return func


def _dns_provider(spec: Spec) -> str:
    return spec.dns.provider if spec.dns is not None else "rfc2136"


def tls_section(spec: Spec) -> Any:
    """asterisk.tls while the asterisk layer is present: the certificate layer's section."""
    if spec.asterisk is None or spec.asterisk.ensure == "absent":
        return None
    return spec.asterisk.tls


def webrtc_section(spec: Spec) -> Any:
    """webrtc, managed by the plan of a spec that is not a host's customer: a customer's
    page is published by its host's plan, under the host's web root."""
    return spec.webrtc if spec.host is None else None


def _firewall_provider(spec: Spec) -> str:
    return spec.firewall.backend if spec.firewall is not None else "iptables"


# Listed in the order plans are shown; apply order comes from the change phases (plan.py).
LAYERS: tuple[Layer, ...] = (
    Layer(
        "dns",
        lambda s: s.dns,
        _dns_provider,
        "sipctl.reconciler.render.dns:render_dns",
        "sipctl.reconciler.render.dns:dns_artefacts",
        "sipctl.reconciler.describe:describe_dns",
    ),
    Layer(
        "asterisk",
        lambda s: s.asterisk,
        lambda s: "asterisk",
        "sipctl.reconciler.render.asterisk:render_asterisk",
        "sipctl.reconciler.render.asterisk:asterisk_artefacts",
        "sipctl.reconciler.describe:describe_asterisk",
    ),
    Layer(
        "certificate",
        tls_section,
        lambda s: "certificate",
        "sipctl.reconciler.render.certificate:render_certificate",
        "sipctl.reconciler.render.certificate:certificate_artefacts",
        describe_change_path="sipctl.reconciler.render.certificate:describe_certificate_change",
        key="asterisk.tls",
    ),
    Layer(
        "firewall",
        lambda s: s.firewall,
        _firewall_provider,
        "sipctl.reconciler.render.firewall:render_firewall",
        "sipctl.reconciler.render.firewall:firewall_artefacts",
        "sipctl.reconciler.describe:describe_firewall",
    ),
    Layer(
        "fail2ban",
        lambda s: s.fail2ban,
        lambda s: "fail2ban",
        "sipctl.reconciler.render.fail2ban:render_fail2ban",
        "sipctl.reconciler.render.fail2ban:fail2ban_artefacts",
        describe_change_path="sipctl.reconciler.render.fail2ban:describe_fail2ban_change",
    ),
    Layer(
        "webrtc",
        webrtc_section,
        lambda s: "webrtc",
        "sipctl.reconciler.render.webrtc:render_webrtc",
        "sipctl.reconciler.render.webrtc:webrtc_artefacts",
        "sipctl.reconciler.render.webrtc:describe_webrtc",
        rendered_section=lambda s: s.webrtc,
    ),
)

LAYER_NAMES = tuple(layer.name for layer in LAYERS)


def layer_named(name: str) -> Layer:
    for layer in LAYERS:
        if layer.name == name:
            return layer
    raise KeyError(name)
