"""The config layer: typed INI values, and every user mistake stops the script before any work
with exit status 2 and one line naming file, section, key and what was expected."""

import subprocess
import sys

import pytest
import torch

import train_dvae_single
from tests.conftest import REPO, SCRIPT_ENV, tiny_mot_sections, write_ini
from utils.config import Key, choose_device, load_config, reference_table
from utils.config_keys import TRAIN, TRAIN_AUDIO
from utils.errors import UserError, run_main


def _delete(section, key=None):
    def edit(sections):
        if key is None:
            del sections[section]
        else:
            del sections[section][key]
    return edit


def _set(section, key, value):
    def edit(sections):
        sections[section][key] = value
    return edit


# case -> (edit of a valid config, fragments the one-line message must contain besides the INI path)
BAD_CONFIGS = {
    "missing section": (_delete("Network"), ["missing section [Network]"]),
    "missing key": (_delete("Network", "x_dim"), ["[Network] x_dim", "missing key", "an integer"]),
    "bad type": (_set("Network", "x_dim", "four"), ["[Network] x_dim", "expected an integer", "'four'"]),
    "out of range": (_set("Training", "lr", 5), ["[Training] lr", "in [1e-08, 1]", "'5'"]),
    "bad choice": (_set("Network", "activation", "sigmoid"), ["[Network] activation", "one of tanh, relu"]),
    "missing data dir": (_set("User", "train_data_dir", "/nonexistent/trajectories"),
                         ["[User] train_data_dir", "'/nonexistent/trajectories'", "does not exist"]),
    "bad bool": (_set("DataFrame", "shuffle", "maybe"), ["[DataFrame] shuffle", "True or False", "'maybe'"]),
    "bad list": (_set("Network", "dense_hz_x", "16;8"), ["[Network] dense_hz_x", "comma-separated integers"]),
    "bad task": (_set("User", "task_name", "ASR"), ["[User] task_name", "one of MOT, SC-ASS"]),
}
USER_CASES = ["missing file", "missing section", "missing key", "bad type", "out of range", "bad choice",
              "missing data dir"]
SUBPROCESS_CASES = ["missing file", "bad type", "missing data dir"]   # each costs a Python + torch start-up


def _write_bad_ini(directory, data_dir, case):
    if case == "missing file":
        return directory / "absent.ini"
    sections = tiny_mot_sections(data_dir, directory / "runs")
    BAD_CONFIGS[case][0](sections)
    return write_ini(directory / (case.replace(" ", "_") + ".ini"), sections)


def _check_user_error(case, ini, directory, status, out, err):
    expected = ["not found"] if case == "missing file" else BAD_CONFIGS[case][1]
    assert status == 2, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in [str(ini), *expected]:
        assert fragment in lines[0]
    assert not (directory / "runs").exists()       # stopped before any work: no run directory


