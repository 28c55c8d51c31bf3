"""One declaration per setting: a dataclass field whose metadata carries its flag, help and range.

Every method, objective, attack, task option group and the training run declare their settings
as a frozen dataclass subclassing :class:`Settings`, each field made by :func:`setting`::

    @dataclass(frozen=True)
    class FreeLBSettings(Settings):
        owner = "method 'freelb'"
        steps: int = setting(3, STEPS)            # STEPS: a shared Flag (--adv-steps, help, >= 1)
        clean_pass: bool = setting(False, "--adv-clean-pass", "also back-propagate the clean loss")

From that single declaration come

* validation, on construction: types (an integral float becomes an int), finiteness, ranges
  and choices, each failure one :class:`~advembed.errors.AdvembedError` line naming the flag;
* the command-line flags (:mod:`advembed.cli.options` builds them from the classes);
* what ``config.json`` records (:meth:`Settings.as_dict`: every effective setting);
* the tables in the README (:mod:`advembed.docs`).

Flags shared by several classes (``--adv-epsilon`` is a setting of seven methods, of the PGD
attack and of ``reconstruct``) are declared once as a :class:`Flag` and used with a per-class
default, so their name, help text and range cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from advembed.errors import AdvembedError

META_KEY = "advembed"
MAX_SEED = 2**32 - 1  # numpy and scikit-learn take seeds below 2**32
MAX_BATCH = 2**20  # far beyond memory, and below what slicing and islice take
S = TypeVar("S", bound="Settings")


@dataclass(frozen=True)
class Flag:
    """A command-line flag with its meaning and valid range (shared by every field using it)."""

    name: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        """The ``argparse`` destination: ``--adv-epsilon`` → ``adv_epsilon``."""
        return self.name.lstrip("-").replace("-", "_")

    def range_text(self) -> str:
        """The valid range in words: ``>= 0``, ``> 0``, ``in [0, 1)``, ``one of l2, linf``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low_text, high_text = _number(self.minimum), _number(self.maximum)
        low = None if self.minimum is None else (
            f"> {low_text}" if self.exclusive_minimum else f">= {low_text}")
        high = None if self.maximum is None else (
            f"< {high_text}" if self.exclusive_maximum else f"<= {high_text}")
        if low and high:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"in {left}{low_text}, {high_text}{right}"
        return low or high or ""

    def admits(self, value: Any) -> bool:
        """Whether a (type-checked) value lies in the range."""
        if self.choices is not None:
            return value in self.choices
        if not isinstance(value, int | float) or isinstance(value, bool):
            return True
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum
                                         else value < self.minimum):
            return False
        return self.maximum is None or not (value >= self.maximum if self.exclusive_maximum
                                            else value > self.maximum)


def _number(value: float | None) -> str:
    """A bound as written: integers whole (4294967295, not 4.29497e+09), floats short."""
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:g}"


NO_LEGACY = object()  # a setting whose absence from an older run means its default


@dataclass(frozen=True)
class Meta:
    """What a :func:`setting` field carries beside its default.  ``legacy``: what runs made
    before the setting existed did (they record no value), declared where a later default
    could differ from it."""

    flag: Flag
    aliases: tuple[str, ...] = ()
    paper: str = ""
    legacy: Any = NO_LEGACY

    def recorded(self, values: Mapping[str, Any], name: str, default: Any) -> Any:
        """The value a run recorded under ``name``, or what a run predating it did."""
        if name in values:
            return values[name]
        return default if self.legacy is NO_LEGACY else self.legacy


