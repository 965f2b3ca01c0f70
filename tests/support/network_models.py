"""Integer models for the network-generator tests, folded from seeded untrained BinaryViTs
(bit-exactness does not need training; the end-to-end test uses the trained checkpoint)."""
import dataclasses
from functools import lru_cache

import torch

from binaryvit.golden.float_model.config import BinaryViTConfig, get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.quantize.calibrate import calibrate
from binaryvit.quantize.fold import fold_model

# The tiny-digits architecture at a quarter of its size: 8×8 digits in 2×2 patches, a 4×4
# then 2×2 grid, every op kind of the full model (SR attention, merge, pool branches).
MICRO = BinaryViTConfig(name="micro", image_size=(8, 8), in_channels=1, num_classes=10,
                        patch_size=2, embed_dims=(8, 16), depths=(1, 1), num_heads=(1, 2),
                        mlp_dims=(16, 32), sr_ratios=(2, 1), input_mean=(4.884,),
                        input_std=(6.017,))

# MICRO without the pyramid and the layer scale: one isotropic stage. Its strip pool
# flushes the tail of a stream's last image early (that image takes fewer cycles than a
# steady one), which a mean over all images used to average in.
MICRO_FLAT = dataclasses.replace(MICRO, name="micro-flat", pyramid=False, layer_scale=False)
CONFIGS = {"micro": MICRO, "micro-flat": MICRO_FLAT}


@lru_cache(maxsize=None)
def digits():
    return load_digits_dataset()


@lru_cache(maxsize=None)
def int_model(name: str):
    torch.manual_seed(0)
    config = CONFIGS[name] if name in CONFIGS else get_config(name)
    model = BinaryViT(config)
    images = torch.as_tensor(digits().train_images[:64]).to(torch.int64)
    return fold_model(model, calibrate(model, images).formats)


def digit_images(count: int) -> torch.Tensor:
    return torch.as_tensor(digits().test_images[:count]).to(torch.int64)
