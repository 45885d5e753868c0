"""Fast construction of frozen, slotted dataclasses for the decode hot path.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
``__setattr__`` refuses), which costs about 90 ns a field here: building one 15-field
:class:`~pak.types.TagRead` took 1.5 us, more than the whole budget per read at the speed the
gateway is asked for (500,000 reads/s on one core). :func:`frozen_builder` returns a callable
that builds the very same object three times faster: a *twin* class with the same slots and a
plain ``__init__`` fills the fields with ordinary attribute stores, then the object's class is
switched to the real one (CPython allows that between classes of identical slot layout). The
result is an ordinary instance of the dataclass: same type, equality, hash, repr, pickling,
still frozen.

Contract: every field, positionally, in the dataclass's field order; no validation and no
``__post_init__`` (callers pass values they have already checked). A class this cannot serve
(no slots, a different layout) gets its own constructor back, so the builder is never wrong,
only slower.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["field_names", "frozen_builder"]

T = TypeVar("T")


def field_names(cls: type) -> tuple[str, ...]:
    """The dataclass's field names, in order (what a builder takes, positionally)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def frozen_builder(cls: type[T]) -> Callable[..., T]:
    """A fast constructor for the slotted dataclass ``cls`` (see the module docstring)."""
    if not dataclasses.is_dataclass(cls):
        return cls
    names = field_names(cls)
    slots = cls.__dict__.get("__slots__")
    if (slots is None or tuple(slots) != names
            or any(not n.isidentifier() or keyword.iskeyword(n) for n in names)):
        return cls
    # The names are the dataclass's own identifiers (checked above), so the generated source
    # is exactly "def __init__(self, a, b): self.a = a; self.b = b; self.__class__ = cls".
    params = ", ".join(names)
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    namespace: dict[str, Any] = {"_cls": cls}
    exec(f"def __init__(self, {params}):\n{body}    self.__class__ = _cls\n",
         namespace)
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": tuple(slots),
                                                 "__init__": namespace["__init__"]})
    try:
        probe = twin(*([None] * len(names)))
    except TypeError:  # CPython refused the class switch: layouts differ after all
        return cls
    if type(probe) is not cls:
        return cls
    built: Callable[..., T] = twin
    return built
