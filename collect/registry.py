"""One small name registry for every "pick by name" table: frame codecs, render layouts, env
types and policies, with one unknown-name error that lists the choices.

>>> shapes = Registry("shape")
>>> @shapes.register("square")
... class Square: ...
>>> shapes["square"].__name__, "circle" in shapes, shapes.names()
('Square', False, ['square'])
>>> shapes["circle"]
Traceback (most recent call last):
...
collect.registry.UnknownNameError: unknown shape 'circle'; choose from square
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name that is not registered; the message says what kind of name, and the choices."""


class Registry(Generic[T]):
    """Names of one ``kind`` (``"frame codec"``, ``"layout"``...) and what each names.

    ``error`` is the :class:`UnknownNameError` subclass raised for a name not registered.
    Registering another object under a taken name raises ``ValueError``; registering the same
    class again (a module reload) is allowed.
    """

    def __init__(self, kind: str, error: type[UnknownNameError] = UnknownNameError) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``name`` names the decorated object."""

        def add(item: T) -> T:
            known = self._items.get(name)
            if known is not None and _qualname(known) != _qualname(item):
                taken = _qualname(known)
                raise ValueError(f"{self.kind} {name!r} is already registered to {taken}")
            self._items[name] = item
            return item

        return add

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable "name"
            raise self.unknown(name) from None

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def unknown(self, name: object) -> UnknownNameError:
        """The error for ``name``, listing the choices."""
        return self.error(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")


def _qualname(item: object) -> str:
    return getattr(item, "__qualname__", repr(item))
