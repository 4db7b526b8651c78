"""INI configuration: typed keys, validation before any work, one-line errors.

A script declares the keys it reads as a list of :class:`Key`; :func:`load_config`
parses the INI file, applies command-line overrides (``--set Section.key=value``), checks
every key (presence, type, range, existing data directories) and returns a :class:`Config`
of typed values. Any problem raises a :class:`~utils.errors.UserError` naming file,
section, key and what was expected. Overrides go through the same checks as the file.
The README's config reference is generated from the same key lists
(:func:`reference_table`), so it cannot drift from what the code reads.
:meth:`Config.effective_ini` is the INI the run actually used (overrides applied, defaults
listed as comments): it is what a run directory keeps and what ``--print-config`` prints.
"""

from __future__ import annotations

import configparser
import difflib
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.errors import UserError

REQUIRED = object()

_BOOL = {"true": True, "yes": True, "1": True, "on": True,
         "false": False, "no": False, "0": False, "off": False}


@dataclass(frozen=True)
class Key:
    """One INI key.

    ``kind`` is one of: int, float, bool, str, choice, intlist, floatlist, dir (an
    existing directory), file (an existing file), path (any path, e.g. an output root).
    ``low``/``high`` bound numbers (inclusive); ``choices`` lists valid strings.
    """

    section: str
    name: str
    kind: str
    default: Any = REQUIRED
    help: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def expected(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        rng = ""
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            rng = f" in [{lo}, {hi}]"
        return {
            "int": "an integer", "float": "a number", "bool": "True or False", "str": "a string",
            "intlist": "comma-separated integers (may be empty)",
            "floatlist": "comma-separated numbers",
            "dir": "an existing directory", "file": "an existing file", "path": "a path",
        }[self.kind] + rng


class Config:
    """Typed values by section: ``cfg["Network"]["x_dim"]`` or ``cfg.get("Network", "x_dim")``.

    ``parser`` holds the file's raw values with the overrides applied; ``overrides`` the
    ``--set`` arguments in order; ``keys`` the key list the values were validated against.
    """

    def __init__(self, path: Path, values: dict[str, dict[str, Any]], parser: configparser.ConfigParser,
                 overrides: Sequence[str] = (), keys: Sequence[Key] = ()):
        self.path = path
        self.values = values
        self.parser = parser
        self.overrides = list(overrides)
        self.keys = list(keys)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    def get(self, section: str, name: str) -> Any:
        return self.values[section][name]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.values.get(name, {}))

    def effective_ini(self) -> str:
        """The INI this run used: the file's keys with ``--set`` overrides applied, and every other key the
        script reads as a commented default. Loading it again gives the same values."""
        out = io.StringIO()
        out.write(f"# effective configuration: {self.path}"
                  + "".join(f" --set {o}" for o in self.overrides) + "\n\n")
        sections = list(dict.fromkeys([*self.parser.sections(), *(k.section for k in self.keys)]))
        for section in sections:
            out.write(f"[{section}]\n")
            given = self.parser.options(section) if self.parser.has_section(section) else []
            for name in given:
                out.write(f"{name} = {self.parser.get(section, name)}\n")
            defaults = [k for k in self.keys if k.section == section and k.name not in given]
            if defaults:
                out.write("# not in the file, so at their defaults:\n")
            for key in defaults:
                out.write(f"# {key.name} = {_ini_text(key.default)}\n".replace(" \n", "\n"))
            out.write("\n")
        return out.getvalue()

    def digest(self) -> str:
        """SHA-256 of the typed values (defaults included): equal for equal effective configs."""
        text = json.dumps(self.values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _ini_text(value: Any) -> str:
    if value is REQUIRED:
        return "(required)"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _convert(key: Key, raw: str, where: str) -> Any:
    def fail(msg: str = "") -> UserError:
        return UserError(f"{where}: expected {key.expected()}, got {raw!r}{msg}")

    text = raw.strip()
    try:
        if key.kind == "int":
            value: Any = int(text)
        elif key.kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise fail()
        elif key.kind == "bool":
            if text.lower() not in _BOOL:
                raise fail()
            value = _BOOL[text.lower()]
        elif key.kind == "intlist":
            value = [int(v) for v in text.split(",") if v.strip()]
        elif key.kind == "floatlist":
            value = [float(v) for v in text.split(",") if v.strip()]
            if not all(math.isfinite(v) for v in value):
                raise fail()
        elif key.kind == "choice":
            if text not in key.choices:
                raise fail()
            value = text
        elif key.kind in ("dir", "file", "path"):
            if not text:
                raise fail()
            value = Path(text).expanduser()
            if key.kind == "dir" and not value.is_dir():
                raise UserError(f"{where}: {_not_a(value, 'directory')}")
            if key.kind == "file" and not value.is_file():
                raise UserError(f"{where}: {_not_a(value, 'file')}")
        else:
            value = text
    except ValueError:
        raise fail() from None
    for v in value if isinstance(value, list) else [value]:
        is_number = isinstance(v, (int, float)) and not isinstance(v, bool)
        if is_number and ((key.low is not None and v < key.low) or (key.high is not None and v > key.high)):
            raise fail()
    return value


def _not_a(path: Path, kind: str) -> str:
    """Why ``path`` is not an existing ``kind`` ("directory" or "file"), for an error message."""
    if path.exists():
        other = "a directory" if path.is_dir() else "a file" if path.is_file() else "not a regular file"
        what = f"{kind} {str(path)!r} is {other}"
    else:
        what = f"{kind} {str(path)!r} does not exist"
    if not path.is_absolute():
        what += f" (relative paths are resolved against the current working directory, {os.getcwd()})"
    return what


def _check_known(path: Path, parser: configparser.ConfigParser, keys: list[Key]) -> None:
    """Unknown sections and keys are errors (a typo would otherwise silently keep the default)."""
    known: dict[str, list[str]] = {}
    for key in keys:
        known.setdefault(key.section, []).append(key.name)
    for section in parser.sections():
        if section not in known:
            hint = difflib.get_close_matches(section, list(known), n=1)
            tip = f"did you mean [{hint[0]}]?" if hint else f"valid sections: {', '.join(known)}"
            raise UserError(f"{path} [{section}]: unknown section ({tip})")
        for name in parser.options(section):
            if name not in known[section] and name not in parser.defaults():
                hint = difflib.get_close_matches(name, known[section], n=1, cutoff=0.6)
                tip = f"did you mean {hint[0]}?" if hint else f"valid keys: {', '.join(known[section])}"
                raise UserError(f"{path} [{section}] {name}: unknown key ({tip})")


def _apply_overrides(path: Path, parser: configparser.ConfigParser, overrides: Sequence[str],
                     keys: list[Key], strict: bool) -> None:
    """Write ``Section.key=value`` overrides into ``parser``; unknown sections or keys are refused with the
    closest valid name (``strict=False``: only malformed ones, as for a partial first read)."""
    known: dict[str, list[str]] = {}
    for key in keys:
        known.setdefault(key.section, []).append(key.name)
    for text in overrides:
        target, eq, value = text.partition("=")
        section, dot, name = target.strip().partition(".")
        section, name = section.strip(), name.strip()
        if not eq or not dot or not section or not name:
            raise UserError(f"--set {text!r}: expected Section.key=value, e.g. --set VEM.N_iter_total=5")
        if strict and section not in known:
            hint = difflib.get_close_matches(section, list(known), n=1)
            tip = f"did you mean {hint[0]}?" if hint else f"valid sections: {', '.join(known)}"
            raise UserError(f"--set {text}: unknown section [{section}] for {path} ({tip})")
        if strict and name not in known[section]:
            hint = difflib.get_close_matches(name, known[section], n=1, cutoff=0.6)
            tip = f"did you mean {hint[0]}?" if hint else f"valid keys: {', '.join(known[section])}"
            raise UserError(f"--set {text}: unknown key {name} in [{section}] ({tip})")
        if not parser.has_section(section):
            parser.add_section(section)
        parser.set(section, name, value.strip())


def load_config(path: str | Path, keys: Iterable[Key], strict: bool = True, overrides: Sequence[str] = ()) -> Config:
    """Parse and validate ``path`` against ``keys``, with ``overrides`` (``"Section.key=value"``) applied.

    ``strict`` (the default) also refuses sections and keys that are not in ``keys``, suggesting
    the closest valid name; ``strict=False`` is for a first partial read (e.g. only task_name).
    An overridden value is validated like the file's; its errors name the ``--set``.

    Raises:
        UserError: missing/unreadable file, unknown section or key, missing section or required
            key, bad type, out-of-range value, non-existent directory/file — one line naming
            file, section and key.
    """
    path = Path(path)
    keys = list(keys)
    if path.is_dir():
        raise UserError(f"config file {str(path)!r} is a directory, expected an INI file")
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} not found"
                        + ("" if path.is_absolute() else
                           f" (relative paths are resolved against the current working directory, {os.getcwd()})"))
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive (e.g. N_iter_total)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as err:
        raise UserError(f"config file {str(path)!r} cannot be read ({err.strerror or err})") from None
    except (configparser.Error, UnicodeDecodeError) as err:
        first = str(err).splitlines()[0]
        raise UserError(f"{path}: cannot parse INI file ({first})") from None
    if strict:
        _check_known(path, parser, keys)
    _apply_overrides(path, parser, overrides or (), keys, strict)
    overridden = {tuple(p.strip() for p in o.partition("=")[0].partition(".")[::2]) for o in overrides or ()}
    values: dict[str, dict[str, Any]] = {}
    for key in keys:
        where = f"{path} [{key.section}] {key.name}"
        if (key.section, key.name) in overridden:
            where += " (--set)"
        sec = values.setdefault(key.section, {})
        if not parser.has_section(key.section):
            if key.default is REQUIRED:
                raise UserError(f"{path}: missing section [{key.section}] (needed for key {key.name})")
            sec[key.name] = key.default
            continue
        raw = parser.get(key.section, key.name, fallback=None)
        if raw is None or (raw.strip() == "" and key.kind not in ("intlist", "str")):
            if key.default is REQUIRED:
                raise UserError(f"{where}: missing key (expected {key.expected()})")
            sec[key.name] = key.default
            continue
        sec[key.name] = _convert(key, raw, where)
    return Config(path, values, parser, overrides or (), keys)


