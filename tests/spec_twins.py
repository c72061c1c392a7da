"""What it means for the generated checker (schemas/spec_fast.py) to agree with pydantic.

``twin_of(data)`` runs both on the same plain data: when the checker accepts, pydantic must
accept too, and the two objects must be equal field by field (``assert_twins``): the same
fields in the same order, defaults included, every value of the same type (tuple, not list;
float, not int; str) and equal, mappings in the same key order, nested objects alike.

conftest.py wraps the checker with ``twin_of`` for the whole test session, so every spec any
test loads in-process is a case too.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

from pydantic import BaseModel, ValidationError

from sipctl.schemas import spec_fast
from sipctl.schemas.spec import Spec
from sipctl.schemas.spec_rules import FastModel

CHECK = spec_fast.check  # the checker itself, before conftest wraps it


def assert_twins(fast: Any, model: Any, path: str = "spec") -> None:
    """``fast`` (the checker's object) equals ``model`` (pydantic's), field by field."""
    if isinstance(model, BaseModel):
        assert isinstance(fast, FastModel), f"{path}: {fast!r} is not an object of spec_fast"
        assert type(fast).__name__ == type(model).__name__, path
        assert type(fast)._fields == tuple(type(model).model_fields), path
        for name in type(model).model_fields:
            assert_twins(getattr(fast, name), getattr(model, name), f"{path}.{name}")
        extra = model.__pydantic_extra__
        if extra is None:
            assert not type(fast)._extra, f"{path}: extra keys where the model has none"
        else:
            assert_twins(fast.__pydantic_extra__, extra, f"{path}.<extra>")
        return
    assert type(fast) is type(model), f"{path}: {type(fast).__name__} != {type(model).__name__}"
    if isinstance(model, dict):
        assert list(fast) == list(model), f"{path}: keys {list(fast)} != {list(model)}"
        for key in model:
            assert_twins(fast[key], model[key], f"{path}.{key}")
    elif isinstance(model, tuple | list):
        assert len(fast) == len(model), path
        for index, (a, b) in enumerate(zip(fast, model, strict=True)):
            assert_twins(a, b, f"{path}[{index}]")
    else:
        assert fast == model, f"{path}: {fast!r} != {model!r}"


def twin_of(data: Any) -> Any:
    """The checker's answer for ``data``, proven against pydantic's."""
    fast = CHECK(data)
    if fast is None:
        return None
    try:
        model = Spec.model_validate(data)
    except ValidationError as exc:
        raise AssertionError(f"the fast checker accepted what pydantic refuses: {exc}") from None
    assert_twins(fast, model)
    assert fast.model_dump(mode="json") == model.model_dump(mode="json")
    assert fast.model_dump() == model.model_dump()
    assert pickle.loads(pickle.dumps(fast)) == copy.deepcopy(fast) == fast
    return fast
