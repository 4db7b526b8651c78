"""Property-based tests (hypothesis): random, extreme and non-finite values through the INI parser,
the MOTChallenge reader, the MOT VEM and the audio VEM. Every answer is a finite result or a clear
:class:`UserError`; nothing else (no other exception, no NaN passed on silently)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixdvae_mot
from data.mot_tracking_data_generation import gt_layout
from model.kf_vem import KalmanDynamics
from model.srnn import SRNN
from model.vem_mot import SRNNDynamics, VEMSettings, run_vem, valid_detections
from model.vem_scass import VEMSettings as SeparationSettings
from model.vem_scass import run_vem as run_audio_vem
from utils.config import Config, load_config
from utils.config_keys_mot import VEM_MOT
from utils.errors import UserError
from utils.mot_io import load_mot_txt, read_tracks

torch.set_num_threads(1)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

EXTREME = st.sampled_from([0.0, -0.0, 1e-300, 1e-30, 1e-8, 1.0, -1.0, 1e8, 1e30, 1e300, -1e300,
                           math.inf, -math.inf, math.nan])
NUMBER = st.one_of(EXTREME, st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20))
VALUE_TEXT = st.one_of(NUMBER.map(str), st.text(max_size=12), st.sampled_from(["", "True", "maybe", "1,2", ",,"]))


# ---------------------------------------------------------------------------- INI parser
def check_config(cfg: Config) -> None:
    """Every typed value the parser lets through respects its key's type and range."""
    for key in VEM_MOT:
        value = cfg[key.section][key.name]
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float):
                assert math.isfinite(v), (key.name, v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert key.low is None or v >= key.low, (key.name, v)
                assert key.high is None or v <= key.high, (key.name, v)


@SLOW
@given(overrides=st.dictionaries(st.sampled_from([(k.section, k.name) for k in VEM_MOT]
                                                 + [("VEM", "N_iter_totl"), ("Extra", "x")]),
                                 VALUE_TEXT, max_size=6))
def test_ini_parser_returns_valid_values_or_a_clear_error(tmp_path_factory, overrides):
    root = tmp_path_factory.mktemp("ini")
    (root / "ckpt.pt").write_bytes(b"x")
    sections = {"User": {"task_name": "MOT", "data_dir": str(root)}, "Training": {"saved_dvae": str(root / "ckpt.pt")}}
    for (section, name), text in overrides.items():
        sections.setdefault(section, {})[name] = text.replace("\n", " ").replace("\r", " ")
    body = "".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) for s, keys in sections.items())
    (root / "c.ini").write_text(body)
    try:
        cfg = load_config(root / "c.ini", VEM_MOT)
    except UserError as err:
        assert "\n" not in str(err) and "c.ini" in str(err)
        return
    check_config(cfg)


@SLOW
@given(body=st.text(max_size=200))
def test_ini_parser_survives_any_file_content(tmp_path_factory, body):
    path = tmp_path_factory.mktemp("ini") / "c.ini"
    path.write_text(body, encoding="utf-8", errors="surrogatepass") if body.isprintable() else \
        path.write_bytes(body.encode("utf-8", errors="replace"))
    try:
        check_config(load_config(path, VEM_MOT))
    except UserError as err:
        assert "\n" not in str(err)


# ---------------------------------------------------------------------------- MOTChallenge reader
@SLOW
@given(lines=st.lists(st.one_of(st.lists(NUMBER, min_size=0, max_size=12).map(lambda v: ",".join(map(str, v))),
                                st.text(max_size=30)), max_size=8))
def test_motchallenge_reader_returns_a_finite_table_or_a_clear_error(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("mot") / "gt.txt"
    path.write_text("\n".join(line.replace("\r", " ") for line in lines) + "\n", encoding="utf-8",
                    errors="replace")
    try:
        table = load_mot_txt(path)
        assert np.isfinite(table).all()
        if len(table):
            gt_layout(table, "auto", path)
            tracks, ids = read_tracks(path)
            assert tracks.shape[1] == len(ids)
    except UserError as err:
        assert "\n" not in str(err) and "gt.txt" in str(err)


# ---------------------------------------------------------------------------- MOT VEM
B_MOT, T_MOT, K_MOT, N_MOT = 10, 6, 3, 2
COORD = st.one_of(EXTREME, st.floats(-5000, 5000))


def tiny_dvae() -> SRNNDynamics:
    torch.manual_seed(0)
    model = SRNN(x_dim=4, z_dim=2, dense_x_h=[4], dim_RNN_h=6, num_RNN_h=1, dense_hz_z=[4], dense_hz_x=[4],
                 dense_gz_z=[4])
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]))
    return SRNNDynamics(model.eval())


def tiny_velocity_dvae() -> SRNNDynamics:
    """An increments DVAE with the velocity anchor and its two-state smoother E-S (model/gauss2.py)."""
    torch.manual_seed(0)
    model = SRNN(x_dim=4, z_dim=2, dense_x_h=[4], dim_RNN_h=6, num_RNN_h=1, dense_hz_z=[4], dense_hz_x=[4],
                 dense_gz_z=[4], increments=True, velocity=True)
    model.set_feature_stats(torch.tensor([0.5, 0.4, 0.52, 0.55]), torch.tensor([0.27, 0.24, 0.27, 0.24]),
                            torch.tensor([0.001, 0.0006, 0.001, 0.0015]))
    return SRNNDynamics(model.eval(), es_mode="smoother", es_var="fixed", var_scale=0.3)


DYNAMICS = {"mixdvae": tiny_dvae(), "mixdvae_velocity": tiny_velocity_dvae(), "kf_vem": KalmanDynamics(0.01, 0.1, True)}
RANGE = {k.name: (k.low, k.high) for k in VEM_MOT if k.section == "VEM"}