def defaults_from(keys: Iterable[Key], **fields: str):
    """Class decorator, placed under ``@dataclass``: each named field's default is the default of an INI
    key (``field="Section.key"``), so a settings dataclass and the INI share one declaration of it.

    Example::

        @dataclass(frozen=True)
        @defaults_from(VEM_MOT, n_iter="VEM.N_iter_total")
        class Settings:
            n_iter: int
    """
    table = {f"{k.section}.{k.name}": k.default for k in keys}

    def apply(cls):
        for field, key in fields.items():
            value = table[key]
            setattr(cls, field, tuple(value) if isinstance(value, list) else value)
        return cls
    return apply


def comma_list(value: str, allowed: tuple[str, ...], where: str) -> list[str]:
    """Parse a comma list of names among ``allowed`` (order kept, duplicates dropped).

    Raises:
        UserError: an unknown name, naming ``where`` and the valid names.
    """
    names = list(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [v for v in names if v not in allowed]
    if unknown:
        raise UserError(f"{where}: unknown value(s) {', '.join(unknown)}; expected a comma list among "
                        f"{', '.join(allowed)}")
    return names


def reference_table(keys: Iterable[Key]) -> str:
    """Markdown table of keys (section, key, default, meaning, valid values) for the README."""
    rows = ["| section | key | default | meaning | valid values |", "|---|---|---|---|---|"]
    for k in keys:
        if k.default is REQUIRED:
            default = "*required*"
        elif isinstance(k.default, list):
            default = "`" + ",".join(str(v) for v in k.default) + "`" if k.default else "(empty)"
        else:
            default = f"`{k.default}`"
        rows.append(f"| [{k.section}] | `{k.name}` | {default} | {k.help} | {k.expected()} |")
    return "\n".join(rows)


def choose_device(use_cuda: bool, log=print):
    """``use_cuda`` -> CUDA when available, else CPU; say which."""
    import torch

    if use_cuda and torch.cuda.is_available():
        device = torch.device("cuda")
        log(f"device: CUDA ({torch.cuda.get_device_name(0)})")
    else:
        device = torch.device("cpu")
        log("device: CPU" + (" (use_cuda = True but CUDA is not available)" if use_cuda else ""))
    return device
