"""--target of a layer a spec does not manage names the spec key that would manage it, a
key the spec really has (the certificate's is asterisk.tls, not a 'certificate' section);
a comma list says to repeat --target."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipctl.cli import run
from sipctl.reconciler.layers import LAYERS, Layer
from sipctl.schemas.spec import Spec


def _is_spec_key(dotted: str) -> bool:
    model: object = Spec
    for part in dotted.split("."):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return False
        annotation = fields[part].annotation
        model = next(
            (
                a
                for a in getattr(annotation, "__args__", (annotation,))
                if hasattr(a, "model_fields")
            ),
            None,
        )
    return True


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_a_layer_not_managed_is_told_by_its_spec_key(
    layer: Layer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text("version: 1\ndomain: example.org\n")
    name, key = layer.name, layer.spec_key
    assert _is_spec_key(key), key
    assert run(["plan", "-f", str(spec), "--target", name]) == 1
    err = capsys.readouterr().err
    assert f"--target {name}: {spec} has no '{key}' section" in err, err


def test_several_layers_in_one_target_are_told_to_repeat_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "sipctl.yaml"
    spec.write_text("version: 1\ndomain: example.org\n")
    assert run(["plan", "-f", str(spec), "--target", "dns,asterisk"]) == 1
    assert "--target dns --target asterisk" in capsys.readouterr().err
