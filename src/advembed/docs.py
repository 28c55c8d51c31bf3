"""Documentation generated from the settings classes: the README's tables of methods and
objectives, and ``docs/settings.md`` (every flag of every command).

    python -m advembed.docs            # rewrite the generated parts in place
    python -m advembed.docs --check    # exit 1 if any is out of date (a test runs this)

The README holds each table between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from advembed.settings import Settings, format_value

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SETTINGS_PAGE = ROOT / "docs" / "settings.md"


def _defaults(settings: Settings) -> str:
    return ", ".join(f"`{key}={format_value(value)}`" for key, value in settings.as_dict().items())


def methods_table() -> str:
    """Method | paper | what one step does | passes | defaults."""
    from advembed.methods import REGISTRY

    rows = ["| method | paper | what one step does | passes | defaults |", "|---|---|---|---|---|"]
    for name, cls in REGISTRY.items():
        settings = cls.Settings()
        passes = format_value(float(cls.count_passes(settings)))
        if getattr(cls, "replays", 1) > 1 or name == "freeat":
            passes += " per replay"
        rows.append(f"| `{name}` | {cls.paper} | {cls.summary} | {passes} | "
                    f"{_defaults(settings) or '—'} |")
    return "\n".join(rows)


def objectives_table() -> str:
    """Objective | paper | loss added | defaults (and the method defaults it overrides)."""
    from advembed.objectives import REGISTRY

    rows = ["| objective | paper | loss added | defaults |", "|---|---|---|---|",
            "| `ce` | — | nothing: the method's adversarial cross-entropy only | — |"]
    for name, cls in REGISTRY.items():
        defaults = _defaults(cls.Settings())
        for method, overrides in cls.method_defaults.items():
            shown = ", ".join(f"`{k}={format_value(v)}`" for k, v in overrides.items())
            defaults += f"; with `{method}`: {shown}"
        rows.append(f"| `{name}` | {cls.paper} | {cls.summary} | {defaults} |")
    return "\n".join(rows)


def _reference(title: str, classes: Iterable[type[Settings]]) -> list[str]:
    """One table of flags: flag (aliases) | Python name | default per owner | range | meaning |
    where the default comes from."""
    classes = list(classes)
    by_flag: dict[str, list] = {}
    for cls in classes:
        for item in cls.declared():
            by_flag.setdefault(item.flag.name, []).append((cls, item))
    lines = [f"## {title}", "", "| flag | Python name | default | range | meaning | source |",
             "|---|---|---|---|---|---|"]
    for name, entries in by_flag.items():
        flag = entries[0][1].flag
        aliases = sorted({a for _, item in entries for a in item.meta.aliases})
        shown = f"`{name}`" + (f" (also {', '.join(f'`{a}`' for a in aliases)})"
                               if aliases else "")
        keywords = ", ".join(sorted({f"`{item.name}`" for _, item in entries}))
        defaults = _owner_defaults(entries, named=len(classes) > 1)
        kind = entries[0][1].type
        valid = _ranges(entries) or ("on / off" if kind is bool or kind == "bool" else "any")
        sources = "; ".join(dict.fromkeys(f"{_short(cls.owner)}: {item.meta.paper}"
                                          if len(entries) > 1 else item.meta.paper
                                          for cls, item in entries if item.meta.paper))
        lines.append(f"| {shown} | {keywords} | {defaults} | {valid} | {flag.help} | "
                     f"{sources or '—'} |")
    return [*lines, ""]


def _ranges(entries) -> str:
    """The flag's range, or each owner's where they differ (ε ≥ 0 for a ball, > 0 for a step)."""
    texts = [(cls, item.flag.range_text()) for cls, item in entries]
    if len({text for _, text in texts}) == 1:
        return texts[0][1]
    return "; ".join(f"{_short(cls.owner)} {text or 'any'}" for cls, text in texts)


def _short(owner: str) -> str:
    return owner.split("'")[1] if "'" in owner else owner


def _owner_defaults(entries, *, named: bool) -> str:
    values = {format_value(item.default) for _, item in entries}
    if len(values) == 1:
        owners = ", ".join(_short(cls.owner) for cls, _ in entries)
        return values.pop() + (f" ({owners})" if named else "")
    return "; ".join(f"{_short(cls.owner)} {format_value(item.default)}" for cls, item in entries)


def settings_page() -> str:
    """``docs/settings.md``: every flag of ``train``, ``attack`` and ``reconstruct``."""
    from advembed.evaluation.settings import (
        EvalSettings,
        PGDAttackSettings,
        ReconstructSampleSettings,
        ReconstructSettings,
        SampleSettings,
        VulnerabilitySettings,
    )
    from advembed.evaluation.word_attack import WordAttackOptions
    from advembed.methods import REGISTRY as METHODS
    from advembed.objectives import REGISTRY as OBJECTIVES
    from advembed.training.config import TrainConfig

    lines = ["# Settings reference", "",
             "Generated by `python -m advembed.docs` from the settings classes (each setting is "
             "declared once, with its flag, default and range); do not edit by hand. Python "
             "names are the keywords of `build_training_method`, `build_objective`, "
             "`TrainConfig` and the attack settings classes, and the keys `config.json` "
             "records.", ""]
    lines += _reference("`advembed train`", [TrainConfig])
    lines += _reference("Methods (`advembed train --method NAME`)",
                        [cls.Settings for cls in METHODS.values()])
    lines += _reference("Objectives (`advembed train --objective NAME`)",
                        [cls.Settings for cls in OBJECTIVES.values()])
    lines += _reference("`advembed attack`", [SampleSettings, PGDAttackSettings,
                                              VulnerabilitySettings, WordAttackOptions])
    lines += _reference("`advembed reconstruct`", [ReconstructSampleSettings,
                                                   ReconstructSettings])
    lines += _reference("`advembed eval`", [EvalSettings])
    return "\n".join(lines).rstrip() + "\n"


def replace_between(text: str, name: str, body: str) -> str:
    """``text`` with what lies between ``<!-- name:start -->`` and ``<!-- name:end -->``
    replaced by ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"no {start} / {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def generated() -> dict[Path, str]:
    """Every generated file's expected content."""
    readme = README.read_text(encoding="utf-8")
    readme = replace_between(readme, "methods", methods_table())
    readme = replace_between(readme, "objectives", objectives_table())
    return {README: readme, SETTINGS_PAGE: settings_page()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for path, content in generated().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != content:
            stale.append(path)
            if not args.check:
                path.write_text(content, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
