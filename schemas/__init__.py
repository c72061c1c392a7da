"""The spec of sipctl: pydantic models, the YAML loader that keeps positions, the JSON Schema.

Nothing is imported here up front (a command that reads no spec, like --help, must not pay
for pydantic): the names below are imported when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipctl.schemas.loader import LoadedSpec, load_spec, load_spec_text
    from sipctl.schemas.spec import Spec

__all__ = ["LoadedSpec", "Spec", "load_spec", "load_spec_text"]


def __getattr__(name: str) -> Any:
    if name == "Spec":
        from sipctl.schemas.spec import Spec

        return Spec
    if name in __all__:
        from sipctl.schemas import loader

        return getattr(loader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
