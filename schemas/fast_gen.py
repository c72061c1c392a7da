"""Writes ``spec_fast.py``: a checker of specs in plain Python, generated from the pydantic
models of ``spec.py`` (which stay the one authority of the spec's rules).

Run ``python -m sipctl.schemas.fast_gen`` after changing the models; a test fails until the
file is current, and proves (Hypothesis, every example and test spec) that whatever the
checker accepts, pydantic accepts too and builds equal objects.

The checker is conservative: it reads each value only in the one exact form it is sure
pydantic reads the same way (an int where an int is due, a list for a tuple, a mapping with
no unknown key, ...), calls the very functions the models call (value checks of values.py,
names.py, targets.py; rules of spec_rules.py), and gives up on anything else: any surprise,
any check that raises. The loader then lets pydantic decide, which gives the error message
or the result. The generator refuses what it does not know (a new kind of annotation, a
validator that is not one of spec_rules.py's rules), so a model change never slips past it.
"""

from __future__ import annotations

import math
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, Discriminator, Tag
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

FAST_MODULE = Path(__file__).with_name("spec_fast.py")
# The validators every model inherits from spec.py's _Model, and what the checker does for
# them: the text rule on every field's value (as pydantic runs it), booleans checked by type
# (the checker reads every value by its exact type), the text rule on extra keys too.
_BASE_VALIDATORS = {"_one_line_of_text", "_booleans_are_booleans", "_extra_is_text_too"}
_CONSTRAINTS = (
    annotated_types.Ge,
    annotated_types.Gt,
    annotated_types.Le,
    annotated_types.Lt,
    annotated_types.MinLen,
    annotated_types.MaxLen,
)
_IGNORED = ("WithJsonSchema",)  # what only the JSON Schema reads


