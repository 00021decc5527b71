from .gmacs_loss import GMACsLoss
from .macs_recorder import MACsRecorder

__all__ = ['GMACsLoss', 'MACsRecorder']