def in_range(name: str) -> st.SearchStrategy[float]:
    low, high = RANGE[name]
    return st.one_of(st.sampled_from([low, high]), st.floats(low, high))


@settings(SLOW, max_examples=100)
@given(det=st.lists(COORD, min_size=B_MOT * T_MOT * K_MOT * 4, max_size=B_MOT * T_MOT * K_MOT * 4),
       init_xy=st.lists(st.floats(0, 1800), min_size=B_MOT * N_MOT * 2, max_size=B_MOT * N_MOT * 2),
       init_wh=st.lists(st.sampled_from([1e-3, 1.0, 50.0, 1e4]), min_size=B_MOT * N_MOT * 2,
                        max_size=B_MOT * N_MOT * 2),
       std_ratio=in_range("std_ratio"), tau=in_range("assignment_temperature"),
       clutter=st.one_of(st.none(), in_range("clutter_logprob")), update_phi=st.booleans(),
       method=st.sampled_from(sorted(DYNAMICS)))
def test_mot_vem_on_random_extreme_samples_is_finite(det, init_xy, init_wh, std_ratio, tau, clutter, update_phi,
                                                      method):
    """100 batches of 10 samples = 1000 random extreme samples (boxes at +-1e300, inf, NaN, zero or negative
    size, tiny and huge init boxes) with settings anywhere in the documented ranges."""
    det = torch.tensor(det, dtype=torch.float32).reshape(B_MOT, T_MOT, K_MOT, 4)
    xy = torch.tensor(init_xy).reshape(B_MOT, N_MOT, 2)
    init = torch.cat([xy, xy + torch.tensor(init_wh).reshape(B_MOT, N_MOT, 2)], -1)
    size = torch.tensor([[1920.0, 1080.0]]).expand(B_MOT, 2)
    mask = valid_detections(det, None, size)                 # what the script's sample loader keeps
    vem = VEMSettings(n_iter=2, init_iter=1, init_subseq_len=3, std_ratio=std_ratio, temperature=tau,
                      clutter_logprob=clutter, update_phi=update_phi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_vem(det, mask, init, DYNAMICS[method], vem, size)
    names = [f"s{b}" for b in range(B_MOT)]
    try:
        mixdvae_mot.check_tracks(method, result.tracks, names, _CFG)
    except UserError as err:                                     # the clear error, naming the sample
        assert "produced non-finite tracks for sample s" in str(err)
        return
    assert torch.isfinite(result.tracks).all() and torch.isfinite(result.var).all()
    assert torch.isfinite(result.eta).all()


class _Cfg:
    path = "cfg.ini"


_CFG = _Cfg()


# ---------------------------------------------------------------------------- audio VEM
F_AUDIO, T_AUDIO = 9, 6


def tiny_audio_dvae(seed: int) -> SRNN:
    torch.manual_seed(seed)
    return SRNN(x_dim=F_AUDIO, z_dim=2, dense_x_h=[8], dim_RNN_h=6, num_RNN_h=1, dense_hz_z=[4], dense_hz_x=[8],
                dense_gz_z=[4], head="is").eval()


AUDIO_DVAES = [tiny_audio_dvae(0), tiny_audio_dvae(1)]


@settings(SLOW, max_examples=60)
@given(gain=st.sampled_from([0.0, 1e-20, 1e-8, 1e-3, 1.0, 100.0, 32768.0, 1e6, 1e12]),
       pattern=st.sampled_from(["noise", "silence", "impulse", "tone", "dc"]),
       ratio=st.sampled_from([1e-12, 1e-3, 0.03, 1.0, 1e6]), floor=st.sampled_from([1e-30, 1e-8, 1.0]),
       es_power=st.sampled_from(["sample", "expected"]), seed=st.integers(0, 2**16))
def test_audio_vem_on_random_extreme_mixtures_is_finite(gain, pattern, ratio, floor, es_power, seed):
    rng = np.random.default_rng(seed)
    spec = {"noise": rng.normal(size=(2, T_AUDIO, F_AUDIO)) + 1j * rng.normal(size=(2, T_AUDIO, F_AUDIO)),
            "silence": np.zeros((2, T_AUDIO, F_AUDIO)),
            "impulse": np.pad(np.ones((2, 1, F_AUDIO)), ((0, 0), (2, T_AUDIO - 3), (0, 0))),
            "tone": np.pad(np.ones((2, T_AUDIO, 1)), ((0, 0), (0, 0), (3, F_AUDIO - 4))),
            "dc": np.ones((2, T_AUDIO, F_AUDIO))}[pattern]
    x = torch.tensor(gain * spec, dtype=torch.complex64)
    options = SeparationSettings(n_iter=2, ratio_v_theta_x=ratio, v_x_floor=floor, es_power=es_power)
    try:
        result = run_audio_vem(AUDIO_DVAES, x, options)
    except UserError as err:
        assert "\n" not in str(err)
        return
    for name in ("mu", "v", "eta"):
        value = getattr(result, name)
        assert torch.isfinite(value).all(), (name, gain, pattern)
    torch.testing.assert_close(result.eta.sum(1), torch.ones_like(result.eta[:, 0]))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_mot_vem_property_check_is_not_vacuous(bad):
    """The clear error of the property above does fire on a non-finite track."""
    tracks = torch.zeros(2, 3, 2, 4)
    tracks[1, 0, 0, 0] = bad
    with pytest.raises(UserError, match="sample s1"):
        mixdvae_mot.check_tracks("mixdvae", tracks, ["s0", "s1"], _CFG)
