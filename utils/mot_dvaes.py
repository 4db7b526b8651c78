"""The DVAEs of a tracking run: the main checkpoint (``[Training] saved_dvae``) and the extra MixDVAE rows
(``[Eval] extra_dvae``), each loaded and checked against the INI before any work."""

from __future__ import annotations

from pathlib import Path

from model.fast_srnn import ES_MODES
from utils.checkpoint import load_dvae
from utils.config import Config
from utils.errors import UserError


def load_mot_dvae(cfg: Config):
    """The pre-trained DVAE, checked against the [Network] keys the INI gives and against o_dim."""
    path = Path(cfg["Training"]["saved_dvae"])
    network = {k: v for k, v in cfg.section("Network").items() if v is not None}
    model, ckpt = load_dvae(path, network=network, head="gaussian", where=str(cfg.path))
    if model.x_dim != cfg["VEM"]["o_dim"]:
        raise UserError(f"{cfg.path} [VEM] o_dim = {cfg['VEM']['o_dim']} but checkpoint {str(path)!r} has "
                        f"x_dim = {model.x_dim}")
    if cfg["VEM"]["dvae_es"] != "filter" and not model.increments:
        raise UserError(f"{cfg.path} [VEM] dvae_es = {cfg['VEM']['dvae_es']} needs an increments DVAE; "
                        f"checkpoint {str(path)!r} is not one (use filter)")
    return model, ckpt


def load_extra_dvaes(cfg: Config) -> dict[str, tuple]:
    """[Eval] extra_dvae ("name:path[:es_mode[:var_scale]], ..."): more MixDVAE rows, each checkpoint loaded
    and checked against o_dim (not against [Network], which describes saved_dvae: an extra may be non-causal
    or larger). A row may set its own E-S mode and variance inflation; by default it takes [VEM]'s.

    Returns: name -> (model, checkpoint path, its epoch, es_mode or None, var_scale or None), in the INI's order.
    """
    where = f"{cfg.path} [Eval] extra_dvae"
    out: dict[str, tuple] = {}
    for item in (v.strip() for v in cfg["Eval"]["extra_dvae"].split(",")):
        if not item:
            continue
        name, sep, path = (v.strip() for v in item.partition(":"))
        if not sep or not name or not path:
            raise UserError(f"{where}: expected name:checkpoint[:es_mode[:var_scale]], got {item!r}")
        es_mode = var_scale = None
        parts = path.split(":")
        if len(parts) >= 2 and parts[1].strip() in ES_MODES:
            path, es_mode = parts[0].strip(), parts[1].strip()
            if len(parts) == 3:
                try:
                    var_scale = float(parts[2])
                except ValueError:
                    var_scale = -1.0
                if not 1e-6 <= var_scale <= 1e6:
                    raise UserError(f"{where}: {name}: expected a variance scale in [1e-06, 1e+06], got {parts[2]!r}")
            elif len(parts) > 3:
                raise UserError(f"{where}: expected name:checkpoint[:es_mode[:var_scale]], got {item!r}")
        if name in out:
            raise UserError(f"{where}: the name {name!r} is used twice")
        model, ckpt = load_dvae(Path(path), head="gaussian", where=where)
        if model.x_dim != cfg["VEM"]["o_dim"]:
            raise UserError(f"{where}: checkpoint {path!r} has x_dim = {model.x_dim} but [VEM] o_dim = "
                            f"{cfg['VEM']['o_dim']}")
        if es_mode not in (None, "filter") and not model.increments:
            raise UserError(f"{where}: {name}: E-S {es_mode!r} needs an increments DVAE, {path!r} is not one")
        out[name] = (model, path, ckpt.get("epoch", "?"), es_mode, var_scale)
    return out