class _Writer:
    """The checker's source: one class and one function per model."""

    def __init__(self) -> None:
        self.models: list[type[BaseModel]] = []
        self.modules: dict[str, str] = {}  # module name -> alias in the generated file
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def function(self, func: Any) -> str:
        """How the generated file names ``func``: it must live in a module without pydantic."""
        module = func.__module__
        qualname = func.__qualname__
        if module == "sipctl.schemas.spec" or "<locals>" in qualname or "." in qualname:
            raise TypeError(
                f"{module}.{qualname}: a model's checks must be plain functions of a module "
                "without pydantic (values.py, names.py, spec_rules.py) for spec_fast.py"
            )
        alias = self.modules.setdefault(module, "_" + module.rsplit(".", 1)[1])
        return f"{alias}.{qualname}"

    def model(self, model: type[BaseModel]) -> str:
        if model not in self.models:
            self.models.append(model)
        return f"_check_{model.__name__}"

    # --- values --------------------------------------------------------------------------

    def value(self, annotation: Any, metadata: list[Any], src: str, out: str) -> list[str]:
        """Lines that read ``src`` as ``Annotated[annotation, *metadata]`` into ``out``."""
        if typing.get_origin(annotation) is typing.Annotated:
            inner, *more = typing.get_args(annotation)
            return self.value(inner, [*more, *metadata], src, out)
        before: list[list[str]] = []
        after: list[str] = []
        discriminator = None
        strict = validated = False
        for item in _flatten(metadata):
            validated = validated or isinstance(item, BeforeValidator | AfterValidator)
            if isinstance(item, BeforeValidator):
                before.insert(0, [f"{src} = {self.function(item.func)}({src})"])
            elif isinstance(item, AfterValidator):
                after.append(f"{out} = {self.function(item.func)}({out})")
            elif isinstance(item, _CONSTRAINTS):
                if validated:  # pydantic may apply it before or after the validator
                    raise TypeError(f"{item!r} after a validator: put constraints first")
                after.append(_constraint(item, out))
            elif isinstance(item, annotated_types.Interval):
                raise TypeError(f"unexpected constraint {item!r}")
            elif type(item).__name__ == "Strict":
                strict = True
            elif isinstance(item, Discriminator):
                discriminator = item
            elif isinstance(item, Tag) or type(item).__name__ in _IGNORED:
                continue
            else:
                raise TypeError(f"{item!r}: the fast checker does not know this annotation")
        lines = [line for step in before for line in step]
        lines += self.typed(annotation, discriminator, strict, src, out)
        return lines + after

    def typed(
        self, annotation: Any, discriminator: Any, strict: bool, src: str, out: str
    ) -> list[str]:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            if discriminator is not None:
                return self.tagged(members, discriminator, src, out)
            if _plain_union(members):
                return [f"{out} = _plain({src})"]
            if len(members) != 1 or len(args) != 2:
                return ["raise GiveUp"]  # unions of several types: pydantic decides
            inner = self.value(members[0], [], src, out)
            return [f"if {src} is None:", f"    {out} = None", "else:", *_indent(inner)]
        if discriminator is not None:
            raise TypeError(f"a discriminator on {annotation!r}")
        if annotation is bool:
            return [f"if type({src}) is not bool:", "    raise GiveUp", f"{out} = {src}"]
        if annotation is int:
            return [f"if type({src}) is not int:", "    raise GiveUp", f"{out} = {src}"]
        if annotation is float:
            if strict:
                raise TypeError("a strict float")
            return [
                f"if type({src}) is int and -(2**53) <= {src} <= 2**53:",
                f"    {out} = float({src})",
                f"elif type({src}) is float and _isfinite({src}):",
                f"    {out} = {src}",
                "else:",
                "    raise GiveUp",
            ]
        if annotation is str:
            return [f"if type({src}) is not str:", "    raise GiveUp", f"{out} = {src}"]
        if origin is typing.Literal:
            kinds = {type(a) for a in args}
            if len(kinds) != 1 or kinds - {str, int}:
                raise TypeError(f"{annotation!r}: a literal of one type, str or int")
            kind = next(iter(kinds)).__name__
            return [
                f"if type({src}) is not {kind} or {src} not in {tuple(sorted(args))!r}:",
                "    raise GiveUp",
                f"{out} = {src}",
            ]
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item, done, items = self.name("item"), self.name("value"), self.name("items")
            return [
                f"if type({src}) is not list:",
                "    raise GiveUp",
                f"{items} = []",
                f"for {item} in {src}:",
                *_indent(self.value(args[0], [], item, done)),
                f"    {items}.append({done})",
                f"{out} = tuple({items})",
            ]
        if origin is dict:
            key, item = self.name("key"), self.name("item")
            key_out, item_out = self.name("key"), self.name("value")
            return [
                f"if type({src}) is not dict:",
                "    raise GiveUp",
                f"{out} = {{}}",
                f"for {key}, {item} in {src}.items():",
                *_indent(self.value(args[0], [], key, key_out)),
                *_indent(self.value(args[1], [], item, item_out)),
                f"    {out}[{key_out}] = {item_out}",
            ]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [f"{out} = {self.model(annotation)}({src})"]
        raise TypeError(f"{annotation!r}: the fast checker does not know this type")

    def tagged(self, members: list[Any], discriminator: Any, src: str, out: str) -> list[str]:
        """A union whose branch a function picks (pydantic's callable Discriminator)."""
        tag = self.name("tag")
        lines = [f"{tag} = {self.function(discriminator.discriminator)}({src})"]
        for word, member in enumerate(members):
            tags = [m for m in typing.get_args(member)[1:] if isinstance(m, Tag)]
            if typing.get_origin(member) is not typing.Annotated or len(tags) != 1:
                raise TypeError(f"{member!r}: each branch of a tagged union has one Tag")
            keyword = "if" if word == 0 else "elif"
            lines += [f"{keyword} {tag} == {tags[0].tag!r}:"]
            lines += _indent(self.value(member, [], src, out))
        return [*lines, "else:", "    raise GiveUp"]

    # --- models --------------------------------------------------------------------------

    def check_function(self, model: type[BaseModel]) -> list[str]:
        """``_check_<Model>(data)``: the object, or GiveUp."""
        name = model.__name__
        head = [f"def _check_{name}(data: Any) -> Any:"]
        config = model.model_config
        extra = config.get("extra")
        if extra not in ("forbid", "allow"):
            raise TypeError(f"{name}: extra={extra!r}")
        decorators = model.__pydantic_decorators__
        body = [
            "if type(data) is not dict:",
            "    raise GiveUp",
            f"given = data.keys() & _KEYS_{name}",
        ]
        if extra == "forbid":
            body += ["if len(given) != len(data):", "    raise GiveUp"]
        for field_name, field in model.model_fields.items():
            if _key(field_name, field) != field_name:
                # also taken under its own name (populate_by_name): pydantic decides
                body += [f"if {field_name!r} in data:", "    raise GiveUp"]
        if any(_key(n, f) != n for n, f in model.model_fields.items()):
            names = {_key(n, f): n for n, f in model.model_fields.items()}
            body.append(f"given = {{{names!r}[key] for key in given}}")
        for dec_name, dec in decorators.model_validators.items():
            if dec.info.mode == "before":
                body.append(f"{self.rule(dec_name, dec)}(data)")
        values = []
        for field_name, field in model.model_fields.items():
            var = f"f_{field_name}"
            values.append(var)
            src = self.name("given")
            read = self.value(field.annotation, list(field.metadata), src, var)
            read += self.field_validators(model, field_name)
            key = _key(field_name, field)
            body += [f"if {key!r} in data:", f"    {src} = data[{key!r}]"]
            body += _indent(read)
            if field.is_required():
                body += ["else:", "    raise GiveUp"]
            else:
                body += ["else:", f"    {var} = {self.default(field)}"]
        if extra == "allow":
            values.append("extra")
            body += self.extras(model)
        body.append(f"result = {name}({', '.join(values)})")
        for dec_name, dec in decorators.model_validators.items():
            if dec.info.mode == "after" and dec_name not in _BASE_VALIDATORS:
                body += [
                    f"updates = {self.rule(dec_name, dec)}(result, frozenset(given))",
                    "if updates:",
                    "    result = result.model_copy(update=updates)",
                ]
            elif dec.info.mode not in ("after", "before"):
                raise TypeError(f"{name}.{dec_name}: a {dec.info.mode} model validator")
        return [*head, *_indent([*body, "return result"])]

    def extras(self, model: type[BaseModel]) -> list[str]:
        """Lines that read the keys beyond the fields into ``extra`` (pydantic's
        __pydantic_extra__, typed by the model's annotation of it)."""
        hints = typing.get_type_hints(model, include_extras=True)
        annotation = hints.get("__pydantic_extra__")
        if typing.get_origin(annotation) is not dict:
            raise TypeError(f"{model.__name__}: extra keys without a dict[str, T] annotation")
        key_type, value_type = typing.get_args(annotation)
        if key_type is not str:
            raise TypeError(f"{model.__name__}: extra keys that are not str")
        item, value = self.name("item"), self.name("value")
        return [
            "extra = {}",
            "for key, " + item + " in data.items():",
            f"    if key in _KEYS_{model.__name__}:",
            "        continue",
            "    if type(key) is not str:",
            "        raise GiveUp",
            *_indent(self.value(value_type, [], item, value)),
            f"    extra[key] = {value}",
            "    given.add(key)",  # pydantic counts extra keys as given too
            "_values.check_strings(extra)",  # _Model._extra_is_text_too
        ]

    def field_validators(self, model: type[BaseModel], field_name: str) -> list[str]:
        """The model's own field validators of ``field_name``, in pydantic's order."""
        lines = []
        var = f"f_{field_name}"
        for dec_name, dec in model.__pydantic_decorators__.field_validators.items():
            if dec_name == "_one_line_of_text":
                lines.append(f"_values.check_strings({var})")
                continue
            if dec_name in _BASE_VALIDATORS:
                continue  # booleans: read by exact type already
            if field_name not in dec.info.fields and "*" not in dec.info.fields:
                continue
            if dec.info.mode != "after":
                raise TypeError(f"{model.__name__}.{dec_name}: a {dec.info.mode} field validator")
            lines.append(f"{var} = {self.rule(dec_name, dec)}({var})")
        return lines

    def rule(self, dec_name: str, dec: Any) -> str:
        rule = getattr(dec.func, "sipctl_rule", None)
        if rule is None:
            raise TypeError(
                f"{dec.cls_var_name} ({dec_name}): a model's validator must be one of "
                "spec_rules.py's rules (spec.py's _model_rule, _data_rule, _field_rule)"
            )
        return self.function(rule)

    def default(self, field: FieldInfo) -> str:
        if field.default_factory is not None:
            return self.literal(field.default_factory())  # type: ignore[call-arg]
        if field.default is PydanticUndefined:
            raise TypeError("a field without a default")
        return self.literal(field.default)

    def literal(self, value: Any) -> str:
        """Source that builds ``value`` (a default) as the checker's objects."""
        if isinstance(value, BaseModel):
            self.model(type(value))
            shown = ", ".join(self.literal(getattr(value, n)) for n in type(value).model_fields)
            return f"{type(value).__name__}({shown})"
        if isinstance(value, tuple):
            return "(" + "".join(f"{self.literal(v)}, " for v in value) + ")"
        if isinstance(value, dict):
            pairs = (f"{self.literal(k)}: {self.literal(v)}" for k, v in value.items())
            return "{" + ", ".join(pairs) + "}"
        if value is None or isinstance(value, bool | int | str):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
        raise TypeError(f"{value!r}: a default the fast checker cannot write")

    def class_lines(self, model: type[BaseModel]) -> list[str]:
        mixins = [
            self.function(base)
            for base in model.__mro__[1:]
            if base.__module__ == "sipctl.schemas.spec_rules"
        ]
        fields = tuple(model.model_fields)
        extra = model.model_config.get("extra") == "allow"
        slots = (*fields, "__pydantic_extra__") if extra else fields
        return [
            f"class {model.__name__}({', '.join([*mixins, 'FastModel'])}):",
            f"    __slots__ = {slots!r}",
            f"    _fields = {fields!r}",
            *(["    _extra = True"] if extra else []),
        ]


