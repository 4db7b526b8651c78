"""Generate the README's config reference from the key lists the scripts validate against.

    python tools/config_reference.py           # print the markdown
    python tools/config_reference.py --write   # update README.md between the markers

tests/test_readme.py fails when README.md is out of date, so the reference cannot drift.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from utils.config import reference_table

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
SCRIPTS = (
    ("train_dvae_single.py (MOT)", "utils.config_keys", "TRAIN"),
    ("train_dvae_single.py (SC-ASS: adds [STFT])", "utils.config_keys", "STFT"),
    ("mixdvae_mot.py", "utils.config_keys_mot", "VEM_MOT"),
    ("mixdvae_scass.py", "utils.config_keys_scass", "VEM_SCASS"),
)


def generate() -> str:
    parts = []
    for title, module, name in SCRIPTS:
        keys = getattr(importlib.import_module(module), name)
        parts.append(f"#### `{title}`\n\n{reference_table(keys)}\n")
    return "\n".join(parts)


def readme_block(text: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {START} / {END}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the block in README.md")
    args = ap.parse_args()
    table = generate()
    if not args.write:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    print("README.md config reference updated")


if __name__ == "__main__":
    main()
