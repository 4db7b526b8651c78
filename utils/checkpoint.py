"""Self-describing DVAE checkpoints (docs/method.md §4): weights + the [Network] (and [STFT]) values.

A checkpoint can rebuild its model without an INI file, and a VEM run can refuse a
checkpoint whose network or STFT settings differ from its INI, naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from model.srnn import SRNN
from utils.config_keys import ARCH_KEYS, STFT_ARCH_KEYS
from utils.errors import UserError
from utils.output_dir import atomic_write

HEAD_OF_TASK = {"MOT": "gaussian", "SC-ASS": "is"}


def build_srnn(network: dict[str, Any], head: str) -> SRNN:
    """SRNN from typed [Network] values."""
    return SRNN(
        x_dim=network["x_dim"], z_dim=network["z_dim"], dense_x_h=network["dense_x_h"],
        dim_RNN_h=network["dim_RNN_h"], num_RNN_h=network["num_RNN_h"], dense_hz_z=network["dense_hz_z"],
        dense_hz_x=network["dense_hz_x"], dense_gz_z=network["dense_gz_z"], dense_hx_g=network["dense_hx_g"],
        dim_RNN_g=network["dim_RNN_g"], num_RNN_g=network["num_RNN_g"], activation=network["activation"],
        dropout_p=network["dropout_p"], head=head, increments=network.get("increments", False),
        velocity=network.get("velocity", False))


def save_checkpoint(path: Path, model: SRNN, network: dict, stft: dict | None = None, **extra: Any) -> None:
    """Write atomically (temporary file + rename) so an interrupted save never leaves a broken file."""
    path = Path(path)
    payload = {"format": "mixdvae-srnn-1", "head": model.head, "network": dict(network),
               "stft": dict(stft) if stft else None, "model": model.state_dict(), **extra}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict; a missing or foreign file is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for corrupt files
        raise UserError(f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "mixdvae-srnn-1":
        raise UserError(f"checkpoint {str(path)!r} is not a MixDVAE SRNN checkpoint")
    return ckpt


def load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    """``model.load_state_dict(state)``, with a UserError naming the first missing, unexpected or
    mis-shaped tensor (a checkpoint whose weights do not match its own [Network])."""
    expected = model.state_dict()
    if not isinstance(state, dict):
        raise UserError(f"checkpoint {str(path)!r} holds no weights dictionary")
    for name, tensor in expected.items():
        if name not in state:
            raise UserError(f"checkpoint {str(path)!r} lacks tensor {name!r} that its [Network] needs")
        if not isinstance(state[name], torch.Tensor) or state[name].shape != tensor.shape:
            got = tuple(state[name].shape) if isinstance(state[name], torch.Tensor) else type(state[name]).__name__
            raise UserError(f"checkpoint {str(path)!r} tensor {name!r} has shape {got}, its [Network] needs "
                            f"{tuple(tensor.shape)}")
    extra = [name for name in state if name not in expected]
    if extra:
        raise UserError(f"checkpoint {str(path)!r} has tensor {extra[0]!r} that its [Network] does not have")
    model.load_state_dict(state)


def check_matches(ckpt: dict, path: Path, network: dict | None = None, stft: dict | None = None,
                  where: str = "the INI") -> None:
    """Raise a UserError naming the first [Network]/[STFT] key whose value differs from the checkpoint."""
    for section, keys, given, saved in (("Network", ARCH_KEYS, network, ckpt["network"]),
                                        ("STFT", STFT_ARCH_KEYS, stft, ckpt.get("stft"))):
        if not given:
            continue
        for key in keys:
            if key in given and saved is not None and key in saved and given[key] != saved[key]:
                raise UserError(f"checkpoint {str(path)!r} has [{section}] {key} = {saved[key]!r} "
                                f"but {where} says {given[key]!r}")


def load_dvae(path: str | Path, network: dict | None = None, stft: dict | None = None,
              head: str | None = None, where: str = "the INI") -> tuple[SRNN, dict]:
    """Rebuild a trained SRNN from ``path`` and check it against the INI's [Network]/[STFT] values.

    Returns (model in eval mode, checkpoint dict).
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    check_matches(ckpt, path, network, stft, where)
    if head is not None and ckpt["head"] != head:
        raise UserError(f"checkpoint {str(path)!r} has a {ckpt['head']!r} head, this task needs {head!r}")
    try:
        model = build_srnn(ckpt["network"], ckpt["head"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"checkpoint {str(path)!r} has an unusable [Network] ({type(err).__name__}: {err})") from None
    load_state(model, ckpt, path)
    model.eval()
    return model, ckpt


def load_state(model: SRNN, ckpt: dict, path: Path) -> None:
    """Weights and feature statistics of the checkpoint dict ``ckpt`` (read from ``path``) into ``model``."""
    state = dict(ckpt["model"])
    state.setdefault("delta_std", model.delta_std)        # checkpoints written before increments existed
    load_weights(model, state, path)


def init_from(model: SRNN, path: str | Path, network: dict, where: str) -> None:
    """Copy weights and feature statistics of the checkpoint ``path`` into ``model`` (a warm start); the
    checkpoint's [Network] must equal ``network`` (a UserError naming the key and ``where`` otherwise)."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    check_matches(ckpt, path, network, where=where)
    load_state(model, ckpt, path)
