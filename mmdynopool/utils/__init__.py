from .config import remove_pretrained
from .cli import (add_common_args, check_data_roots, enable_amp,
                  finish_distributed, load_config)
from .nested import first_tensor

__all__ = [
    'add_common_args', 'load_config', 'enable_amp', 'check_data_roots',
    'finish_distributed', 'remove_pretrained', 'first_tensor'
]
