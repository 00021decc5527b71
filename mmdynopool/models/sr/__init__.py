from .bicubic import BicubicUpsampler
from .edsr import (DynOPoolUpsampler, EDSRDynOPoolNet, EDSRNet,
                   default_stage_ratios)
from .encdec import DynOPoolEncDecSRNet
from .sr_model import PixelLoss, SRDataPreprocessor, SRModel

__all__ = [
    'SRModel', 'SRDataPreprocessor', 'PixelLoss', 'EDSRNet', 'EDSRDynOPoolNet',
    'DynOPoolUpsampler', 'DynOPoolEncDecSRNet', 'BicubicUpsampler',
    'default_stage_ratios'
]
