from .config import remove_pretrained
from .cli import (add_common_args, check_data_roots, enable_amp,
                  load_config)

__all__ = [
    'add_common_args', 'load_config', 'enable_amp', 'check_data_roots',
    'remove_pretrained'
]
