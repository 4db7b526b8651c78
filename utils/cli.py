"""The command line every INI-driven script shares: ``CONFIG [--set Section.key=value ...] [--print-config]``.

Overrides are validated by :func:`utils.config.load_config` against the same key lists as the file;
:func:`route_overrides` serves a tool that drives several scripts (``tools/demo.py``).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from utils.config import Config, Key
from utils.errors import UserError


def add_config_arguments(ap: argparse.ArgumentParser) -> None:
    """``--set Section.key=value`` (repeatable) and ``--print-config``, for every INI-driven script."""
    ap.add_argument("--set", action="append", default=[], metavar="Section.key=value", dest="overrides",
                    help="override one INI value (repeatable), validated like the file, e.g. --set VEM.N_iter_total=5")
    ap.add_argument("--print-config", action="store_true",
                    help="print the effective configuration (overrides applied, defaults as comments) and exit")


def print_config_and_exit(cfg: Config) -> None:
    """Print :meth:`Config.effective_ini` on stdout and exit 0 (``--print-config``)."""
    sys.stdout.write(cfg.effective_ini())
    sys.exit(0)


def script_config(description: str, example: str, load: Callable[[str, list[str]], Any]) -> Any:
    """The command line of an INI-driven script: ``CONFIG [--set Section.key=value ...] [--print-config]``.

    Args:
        description: the script's one-line description.
        example: an INI path shown in the help.
        load: the script's validation, ``load(path, overrides)``, returning a :class:`Config` or a tuple
            whose first item is one.

    Returns:
        what ``load`` returned; with ``--print-config``, prints the effective INI and exits 0 instead.
    """
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("config", help=f"INI file, e.g. {example}")
    add_config_arguments(ap)
    args = ap.parse_args()
    loaded = load(args.config, args.overrides)
    if args.print_config:
        print_config_and_exit(loaded[0] if isinstance(loaded, tuple) else loaded)
    return loaded


def seed_and_threads(seed: int, num_threads: int = 0) -> None:
    """Seed torch and numpy; ``num_threads`` > 0 sets torch's CPU threads."""
    import numpy as np
    import torch

    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    np.random.seed(seed)


def route_overrides(overrides: Sequence[str], key_lists: dict[str, Sequence[Key]]) -> dict[str, list[str]]:
    """Send each ``Section.key=value`` to every key list that knows the key (a tool driving several scripts).

    Returns:
        list name -> its overrides, in order.

    Raises:
        UserError: a malformed override, or a key no list knows (with the closest valid name).
    """
    routed: dict[str, list[str]] = {name: [] for name in key_lists}
    names = {f"{k.section}.{k.name}" for keys in key_lists.values() for k in keys}
    for text in overrides:
        target = text.partition("=")[0].strip()
        if "=" not in text or "." not in target:
            raise UserError(f"--set {text!r}: expected Section.key=value, e.g. --set VEM.N_iter_total=5")
        if target not in names:
            hint = difflib.get_close_matches(target, sorted(names), n=1, cutoff=0.6)
            raise UserError(f"--set {text}: no script reads {target}" + (f" (did you mean {hint[0]}?)" if hint else ""))
        for name, keys in key_lists.items():
            if any(f"{k.section}.{k.name}" == target for k in keys):
                routed[name].append(text)
    return routed