def setting(
    default: Any,
    flag: Flag | str,
    help: str | None = None,  # noqa: A002 - the argparse word
    *,
    aliases: tuple[str, ...] = (),
    paper: str = "",
    legacy: Any = NO_LEGACY,
    **limits: Any,
) -> Any:
    """A dataclass field: ``default`` plus its flag (a shared :class:`Flag`, or a flag name
    with ``help`` and ``limits`` — ``minimum``, ``maximum``, ``exclusive_minimum``,
    ``exclusive_maximum``, ``choices``), old flag names kept as ``aliases``, the paper, and
    what runs predating the setting did (``legacy``)."""
    if isinstance(flag, str):
        if help is None:
            raise TypeError(f"setting {flag} needs a help text")
        flag = Flag(flag, help, **limits)
    elif help is not None or limits:
        flag = dataclasses.replace(flag, **({"help": help} if help else {}), **limits)
    meta = {META_KEY: Meta(flag, tuple(aliases), paper, legacy)}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One declared setting of a class: its Python name, type, default and metadata."""

    name: str
    type: Any
    default: Any
    meta: Meta

    @property
    def flag(self) -> Flag:
        return self.meta.flag


@dataclass(frozen=True)
class Settings:
    """Base of every settings dataclass; subclasses set ``owner`` ("method 'fgm'", …)."""

    owner: ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        for item in self.declared():
            value = check_value(getattr(self, item.name), item, self.owner)
            object.__setattr__(self, item.name, value)

    @classmethod
    def declared(cls) -> list[Declared]:
        """The fields made by :func:`setting`: the class's own first, then inherited ones
        (so a method's sizes come before the warm-up every method shares)."""
        hints = typing.get_type_hints(cls)
        depth = {}
        for level, klass in enumerate(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                depth.setdefault(name, level)
        items = [Declared(f.name, hints[f.name], f.default, f.metadata[META_KEY])
                 for f in dataclasses.fields(cls) if META_KEY in f.metadata]
        return sorted(items, key=lambda item: depth.get(item.name, 0))

    @classmethod
    def flags(cls) -> list[str]:
        return [item.flag.name for item in cls.declared()]

    @classmethod
    def from_options(cls: type[S], options: Mapping[str, Any] | None = None,
                     base: S | None = None, *, flag_of: Mapping[str, str] | None = None) -> S:
        """``base`` (else the defaults) with ``options`` (Python names) applied.  An option the
        class does not have is a one-line error naming its flag (``flag_of`` maps Python names
        of other classes to their flags); ``None`` is a value (callers drop options not given)."""
        base = base if base is not None else cls()
        known = {item.name: item for item in cls.declared()}
        chosen = {}
        for key, value in (options or {}).items():
            if key not in known:
                flag = (flag_of or {}).get(key, key)
                accepted = ", ".join(item.flag.name for item in known.values()) or "none"
                raise AdvembedError(f"option {flag} does not apply to {cls.owner} "
                                    f"(it takes: {accepted})")
            chosen[key] = value
        return dataclasses.replace(base, **chosen)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by Python name, JSON-ready (tuples become lists)."""
        return {item.name: _jsonable(getattr(self, item.name)) for item in self.declared()}

    def explicit(self) -> dict[str, Any]:
        """The settings that differ from the class defaults."""
        defaults = type(self)().as_dict()
        return {key: value for key, value in self.as_dict().items() if defaults[key] != value}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_value(value: Any, item: Declared, owner: str) -> Any:
    """``value`` converted to ``item``'s type and checked against its range (one-line errors)."""
    kind, optional = _unwrap_optional(item.type)
    if value is None:
        if optional:
            return None
        raise AdvembedError(f"option {item.flag.name} needs a value for {owner}")
    if typing.get_origin(kind) is tuple:
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            value = [value]
        values = tuple(_scalar(v, typing.get_args(kind)[0], item, owner) for v in value)
        if not values:
            raise AdvembedError(f"option {item.flag.name} needs at least one value for {owner}")
        return values
    return _scalar(value, kind, item, owner)


def _unwrap_optional(kind: Any) -> tuple[Any, bool]:
    args = typing.get_args(kind)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return kind, False


def _scalar(value: Any, kind: Any, item: Declared, owner: str) -> Any:
    flag = item.flag
    if kind is bool:
        if not isinstance(value, bool):
            raise AdvembedError(f"option {flag.name} must be true or false for {owner}, "
                                f"got {value!r}")
        return value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise AdvembedError(f"option {flag.name} must be an integer for {owner}, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AdvembedError(f"option {flag.name} must be a number for {owner}, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise AdvembedError(f"option {flag.name} must be a finite number for {owner}, "
                                f"got {value}")
    elif kind is str and not isinstance(value, str):
        raise AdvembedError(f"option {flag.name} must be a string for {owner}, got {value!r}")
    if not flag.admits(value):
        shown = repr(value) if flag.choices else f"{value:g}"
        raise AdvembedError(f"option {flag.name} must be {flag.range_text()} for {owner}, "
                            f"got {shown}")
    return value


def format_value(value: Any) -> str:
    """A default as the docs and help texts show it: ``0.1``, ``l2``, ``off``, ``0.02 0.075``."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return " ".join(format_value(v) for v in value)
    return "none" if value is None else str(value)
