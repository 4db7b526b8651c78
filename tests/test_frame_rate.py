"""Running the MOT VEM at a multiple of the data's frame rate (model/frame_rate.py): the detections are
spread out with missing frames in between, and the results come back at the data's frames."""

import numpy as np
import pytest
import torch

from model.frame_rate import run_vem_upsampled, upsample_detections
from model.kf_vem import KalmanDynamics
from model.vem_mot import VEMSettings
from tests.test_vem_mot import shuffle, track, walkers

SETTINGS = VEMSettings(n_iter=4, init_iter=3, init_subseq_len=6, log_elbo=True, save_all_iters=True)


def test_detections_sit_at_every_fth_frame_with_missing_frames_between():
    det = torch.arange(2 * 4 * 3 * 4, dtype=torch.float32).reshape(2, 4, 3, 4)
    mask = torch.rand(2, 4, 3) > 0.3
    up, up_mask = upsample_detections(det, mask, 3)
    assert up.shape == (2, 10, 3, 4) and up_mask.shape == (2, 10, 3)
    assert torch.equal(up[:, ::3], det) and torch.equal(up_mask[:, ::3], mask)
    between = [t for t in range(10) if t % 3]
    assert torch.isnan(up[:, between]).all() and not up_mask[:, between].any()
    assert upsample_detections(det, None, 2)[1] is None


def test_factor_one_is_the_plain_vem():
    gt = walkers(T=12)
    det = torch.as_tensor(shuffle(gt), dtype=torch.float32)
    init = torch.as_tensor(gt[:, 0], dtype=torch.float32)
    torch.manual_seed(0)
    plain = track(det, init, KalmanDynamics(0.01, 0.1), SETTINGS)
    torch.manual_seed(0)
    same = run_vem_upsampled(det, None, init, KalmanDynamics(0.01, 0.1), SETTINGS, factor=1)
    torch.testing.assert_close(same.tracks, plain.tracks)


def test_upsampled_results_come_back_at_the_data_frames_and_follow_the_targets():
    gt = walkers(T=12)
    det = torch.as_tensor(shuffle(gt), dtype=torch.float32)
    init = torch.as_tensor(gt[:, 0], dtype=torch.float32)
    result = run_vem_upsampled(det, None, init, KalmanDynamics(0.01, 0.1), SETTINGS, factor=2)
    B, T, N, _ = gt.shape
    assert result.tracks.shape == (B, T, N, 4) and result.var.shape == (B, T, N, 4)
    assert result.eta.shape[:3] == (B, T, det.shape[2])
    assert result.iter_tracks.shape[1:] == (B, T, N, 4)
    assert np.abs(result.tracks.numpy() - gt).max() < 5.0


def test_a_factor_below_one_is_refused():
    det = torch.zeros(1, 3, 1, 4)
    with pytest.raises(ValueError, match="upsample"):
        run_vem_upsampled(det, None, det[:, 0], KalmanDynamics(0.01, 0.1), SETTINGS, factor=0)
