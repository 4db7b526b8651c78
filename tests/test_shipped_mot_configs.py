"""The shipped tracking configs load as mixdvae_mot.py loads them: every key validates, the main checkpoint matches
the [Network] keys the INI gives, and every [Eval] extra_dvae row's checkpoint and settings parse. (Round 5 shipped
``config/cfg_dvae_vem_mot.ini`` with [Network] keys of another checkpoint, so the documented command exited 2.)"""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from utils.config import load_config
from utils.config_keys_mot import VEM_MOT
from utils.mot_dvaes import load_choice_dvaes, load_extra_dvaes, load_mot_dvae

# the data is generated (make demo, tools/make_mot_eval_sets.py), not part of a fresh clone: point data_dir at a
# folder that always exists, so that only the DVAE keys are under test
ANY_DIR = ("User.data_dir=config",)


@pytest.fixture(autouse=True)
def at_the_repository(monkeypatch):
    monkeypatch.chdir(REPO)                                   # the INIs name paths relative to the repository


@pytest.mark.parametrize("ini", ["config/cfg_dvae_vem_mot.ini", "config/demo/cfg_vem_mot_demo.ini"])
def test_shipped_config_loads_its_dvaes(ini):
    cfg = load_config(REPO / ini, VEM_MOT, overrides=ANY_DIR)
    model, _ = load_mot_dvae(cfg)
    assert model.x_dim == cfg["VEM"]["o_dim"]
    extra = load_extra_dvaes(cfg)
    assert "causal" in extra and "reference" in extra and "single" in extra
    assert len(load_choice_dvaes(cfg, model)) == 1                    # the main row chooses between two DVAEs
    for _, path, _, row in extra.values():
        assert all((REPO / p).is_file() for p in path.split("+")) and row.es_mode is not None


def test_both_shipped_configs_run_the_same_rows():
    main, demo = (load_config(REPO / ini, VEM_MOT, overrides=ANY_DIR) for ini in ("config/cfg_dvae_vem_mot.ini",
                                                                "config/demo/cfg_vem_mot_demo.ini"))
    for section, key in (("VEM", "assignment_temperature"), ("VEM", "init_subseq_len"), ("VEM", "dvae_es"),
                         ("VEM", "dvae_es_var"), ("VEM", "dvae_var_scale"), ("Training", "saved_dvae"),
                         ("Training", "choice_dvae"), ("Eval", "extra_dvae")):
        assert main[section][key] == demo[section][key], f"[{section}] {key}"
