"""Face++ attributes by name: each attribute is a function registered here by the module that computes it.

Why a registry: the attributes used to be an if-ladder, and a new one needed edits in three places. Now an
attribute is one function in one module of this package, decorated with :func:`attribute`; the package imports
its modules, and the analyzer, the name checks and the API's reply keys all read this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faceplus.errors import UnsupportedAttribute

if TYPE_CHECKING:
    from faceplus.attributes.measurements import Measurements

Compute = Callable[["Measurements"], dict[str, Any]]


@dataclass(frozen=True)
class Attribute:
    """One Face++ attribute: the name a request uses, the key its value has in the reply, how it is computed."""

    name: str
    response_key: str
    order: int  # Face++'s documented order, for listings
    compute: Compute


REGISTRY: dict[str, Attribute] = {}

#: Face++ attribute names no bundled model predicts (``ethnicity`` is not in the v3 detect list but Face++'s
#: SDK demo asks for it): never an invented value. The library refuses them; the API lists them as unmeasured.
WHY_UNSUPPORTED = {
    "beauty": "no bundled model scores beauty",
    "skinstatus": "no bundled model measures skin health, stains, acne or dark circles",
    "ethnicity": "no bundled model estimates ethnicity",
}


def attribute(name: str, order: int, response_key: str | None = None) -> Callable[[Compute], Compute]:
    """Register ``compute`` as Face++ attribute ``name`` (answered under ``response_key``, default the name)."""

    def register(compute: Compute) -> Compute:
        assert name not in REGISTRY, f"attribute {name} registered twice"
        REGISTRY[name] = Attribute(name, response_key or name, order, compute)
        return compute

    return register


def supported() -> tuple[str, ...]:
    return tuple(a.name for a in sorted(REGISTRY.values(), key=lambda a: a.order))


def split_attributes(value: str | Iterable[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Face++ ``return_attributes`` as (names computed here, Face++ names no model measures), each in request
    order without repeats; ``none`` or nothing is ``((), ())`` and ``smile`` is read as ``smiling``.

    Raises :class:`UnsupportedAttribute` (``BAD_ARGUMENTS: return_attributes``) only for names Face++ does
    not have (a misspelling must not pass silently).
    """
    if value is None:
        return (), ()
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip().lower() for n in names if n.strip()]
    if names == ["none"]:
        return (), ()
    measured: list[str] = []
    unmeasured: list[str] = []
    for name in names:
        name = "smiling" if name == "smile" else name
        if name in WHY_UNSUPPORTED:
            if name not in unmeasured:
                unmeasured.append(name)
            continue
        if name not in REGISTRY:
            raise UnsupportedAttribute(
                f"unknown attribute {name!r}; supported: {', '.join(supported())}", param="return_attributes"
            )
        if name not in measured:
            measured.append(name)
    return tuple(measured), tuple(unmeasured)


def parse_attributes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Validate Face++ ``return_attributes`` (a comma list, ``none``, or names); ``smile`` is accepted too.

    Raises :class:`UnsupportedAttribute` (``BAD_ARGUMENTS: return_attributes``) for unknown names and for
    the names no model measures (a library caller asked for something it will not get).
    """
    measured, unmeasured = split_attributes(value)
    if unmeasured:
        name = unmeasured[0]
        raise UnsupportedAttribute(
            f"attribute {name!r} is not supported: {WHY_UNSUPPORTED[name]}", param="return_attributes"
        )
    return measured
