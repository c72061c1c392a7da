"""The JSON Schema of the spec, generated from the models (committed as sipctl.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

from sipctl.schemas.spec import Spec

SCHEMA_FILE = Path(__file__).with_name("sipctl.schema.json")


def schema_text() -> str:
    schema = Spec.model_json_schema(mode="validation")
    schema = {
        **schema,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sipctl spec, version 1",
    }
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
