"""The spec of sipctl: pydantic models, the YAML loader that keeps positions, the JSON Schema."""

from sipctl.schemas.loader import LoadedSpec, load_spec, load_spec_text
from sipctl.schemas.spec import Spec

__all__ = ["LoadedSpec", "Spec", "load_spec", "load_spec_text"]
