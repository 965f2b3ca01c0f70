"""The official-code fixture (tests/fixtures/official) and files built from it the way the
official code writes them: its training checkpoint, a bare state_dict, edited copies."""
import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official"
BINARY_CKPT = FIXTURE / "official_ckpt.pth"
VIT_CONFIG = FIXTURE / "config.json"
FLOAT_STATE_DICT_SHA256 = "871ebdf49fba56136060d74b4032300e8cb7dfc3b793fe2e1a04b8bd0dc258c4"
# What the official main.py's parser gives for the run in fixture.json (the flags that
# shape the model, and a few of the others a training checkpoint's args hold).
OFFICIAL_ARGS = dict(
    model="configs/fixture", model_type="extra-res-pyramid", nb_classes=10, drop_path=0.0,
    avg_res3=True, avg_res5=True, replace_ln_bn=True, disable_layerscale=False,
    enable_cls_token=False, some_fp=False, weight_bits=1, input_bits=1, batch_size=64,
    epochs=300, lr=5e-4, opt="adamw", opt_betas=None, sched="cosine", weight_decay=0.0,
    teacher_model="configs/deit-small-patch16-224", output_dir="logs/fixture", seed=0,
    device="cuda", distributed=False, data_set="IMNET", model_ema=False)


def inputs_and_logits():
    """The official inputs (normalised, float32 [2, 3, 224, 224]) and logits."""
    with np.load(FIXTURE / "fixture.npz") as z:
        x = torch.from_numpy(z["inputs_q"].astype(np.float32) / z["input_div"])
        return x, torch.from_numpy(z["logits_binary"]), torch.from_numpy(z["logits_float"])


def binary_state_dict():
    return torch.load(BINARY_CKPT, map_location="cpu", weights_only=True)["model"]


def state_dict_digest(state_dict):
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        digest.update(key.encode())
        digest.update(state_dict[key].numpy().tobytes())
    return digest.hexdigest()


def float_state_dict():
    """The shared official_ckpt_float.pth's state_dict, rebuilt (see the fixture README)."""
    state_dict = {k: v for k, v in binary_state_dict().items() if "att_prob_clip" not in k}
    with np.load(FIXTURE / "float_bn_statistics.npz") as z:
        for key in z.files:
            state_dict[key] = torch.from_numpy(z[key])
    assert state_dict_digest(state_dict) == FLOAT_STATE_DICT_SHA256
    return state_dict


def training_checkpoint(state_dict, epoch=7, **args):
    """What the official main.py saves after an epoch: model, optimizer, lr_scheduler,
    epoch, scaler and args (an argparse.Namespace)."""
    params = [torch.nn.Parameter(v.clone().float()) for v in list(state_dict.values())[:3]]
    optimizer = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.0)
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler = {"param_group_field": "lr", "base_values": [5e-4], "metric": None,
                 "t_in_epochs": True, "noise_range_t": None, "noise_pct": 0.67,
                 "noise_type": "normal", "noise_std": 1.0, "noise_seed": 42,
                 "t_initial": 300, "lr_min": 1e-5, "cycle_mul": 1.0, "cycle_decay": 0.1,
                 "cycle_limit": 1, "warmup_t": 0, "warmup_lr_init": 1e-6,
                 "warmup_prefix": False, "k_decay": 1.0, "warmup_steps": [1.0]}
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
              "growth_interval": 2000, "_growth_tracker": 0}
    return {"model": state_dict, "optimizer": optimizer.state_dict(), "lr_scheduler": scheduler,
            "epoch": epoch, "scaler": scaler,
            "args": argparse.Namespace(**{**OFFICIAL_ARGS, **args})}


def save(payload, path):
    torch.save(payload, path)
    return path