def _constraint(item: Any, out: str) -> str:
    if isinstance(item, annotated_types.Ge):
        test = f"{out} >= {item.ge!r}"
    elif isinstance(item, annotated_types.Gt):
        test = f"{out} > {item.gt!r}"
    elif isinstance(item, annotated_types.Le):
        test = f"{out} <= {item.le!r}"
    elif isinstance(item, annotated_types.Lt):
        test = f"{out} < {item.lt!r}"
    elif isinstance(item, annotated_types.MinLen):
        test = f"len({out}) >= {item.min_length!r}"
    else:
        test = f"len({out}) <= {item.max_length!r}"
    return f"if not {test}:\n    raise GiveUp"


_SCALARS = (str, int, float, bool)


def _plain_union(members: list[Any]) -> bool:
    """Whether a union is of the four scalars and lists and mappings of them (what the
    generated ``_plain`` reads: pydantic's smart mode keeps a value of one of the exact
    types as it is)."""
    scalars = {m for m in members if m in _SCALARS}
    rest = [m for m in members if m not in _SCALARS]
    if scalars != set(_SCALARS):
        return False
    for member in rest:
        origin, args = typing.get_origin(member), typing.get_args(member)
        inner = args[-1] if args else None
        if origin not in (list, dict) or (origin is dict and args[0] is not str):
            return False
        if set(typing.get_args(inner)) != set(_SCALARS):
            return False
    return {typing.get_origin(m) for m in rest} == {list, dict}


