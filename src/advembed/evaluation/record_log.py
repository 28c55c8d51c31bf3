"""Per-example attack results written as they are computed, so that a kill, a full disk or a
failed final write loses nothing already computed, and ``--resume`` skips what is done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advembed.errors import AdvembedError
from advembed.runs import write_jsonl


def key(record: dict[str, Any]) -> tuple[float, int]:
    """Where a record belongs: (temperature of a rescaled attack, default 1; example index)."""
    return float(record.get("temperature", 1.0)), int(record["index"])


class RecordLog:
    """``RUN/.attack-NAME.partial.jsonl``: a header line describing the attack (settings,
    sample, model), then one record per finished example, flushed at once.

    With ``resume`` an existing log of the *same* attack is continued (its records are
    :attr:`done`); a log of another attack is an error.  Without it a new log is started.  The
    folder must be writable, which is checked before anything is computed.
    """

    def __init__(self, path: Path, header: dict[str, Any], *, resume: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[tuple[float, int], dict[str, Any]] = {}
        header = json.loads(json.dumps(header))
        if resume and self.path.is_file():
            self._read(header)
        elif self.path.is_file():
            import warnings

            warnings.warn(f"'{self.path.name}' held an interrupted attack's records; starting "
                          "again discards them (--resume continues it)", stacklevel=2)
        try:
            self._stream = self.path.open("a" if self.done else "w", encoding="utf-8")
            if not self.done:
                self._stream.write(json.dumps({"header": header}) + "\n")
                self._stream.flush()
        except OSError as exc:
            raise AdvembedError(f"cannot write attack results into '{self.path.parent}' "
                                f"({exc.strerror}); the run folder must be writable") from None

    def _read(self, header: dict[str, Any]) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            found = json.loads(lines[0])["header"] if lines else None
        except (ValueError, KeyError, TypeError):
            found = None
        if found != header:
            differ = sorted(k for k in set(found or {}) | set(header)
                            if (found or {}).get(k) != header.get(k))
            what = ("on other examples (the data changed since)"
                    if differ == ["examples_sha256"] else
                    f"with other library versions ({_versions(found)} then, "
                    f"{_versions(header)} now)" if differ == ["versions"] else
                    f"with other settings ({', '.join(differ)} differ)")
            raise AdvembedError(f"'{self.path.name}' holds an interrupted attack {what}; run it "
                                "with the same options to resume, or without --resume to start "
                                "again")
        for number, line in enumerate(lines[1:], 2):
            try:
                record = json.loads(line)
            except ValueError:  # the line being written when the process died
                break
            try:
                self.done[key(record)] = record
            except (AttributeError, KeyError, TypeError, ValueError):
                raise AdvembedError(f"'{self.path.name}' line {number} is not an attack record "
                                    "(edited by hand?); run without --resume to start "
                                    "again") from None
        # Rewrite the intact part, so that a cut-off last line is not kept: by a temporary
        # file and a rename, since this log is the only copy of the records (a kill or a
        # full disk during an in-place rewrite would lose them; one line here instead).
        write_jsonl(self.path, [{"header": header}, *self.done.values()])

    def add(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()
        self.done[key(record)] = record

    def has(self, index: int, temperature: float = 1.0) -> bool:
        return (float(temperature), int(index)) in self.done

    def records(self, temperature: float | None = None) -> list[dict[str, Any]]:
        """Every record (of one ``temperature``, if given), in temperature and example order."""
        return [self.done[k] for k in sorted(self.done)
                if temperature is None or k[0] == float(temperature)]

    def discard_if_empty(self) -> None:
        """Remove the log if it holds no record (an attack that failed before its first
        result): otherwise the next attack warns of an interrupted one that never was."""
        if not self.done:
            self.close()
            self.path.unlink(missing_ok=True)

    def finish(self) -> None:
        """The attack's final files are written: the log is no longer needed."""
        self._stream.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()


def _versions(header: dict[str, Any] | None) -> str:
    versions = (header or {}).get("versions") or {}
    if not isinstance(versions, dict):
        return "unknown"
    return ", ".join(f"{name} {value}" for name, value in sorted(versions.items())) or "unknown"