# ----------------------------------------------------------------- the script, as a user runs it
@pytest.fixture(scope="module")
def script_runs(tmp_path_factory, mot_data):
    """``python train_dvae_single.py BAD.ini`` from the repo root, the cases run concurrently."""
    root = tmp_path_factory.mktemp("bad_configs")
    procs = {}
    for case in SUBPROCESS_CASES:
        directory = root / case.replace(" ", "_")
        directory.mkdir()
        ini = _write_bad_ini(directory, mot_data, case)
        procs[case] = (ini, directory, subprocess.Popen(
            [sys.executable, "train_dvae_single.py", str(ini)], cwd=REPO, env=SCRIPT_ENV, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = {}
    for case, (ini, directory, proc) in procs.items():
        out, err = proc.communicate(timeout=300)
        results[case] = (ini, directory, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_script_exits_2_with_one_error_line(script_runs, case):
    _check_user_error(case, *script_runs[case])


@pytest.mark.parametrize("case", USER_CASES)
def test_script_main_exits_2_with_one_error_line(monkeypatch, capsys, tmp_path, mot_data, case):
    """The same through ``run_main(main)`` in this process (cheap), for every case."""
    ini = _write_bad_ini(tmp_path, mot_data, case)
    monkeypatch.setattr(sys, "argv", ["train_dvae_single.py", str(ini)])
    with pytest.raises(SystemExit) as exit_info:
        run_main(train_dvae_single.main)
    captured = capsys.readouterr()
    _check_user_error(case, ini, tmp_path, exit_info.value.code, captured.out, captured.err)


# ----------------------------------------------------------------- load_config directly
@pytest.fixture
def good_ini(tmp_path, mot_data):
    return write_ini(tmp_path / "good.ini", tiny_mot_sections(mot_data, tmp_path / "runs"))


def test_valid_config_gives_typed_values_and_defaults(good_ini, mot_data):
    cfg = load_config(good_ini, TRAIN)
    net, tr, frame = cfg["Network"], cfg["Training"], cfg["DataFrame"]
    assert net["x_dim"] == 4 and net["dense_gz_z"] == [8] and net["dense_hx_g"] == []
    assert tr["beta"] == 1.0 and isinstance(tr["beta"], float)
    assert tr["kl_warmup"] is True and tr["use_cuda"] is False
    assert cfg["User"]["train_data_dir"] == mot_data / "train"
    assert frame["max_train_batches"] == 0 and cfg["User"]["run_name"] == ""     # absent optional keys
    assert cfg.section("STFT") == {}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_load_config_errors_are_one_line_naming_file_section_key(tmp_path, mot_data, case):
    ini = _write_bad_ini(tmp_path, mot_data, case)
    with pytest.raises(UserError) as err:
        load_config(ini, TRAIN)
    message = str(err.value)
    assert "\n" not in message
    for fragment in [str(ini), *BAD_CONFIGS[case][1]]:
        assert fragment in message


def test_missing_file_and_unparsable_file(tmp_path):
    with pytest.raises(UserError, match="config file .*nope.ini' not found"):
        load_config(tmp_path / "nope.ini", TRAIN)
    bad = tmp_path / "bad.ini"
    bad.write_text("x_dim = 4\n")                                # no section header
    with pytest.raises(UserError, match="bad.ini: cannot parse INI file"):
        load_config(bad, TRAIN)


def test_key_kinds(tmp_path):
    keys = [Key("A", "ratio", "float", low=0, high=1), Key("A", "sizes", "floatlist"),
            Key("A", "ckpt", "file"), Key("A", "opt", "int", 7)]
    ini = write_ini(tmp_path / "k.ini", {"A": {"ratio": 0.5, "sizes": "0.5, 2", "ckpt": tmp_path / "k.ini"}})
    values = load_config(ini, keys)["A"]
    assert values == {"ratio": 0.5, "sizes": [0.5, 2.0], "ckpt": ini, "opt": 7}
    for raw, fragment in (("nan", "a number in [0, 1]"), ("1.5", "a number in [0, 1]")):
        write_ini(ini, {"A": {"ratio": raw, "sizes": 1, "ckpt": ini}})
        with pytest.raises(UserError, match=fragment.replace("[", r"\[")):
            load_config(ini, keys)
    write_ini(ini, {"A": {"ratio": 0.5, "sizes": 1, "ckpt": tmp_path / "none.pt"}})
    with pytest.raises(UserError, match=r"\[A\] ckpt: file .*none.pt' does not exist"):
        load_config(ini, keys)


def test_reference_table_lists_every_key():
    table = reference_table(TRAIN_AUDIO).splitlines()
    assert len(table) == 2 + len(TRAIN_AUDIO)
    assert "| [Network] | `x_dim` | *required* |" in "\n".join(table)


def test_device_falls_back_to_cpu_and_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    said = []
    assert choose_device(True, said.append).type == "cpu"
    assert said == ["device: CPU (use_cuda = True but CUDA is not available)"]
    assert choose_device(False, said.append).type == "cpu" and said[-1] == "device: CPU"


# ----------------------------------------------------------------- checks the script adds after parsing
def _main_error(monkeypatch, ini) -> str:
    monkeypatch.setattr(sys, "argv", ["train_dvae_single.py", str(ini)])
    with pytest.raises(UserError) as err:
        train_dvae_single.main()
    return str(err.value)


@pytest.mark.parametrize(("edits", "fragment"), [
    ({("Network", "x_dim"): 5}, "[Network] x_dim: expected 4"),
    ({("Training", "ss_start"): 10, ("Training", "ss_end"): 5}, "[Training] ss_end: must be >= ss_start"),
    ({("Training", "continue_train"): True, ("Training", "resume_dir"): "/nonexistent/run"},
     "[Training] resume_dir"),
    ({("Training", "continue_train"): True, ("Training", "which_epoch"): "last"}, "[Training] which_epoch"),
])
def test_script_checks_after_parsing(monkeypatch, tmp_path, mot_data, edits, fragment):
    sections = tiny_mot_sections(mot_data, tmp_path / "runs")
    sections["Training"]["resume_dir"] = tmp_path
    for (section, key), value in edits.items():
        sections[section][key] = value
    ini = write_ini(tmp_path / "c.ini", sections)
    message = _main_error(monkeypatch, ini)
    assert str(ini) in message and fragment in message
    assert not (tmp_path / "runs").exists()


def test_audio_x_dim_must_equal_the_number_of_stft_bins(monkeypatch, tmp_path):
    sections = tiny_mot_sections(tmp_path, tmp_path / "runs")
    sections["User"].update(task_name="SC-ASS", train_data_dir=tmp_path, val_data_dir=tmp_path)
    sections["Network"]["x_dim"] = 513
    sections["STFT"] = {"wlen_sec": 0.016, "hop_percent": 0.25, "fs": 16000}
    message = _main_error(monkeypatch, write_ini(tmp_path / "a.ini", sections))
    assert "[Network] x_dim: expected 129" in message and "got 513" in message


# ----------------------------------------------------------------- --set overrides and the effective INI
def test_overrides_are_applied_and_validated_like_the_file(good_ini):
    cfg = load_config(good_ini, TRAIN, overrides=["Training.lr=0.01", "DataFrame.max_train_batches = 3"])
    assert cfg["Training"]["lr"] == 0.01 and cfg["DataFrame"]["max_train_batches"] == 3
    for override, fragments in {
        "Training.lrr=0.01": ["--set Training.lrr=0.01", "unknown key lrr in [Training]", "did you mean lr?"],
        "Trainin.lr=0.01": ["unknown section [Trainin]", "did you mean Training?"],
        "Training.lr=5": [str(good_ini), "[Training] lr (--set)", "in [1e-08, 1]", "'5'"],
        "Training.lr": ["expected Section.key=value"],
        "lr=0.01": ["expected Section.key=value"],
    }.items():
        with pytest.raises(UserError) as err:
            load_config(good_ini, TRAIN, overrides=[override])
        assert "\n" not in str(err.value)
        for fragment in fragments:
            assert fragment in str(err.value), (override, str(err.value))


def test_effective_ini_reloads_to_the_same_config(good_ini, tmp_path):
    cfg = load_config(good_ini, TRAIN, overrides=["Training.seed=7", "DataFrame.use_random_seq=True"])
    text = cfg.effective_ini()
    assert text.startswith(f"# effective configuration: {good_ini} --set Training.seed=7")
    assert "seed = 7" in text and "# max_train_batches = 0" in text         # a default, as a comment
    (tmp_path / "again.ini").write_text(text)
    again = load_config(tmp_path / "again.ini", TRAIN)
    assert again.values == cfg.values and again.digest() == cfg.digest()
    assert load_config(good_ini, TRAIN).digest() != cfg.digest()


def test_settings_dataclasses_take_their_defaults_from_the_key_lists():
    from model.vem_mot import VEMSettings
    from model.vem_scass import VEMSettings as SeparationSettings
    from utils.config_keys_mot import VEM_MOT
    from utils.config_keys_scass import VEM_SCASS

    mot = {(k.section, k.name): k.default for k in VEM_MOT}
    scass = {(k.section, k.name): k.default for k in VEM_SCASS}
    assert VEMSettings().n_iter == mot["VEM", "N_iter_total"]
    assert VEMSettings().temperature == mot["VEM", "assignment_temperature"]
    assert VEMSettings().normalize_range == tuple(mot["DataFrame", "normalize_range"])
    assert SeparationSettings().ratio_v_theta_x == scass["VEM", "ratio_v_theta_x"]
    assert SeparationSettings().beta == scass["Training", "beta"]
