"""Config helpers shared by the tools."""
from typing import Any, List


def remove_pretrained(cfg: Any, path: str = 'model') -> List[str]:
    """Drop every pretrained-weight source from a model config, in place:
    ``pretrained=<str>`` becomes None, and an ``init_cfg`` that loads a
    checkpoint (``type='Pretrained'``, alone or in a list) becomes None, so
    that building the model never touches the network. Analysis and export
    tools use it; their results do not depend on the initial weights.

    Returns:
        list[str]: The dotted names that were changed.
    """
    removed = []
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            cfg['pretrained'] = None
            removed.append(f'{path}.pretrained')
        init_cfg = cfg.get('init_cfg')
        init_cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        if any(
                isinstance(item, dict) and item.get('type') == 'Pretrained'
                for item in init_cfgs):
            cfg['init_cfg'] = None
            removed.append(f'{path}.init_cfg')
        for key, value in cfg.items():
            removed += remove_pretrained(value, f'{path}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for index, value in enumerate(cfg):
            removed += remove_pretrained(value, f'{path}[{index}]')
    return removed
