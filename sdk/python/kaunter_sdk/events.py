"""Events as plain data: the WIT records componentize-py generates (typed dataclasses and
variant classes), to and from JSON-ready dicts.

`event_to_dict(event)` gives what a connector usually posts; `event_from_dict(d)` builds the typed
event back, which native tests use to make sample events. The shape: a record is a dict of its
fields; a variant case is `{"case-name": value}` (`{"sale": {...}}`), or its name when it carries
nothing (`"cash"`); an enum case is its name;
`list<u8>` is a list of byte values; `option` is the value or `None`.
"""
import dataclasses
import enum
import re
import typing
from typing import Any

from . import _bindings


def types():
    """The generated module of kaunter's `types` interface (`Event`, `Payload_Sale`, `Money`, ...)."""
    return _bindings.module("types")


def _case_name(cls: type) -> str:
    """`Payload_VoidSale` -> `void-sale`."""
    suffix = cls.__name__.split("_", 1)[1] if "_" in cls.__name__ else cls.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "-", suffix).lower()


def event_to_dict(value: Any) -> Any:
    """A generated record, variant, enum or list, as JSON-ready data."""
    if isinstance(value, enum.Enum):
        return value.name.lower().replace("_", "-")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        if not fields and "_" in type(value).__name__:
            return _case_name(type(value))
        if len(fields) == 1 and fields[0].name == "value" and "_" in type(value).__name__:
            return {_case_name(type(value)): event_to_dict(value.value)}
        return {f.name: event_to_dict(getattr(value, f.name)) for f in fields}
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [event_to_dict(v) for v in value]
    return value


def _from(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:
        if type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if data is None:
                return None
            if len(rest) == 1:
                return _from(rest[0], data, where)
            args = tuple(rest)
        if isinstance(data, str):
            data = {data: None}
        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError(f"{where}: expected one of {[_case_name(a) for a in args]} as {{\"case\": value}}")
        (case, value), = data.items()
        for cls in args:
            if _case_name(cls) == case:
                return _from(cls, value, f"{where}.{case}")
        raise ValueError(f"{where}: `{case}` is not one of {[_case_name(a) for a in args]}")
    if origin in (list, typing.List):
        return [_from(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin in (tuple, typing.Tuple):
        return tuple(_from(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
    if hint is bytes:
        return bytes(data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint[str(data).upper().replace("-", "_")]
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = dataclasses.fields(hint)
        if not fields:
            return hint()
        if len(fields) == 1 and fields[0].name == "value" and "_" in hint.__name__:
            return hint(_from(hints["value"], data, where))
        missing = [f.name for f in fields if f.name not in data]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}")
        return hint(**{f.name: _from(hints[f.name], data[f.name], f"{where}.{f.name}") for f in fields})
    return data


def event_from_dict(data: dict) -> Any:
    """The typed `Event` for `data` (the shape `event_to_dict` gives); raises `ValueError` naming
    the first field that does not fit."""
    return _from(types().Event, data, "event")