def _flatten(metadata: list[Any]) -> list[Any]:
    """FieldInfo objects inside Annotated carry their constraints in ``metadata``."""
    found: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.extend(_flatten(list(item.metadata)))
        else:
            found.append(item)
    return found


def _key(name: str, field: FieldInfo) -> str:
    """The key a field is given under in a spec (its alias, if it has one)."""
    return field.alias if field.alias is not None else name


def _indent(lines: list[str]) -> list[str]:
    return ["    " + part for line in lines for part in line.split("\n")]


def module_text() -> str:
    """The source of ``spec_fast.py``."""
    from sipctl.schemas.spec import Spec

    writer = _Writer()
    writer.model(Spec)
    functions: list[str] = []
    done: set[type[BaseModel]] = set()
    while len(done) < len(writer.models):  # models found while writing the others
        model = next(m for m in writer.models if m not in done)
        done.add(model)
        functions += ["", "", *writer.check_function(model)]
    classes: list[str] = []
    keys: list[str] = []
    for model in writer.models:
        classes += ["", "", *writer.class_lines(model)]
        inputs = tuple(_key(n, f) for n, f in model.model_fields.items())
        keys.append(f"_KEYS_{model.__name__} = frozenset({inputs!r})")
    imports = [
        f"import {module} as {alias}"
        for module, alias in sorted(writer.modules.items())
        if module != __name__
    ]
    lines = [
        '"""Generated by ``python -m sipctl.schemas.fast_gen`` from the models of spec.py: do',
        "not edit. A spec's data checked and built without pydantic, or given up on (GiveUp):",
        'see fast_gen.py. The objects are the models\' twins (same fields, same mixins)."""',
        "",
        "from math import isfinite as _isfinite",
        "from typing import Any",
        "",
        *imports,
        "from sipctl.schemas.spec_rules import FastModel",
        "",
        "",
        "class GiveUp(Exception):",
        '    """Not certainly read as pydantic reads it: pydantic decides."""',
        "",
        "",
        "_SCALARS = (str, int, float, bool)",
        "",
        "",
        "def _plain(value: Any) -> Any:",
        '    """A scalar, or a list or mapping of scalars, of exactly these types (see',
        '    fast_gen._plain_union), as pydantic keeps it; finite floats only."""',
        "    if type(value) is dict:",
        "        if not all(type(k) is str for k in value):",
        "            raise GiveUp",
        "        value, items = dict(value), value.values()",
        "    elif type(value) is list:",
        "        value = items = list(value)",
        "    else:",
        "        items = (value,)",
        "    for item in items:",
        "        if type(item) not in _SCALARS or (type(item) is float and not _isfinite(item)):",
        "            raise GiveUp",
        "    return value",
        *classes,
        "",
        "",
        *keys,
        "",
        "",
        "def check(data: Any) -> Any:",
        '    """The Spec of ``data`` (plain data from the loader), or None: pydantic decides."""',
        "    try:",
        "        return _check_Spec(data)",
        "    except Exception:  # a surprise or a refusal: pydantic gives the answer",
        "        return None",
        *functions,
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    FAST_MODULE.write_text(module_text(), encoding="utf-8")
    sys.stderr.write(f"wrote {FAST_MODULE}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
