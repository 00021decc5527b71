from .sr_transforms import (BicubicDownscale, LoadSRPair, PackSRInputs,
                            PairedRandomCrop, PairedRandomFlip,
                            PairedRandomRot90)

__all__ = [
    'LoadSRPair', 'BicubicDownscale', 'PairedRandomCrop', 'PairedRandomFlip',
    'PairedRandomRot90', 'PackSRInputs'
]
