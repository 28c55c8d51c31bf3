"""Command-line options derived from the settings classes, and the shared option groups.

Each flag becomes one ``argparse`` option, whichever and however many settings classes declare
it (``--adv-epsilon`` is a setting of seven methods): its help shows each class's default, its
type and range check come from the declaration, and old flag names stay as aliases.  After
parsing, :func:`chosen` reads back the values a class's flags were given, and
:func:`refuse_foreign` rejects a flag that belongs only to classes not in use.
"""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from advembed.errors import AdvembedError
from advembed.settings import Declared, Flag, Settings, format_value


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``advembed <cmd>: error: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclass
class _Entry:
    owner: type[Settings]
    item: Declared


def _base_kind(kind: Any) -> tuple[Any, bool]:
    """``(scalar type, whether a list)`` of a declared type (``float | None`` → float)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is tuple:
        return typing.get_args(kind)[0], True
    if args and typing.get_origin(kind) is not None:
        return _base_kind(args[0])
    return kind, False


def parse_as(kind: Any, flag: Flag, *others: Flag):
    """An ``argparse`` type: ``kind`` parsed from text and checked against ``flag``'s range
    (or any of ``others``': a flag shared by classes with different ranges, e.g. ε > 0 for
    FGSM's one step and ε ≥ 0 for PGD's ball, admits what any admits; each class then checks
    its own)."""
    words = {int: "an integer", float: "a number"}

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words[kind]}, got '{text}'") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got '{text}'")
        if not any(f.admits(value) for f in (flag, *others)):
            raise argparse.ArgumentTypeError(f"must be {flag.range_text()}, got '{text}'")
        return value

    parse.__name__ = kind.__name__
    return parse


def _defaults_text(entries: list[_Entry]) -> str:
    shown = [(entry.owner, entry.item.default) for entry in entries]
    if len(shown) == 1 or len({format_value(value) for _, value in shown}) == 1:
        value = shown[0][1]
        return "" if value is None else f" (default: {format_value(value)})"
    parts = [f"{_short_owner(owner)} {format_value(value)}" for owner, value in shown
             if value is not None]
    return f" (defaults: {', '.join(parts)})" if parts else ""


def _short_owner(owner: type[Settings]) -> str:
    return owner.owner.split("'")[1] if "'" in owner.owner else owner.owner


def add_settings(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                 classes: Iterable[type[Settings]], *, skip: Sequence[str] = (),
                 choices: dict[str, Sequence[str]] | None = None) -> None:
    """One option per flag declared by ``classes`` (except the flags in ``skip``); every
    option defaults to ``None`` (= not given), so each class keeps its own default."""
    by_flag: dict[str, list[_Entry]] = {}
    for cls in classes:
        for item in cls.declared():
            if item.flag.name not in skip:
                by_flag.setdefault(item.flag.name, []).append(_Entry(cls, item))
    for name, entries in by_flag.items():
        flag = entries[0].item.flag
        aliases = list(dict.fromkeys(a for e in entries for a in e.item.meta.aliases))
        kinds = [_base_kind(entry.item.type) for entry in entries]
        kind, many = kinds[0][0], any(is_list for _, is_list in kinds)
        help_text = flag.help + _defaults_text(entries)
        options: dict[str, Any] = {"dest": flag.dest, "default": None, "help": help_text}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            ranges = [entry.item.flag for entry in entries[1:]]
            options["type"] = parse_as(kind, flag, *ranges) if kind in (int, float) else kind
            values = (choices or {}).get(name) or flag.choices
            if values:
                options["choices"] = list(values)
            if many:
                options["nargs"] = "+"
        parser.add_argument(name, *aliases, **options)


def chosen(args: argparse.Namespace, cls: type[Settings]) -> dict[str, Any]:
    """The values given on the command line for ``cls``'s flags, by Python name."""
    values = {}
    for item in cls.declared():
        value = getattr(args, item.flag.dest, None)
        if value is None:
            continue
        _, is_list = _base_kind(item.type)
        if isinstance(value, list) and not is_list:
            if len(value) != 1:
                raise AdvembedError(f"option {item.flag.name} takes one value for {cls.owner}, "
                                    f"got {len(value)}")
            value = value[0]
        values[item.name] = value
    return values


def refuse_foreign(args: argparse.Namespace, used: type[Settings],
                   others: Iterable[type[Settings]], *, hint: str | None = None) -> None:
    """A one-line error for a flag that was given but belongs only to classes other than
    ``used`` (``hint``: what to say instead of listing ``used``'s flags)."""
    own = {item.flag.name for item in used.declared()}
    for cls in others:
        for item in cls.declared():
            name = item.flag.name
            if name in own or getattr(args, item.flag.dest, None) is None:
                continue
            if hint is not None:
                raise AdvembedError(f"option {name} {hint.format(owner=_short_owner(cls))}")
            accepted = ", ".join(sorted(own)) or "none"
            raise AdvembedError(f"option {name} does not apply to {used.owner} "
                                f"(it takes: {accepted})")


def add_run_argument(parser: argparse.ArgumentParser, help_text: str = "run directory") -> None:
    from pathlib import Path

    parser.add_argument("--run", required=True, type=Path, help=help_text)


def add_data_group(parser: argparse.ArgumentParser, *, train: bool = False) -> None:
    """The data option group (dataset, columns, split seed), shared by every command that
    reads data; outside ``train`` unset options take the run's own."""
    from advembed.data.options import DataOptions
    from advembed.training.config import TrainConfig

    title = "data" if train else "data (default: the run's own)"
    add_settings(parser.add_argument_group(title), [TrainConfig if train else DataOptions],
                 skip=() if not train else _non_data_flags())


def _non_data_flags() -> list[str]:
    from advembed.data.options import DataOptions
    from advembed.training.config import TrainConfig

    data = set(DataOptions.flags())
    return [flag for flag in TrainConfig.flags() if flag not in data]


def data_options(args: argparse.Namespace):
    from advembed.data.options import DataOptions

    return DataOptions(**chosen(args, DataOptions))


def positive_int(text: str) -> int:
    """An ``argparse`` type for the few options that are not settings (sample sizes)."""
    return parse_as(int, Flag("", "", minimum=1))(text)
