"""Integer models at the engine's formats (16-bit stream and constants, 36-bit accumulator
for the UP5K; 48 for binaryvit-s, whose 64-bit attention heads need a wider exp table),
folded from seeded untrained BinaryViTs or a trained checkpoint."""
from functools import lru_cache

import torch

from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import Quantized, quantize_model
from network_models import MICRO, digits

ENGINE_FORMATS = QuantFormats(stream_width=16, const_bits=16, acc_width=36)


@lru_cache(maxsize=None)
def engine_quantized(name: str) -> Quantized:
    """``micro`` or ``tiny-digits``, seeded and untrained, calibrated on 64 digits."""
    torch.manual_seed(0)
    model = BinaryViT(MICRO if name == "micro" else get_config(name)).eval()
    images = torch.as_tensor(digits().train_images[:64]).to(torch.int64)
    return quantize_model(model, images, ENGINE_FORMATS)


@lru_cache(maxsize=None)
def binaryvit_s_quantized() -> tuple[Quantized, torch.Tensor]:
    """binaryvit-s, seeded and untrained, calibrated on two random 224 × 224 images; and a
    third random image to run."""
    torch.manual_seed(0)
    model = BinaryViT(get_config("binaryvit-s")).eval()
    images = torch.randint(0, 256, (3, 3, 224, 224), generator=torch.Generator().manual_seed(1))
    q = quantize_model(model, images[:2], ENGINE_FORMATS.replace(acc_width=48))
    return q, images[2:]
