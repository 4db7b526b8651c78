"""The DVAEs of a tracking run: the main checkpoint (``[Training] saved_dvae``) and the extra MixDVAE rows
(``[Eval] extra_dvae``), each loaded and checked against the INI before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.dvae_choice import SCORES, choice_problem
from model.fast_srnn import ES_MODES, ES_VARS
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


def load_choice_dvaes(cfg: Config, main) -> list:
    """[Training] choice_dvae: the further DVAEs the main row chooses from per sequence, each checked against o_dim
    and against ``main`` (increments, the same input and increment scales). Empty key = [] (one DVAE)."""
    where = f"{cfg.path} [Training] choice_dvae"
    paths = [v.strip() for v in cfg["Training"]["choice_dvae"].split("+") if v.strip()]
    models = []
    for path in paths:
        model, _ = load_dvae(Path(path), head="gaussian", where=where)
        if model.x_dim != cfg["VEM"]["o_dim"]:
            raise UserError(f"{where}: checkpoint {path!r} has x_dim = {model.x_dim} but [VEM] o_dim = "
                            f"{cfg['VEM']['o_dim']}")
        problem = choice_problem([main, model])
        if problem:
            raise UserError(f"{where}: {path!r} and [Training] saved_dvae: {problem}")
        models.append(model)
    return models


@dataclass(frozen=True)
class RowSettings:
    """An [Eval] extra_dvae row's own settings; None = the [VEM] value."""

    es_mode: str | None = None
    var_scale: float | tuple[float, ...] | None = None      # a tuple: one per DVAE of a choice
    es_var: str | None = None
    tau: float | None = None
    init: int | None = None
    choice_score: str | None = None                          # a choice's rule (model.dvae_choice.SCORES)


def _number(text: str, kind, low, high, where: str, what: str):
    """``kind(text)`` if it parses and lies in [low, high], else a one-line UserError naming ``where`` and ``what``."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise UserError(f"{where}: expected {what} in [{low:g}, {high:g}], got {text!r}")
    return value


def load_extra_dvaes(cfg: Config) -> dict[str, tuple]:
    """[Eval] extra_dvae ("name:path[:es_mode[:var_scale[:es_var[:tau[:init[:choice_score]]]]]], ..."): more MixDVAE
    rows, each
    checkpoint loaded and checked against o_dim (not against [Network], which describes saved_dvae: an extra may
    be non-causal or larger). A row may set its own E-S mode, variance scale, E-S variance ("model", "fixed" or
    "adaptive"), E-W temperature tau and initialisation window; by default it takes [VEM]'s. ``path`` may join
    several increments DVAEs with "+" (same scales): the row then chooses the DVAE per sequence
    (:class:`model.dvae_choice.DVAEChoice`), var_scale may then give one value per DVAE, joined by "+", and
    choice_score how the runs are judged (:data:`model.dvae_choice.SCORES`).

    Returns: name -> (model, or a tuple of models for a choice, checkpoint path(s), epoch(s), RowSettings), in the
    INI's order.
    """
    where = f"{cfg.path} [Eval] extra_dvae"
    form = "name:checkpoint[:es_mode[:var_scale[:es_var[:tau[:init[:choice_score]]]]]]"
    out: dict[str, tuple] = {}
    for item in (v.strip() for v in cfg["Eval"]["extra_dvae"].split(",")):
        if not item:
            continue
        name, sep, path = (v.strip() for v in item.partition(":"))
        if not sep or not name or not path:
            raise UserError(f"{where}: expected {form}, got {item!r}")
        es_mode = var_scale = es_var = tau = init = choice_score = None
        parts = [v.strip() for v in path.split(":")]
        if len(parts) >= 2 and parts[1] in ES_MODES:
            if len(parts) > 7:
                raise UserError(f"{where}: expected {form}, got {item!r}")
            path, es_mode = parts[0], parts[1]
            if len(parts) >= 3:
                scales = tuple(_number(v, float, 1e-6, 1e6, f"{where}: {name}", "a variance scale")
                               for v in parts[2].split("+"))
                var_scale = scales[0] if len(scales) == 1 else scales
            if len(parts) >= 4:
                es_var = parts[3]
                if es_var not in ES_VARS:
                    raise UserError(f"{where}: {name}: es_var must be one of {', '.join(ES_VARS)}, got {es_var!r}")
            if len(parts) >= 5:
                tau = _number(parts[4], float, 1e-6, 1e6, f"{where}: {name}", "a temperature tau")
            if len(parts) >= 6:
                init = _number(parts[5], int, 1, 100000, f"{where}: {name}", "an init window (frames)")
            if len(parts) == 7:
                choice_score = parts[6]
                if choice_score not in SCORES:
                    raise UserError(f"{where}: {name}: choice_score must be one of {', '.join(SCORES)}, got "
                                    f"{choice_score!r}")
        if name in out:
            raise UserError(f"{where}: the name {name!r} is used twice")
        models, epochs = [], []
        for one in (v.strip() for v in path.split("+")):
            model, ckpt = load_dvae(Path(one), head="gaussian", where=where)
            if model.x_dim != cfg["VEM"]["o_dim"]:
                raise UserError(f"{where}: checkpoint {one!r} has x_dim = {model.x_dim} but [VEM] o_dim = "
                                f"{cfg['VEM']['o_dim']}")
            if es_mode not in (None, "filter") and not model.increments:
                raise UserError(f"{where}: {name}: E-S {es_mode!r} needs an increments DVAE, {one!r} is not one")
            models.append(model)
            epochs.append(str(ckpt.get("epoch", "?")))
        if isinstance(var_scale, tuple) and len(var_scale) != len(models):
            raise UserError(f"{where}: {name}: {len(var_scale)} variance scales for {len(models)} DVAEs")
        if choice_score is not None and len(models) == 1:
            raise UserError(f"{where}: {name}: choice_score {choice_score!r} needs several DVAEs joined by +")
        problem = choice_problem(models) if len(models) > 1 else None
        if problem:
            raise UserError(f"{where}: {name} ({path}): {problem}")
        model = models[0] if len(models) == 1 else tuple(models)
        out[name] = (model, path, "+".join(epochs), RowSettings(es_mode, var_scale, es_var, tau, init,
                                                                           choice_score))
    return out
