"""The README stays true: its config reference is the one the config layer generates."""

import re

from tests.conftest import REPO
from tools.config_reference import generate, readme_block


def test_config_reference_matches_the_keys_the_scripts_read():
    readme = (REPO / "README.md").read_text()
    assert readme_block(readme) == generate().strip(), "run: python tools/config_reference.py --write"


def test_every_documented_key_is_read_by_a_script():
    from utils.config_keys import STFT, TRAIN
    from utils.config_keys_mot import VEM_MOT
    from utils.config_keys_scass import VEM_SCASS

    read = {(k.section, k.name) for keys in (TRAIN, STFT, VEM_MOT, VEM_SCASS) for k in keys}
    documented = set(re.findall(r"^\| \[(\w+)\] \| `(\w+)` \|", readme_block((REPO / "README.md").read_text()), re.M))
    assert documented == read


def test_readme_has_exactly_two_setup_and_run_commands():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Two commands", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:] if line.split("#")[0].strip()]
    assert commands == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
