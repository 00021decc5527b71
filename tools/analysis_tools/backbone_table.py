"""Which mmseg backbones ``DynOPoolBackbone`` converts: the table of
``configs/dynopool/README.md``.

One row per backbone of mmseg 1.2.2, each taken from one of mmseg's own
recipes (the smallest member of its family). For every row the recipe's
backbone is built twice, plain and wrapped in ``DynOPoolBackbone``
(``steps='auto'``), with every pretrained source removed, and compared:

- converts: at least one DynOPool was inserted (and the build-time checks
  passed); the number of DynOPools, of size followers and of resizing layers
  left as they are (their reasons are logged at build);
- GMACs of the backbone alone on one ``3 x 256 x 256`` image (mmengine's
  ``FlopAnalyzer``), plain and at the initial ratios;
- ``--train``: two training iterations of the whole recipe, backbone
  wrapped, through ``tools/train.py`` on a tiny dataset in the recipe's own
  layout (ADE20K or Cityscapes, made by ``tests/tools/seg_data.py``),
  images resized to 64x64 (512x512 where a head needs it), on the CPU.

Examples::

    python tools/analysis_tools/backbone_table.py --train --write
    python tools/analysis_tools/backbone_table.py --check --rows MSCAN STDC

``--check`` recomputes the cheap columns of the named rows (all rows if
none are named) and exits with 1 if they differ from the README's table;
the training column is kept from the README unless ``--train`` is given.
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
from typing import Dict, List, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
README = osp.join(REPO, 'configs', 'dynopool', 'README.md')
BEGIN = ('<!-- backbone table: made by '
         'tools/analysis_tools/backbone_table.py -->')
END = '<!-- end of backbone table -->'
SHAPE = (256, 256)
CROP = (64, 64)
EXTRA_TARGETS = ('GenerateEdge', )
# Recipes whose heads need a larger crop: LR-ASPP's 49x49 average pool.
CROPS = {'MobileNetV3': (512, 512)}

# (row name, mmseg recipe of its smallest member). mmpretrain's ConvNeXt and
# PoolFormer recipes need mmpretrain, VPD needs Stable Diffusion: listed so
# the table says so.
RECIPES = [
    ('ResNet', 'fcn/fcn_r18b-d8_4xb2-80k_cityscapes-512x1024.py'),
    ('ResNetV1c', 'fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    ('ResNeSt', 'resnest/resnest_s101-d8_fcn_4xb2-80k_cityscapes-512x1024.py'),
    ('MobileNetV2', 'mobilenet_v2/mobilenet-v2-d8_fcn_4xb2-80k_'
     'cityscapes-512x1024.py'),
    ('MobileNetV3', 'mobilenet_v3/mobilenet-v3-d8-s_lraspp_4xb4-320k_'
     'cityscapes-512x1024.py'),
    ('HRNet', 'hrnet/fcn_hr18s_4xb2-40k_cityscapes-512x1024.py'),
    ('MixVisionTransformer', 'segformer/segformer_mit-b0_8xb2-160k_'
     'ade20k-512x512.py'),
    ('SwinTransformer', 'swin/swin-tiny-patch4-window7-in1k-pre_upernet_'
     '8xb2-160k_ade20k-512x512.py'),
    ('MSCAN', 'segnext/segnext_mscan-t_1xb16-adamw-160k_ade20k-512x512.py'),
    ('STDCContextPathNet', 'stdc/stdc1_4xb12-80k_cityscapes-512x1024.py'),
    ('BiSeNetV1', 'bisenetv1/bisenetv1_r18-d32_4xb4-160k_cityscapes-'
     '1024x1024.py'),
    ('BiSeNetV2', 'bisenetv2/bisenetv2_fcn_4xb4-160k_cityscapes-'
     '1024x1024.py'),
    ('PIDNet', 'pidnet/pidnet-s_2xb6-120k_1024x1024-cityscapes.py'),
    ('DDRNet', 'ddrnet/ddrnet_23-slim_in1k-pre_2xb6-120k_cityscapes-'
     '1024x1024.py'),
    ('UNet', 'unet/unet-s5-d16_fcn_4xb4-160k_cityscapes-512x1024.py'),
    ('CGNet', 'cgnet/cgnet_fcn_4xb8-60k_cityscapes-512x1024.py'),
    ('ERFNet', 'erfnet/erfnet_fcn_4xb4-160k_cityscapes-512x1024.py'),
    ('FastSCNN', 'fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py'),
    ('ICNet', 'icnet/icnet_r18-d8_4xb2-80k_cityscapes-832x832.py'),
    ('PCPVT', 'twins/twins_pcpvt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py'),
    ('SVT', 'twins/twins_svt-s_fpn_fpnhead_8xb4-80k_ade20k-512x512.py'),
    ('VisionTransformer', 'vit/vit_deit-s16_upernet_8xb2-80k_ade20k-'
     '512x512.py'),
    ('BEiT', 'beit/beit-base_upernet_8xb2-160k_ade20k-640x640.py'),
    ('MAE', 'mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py'),
    ('mmpretrain.ConvNeXt', 'convnext/convnext-tiny_upernet_8xb2-amp-160k_'
     'ade20k-512x512.py'),
    ('mmpretrain.PoolFormer', 'poolformer/fpn_poolformer_s12_8xb4-40k_'
     'ade20k-512x512.py'),
    ('VPD', 'vpd/vpd_sd_4xb8-25k_nyu-480x480.py'),
]
# mmseg 1.2.2 backbones that none of its recipes uses (no row): mmseg's
# own recipes are where the rows come from.
WITHOUT_RECIPE = ('ResNetV1d', 'ResNeXt', 'TIMMBackbone')
# Backbones built inside another row's backbone.
INSIDE = {'STDCNet': 'STDCContextPathNet'}
COLUMNS = ('Backbone', 'mmseg recipe', 'Converts', 'DynOPools', 'Followers',
           'Left as is', 'GMACs plain', 'GMACs init', '2 iters (CPU)')
CHEAP = COLUMNS[:8]


def load_recipe(recipe: str):
    from mmengine.config import Config
    from mmengine.hub import get_config
    try:
        return get_config(f'mmseg::{recipe}')
    except Exception:  # get_config needs the metafile entry; read the file
        import mmseg
        path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs',
                        recipe)
        return Config.fromfile(path)


def plain_backbone_cfg(cfg) -> dict:
    from mmdynopool.utils import remove_pretrained
    model = copy.deepcopy(cfg.model.to_dict())
    remove_pretrained(model)
    return to_bn(model['backbone'])


def to_bn(cfg):
    """SyncBN -> BN everywhere in a config (single CPU process)."""
    if isinstance(cfg, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else to_bn(v))
                for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(to_bn(v) for v in cfg)
    return cfg


def count_gmacs(model, shape=SHAPE) -> float:
    """GMACs of ``get_flops.py``'s counter, DynOPools frozen to their deploy
    form (``F.interpolate`` + ``max_pool2d``: same outputs, and a trace that
    does not depend on the training operator's implementation)."""
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
    from get_flops import count_complexity

    from mmdynopool.deploy import freeze_dynopool
    # In place (the table builds its models for this count only; mmseg's
    # SwinTransformer does not survive copy.deepcopy).
    freeze_dynopool(model)
    model.eval()
    return count_complexity(model, shape)['gmacs']


def cheap_row(name: str, recipe: str) -> Dict[str, str]:
    """Every column but the training one, for one recipe."""
    import mmdynopool  # noqa: F401 (compat; registers DynOPoolBackbone)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    MMLogger.get_current_instance().setLevel('WARNING')
    row = dict(zip(COLUMNS, [name, f'`{recipe}`'] + ['-'] * 7))
    try:
        backbone = plain_backbone_cfg(load_recipe(recipe))
        plain = MODELS.build(copy.deepcopy(backbone))
    except Exception as error:  # noqa: BLE001 - reported in the table
        row['Converts'] = f'does not build: {short(error)}'
        return row
    row['Backbone'] = f'{name} (`{backbone["type"]}`)' \
        if backbone['type'] != name else name
    try:
        converted = MODELS.build(
            dict(type='DynOPoolBackbone', backbone=copy.deepcopy(backbone)))
    except Exception as error:  # noqa: BLE001
        row['Converts'] = f'no: {short(error)}'
        return row
    count = len(converted.dynopool_names)
    row.update({
        'Converts': 'yes' if count else 'no (no convertible step)',
        'DynOPools': str(count),
        'Followers': str(len(converted.dynopool_followers)),
        'Left as is': str(len(converted.dynopool_skipped)),
    })
    for column, model in (('GMACs plain', plain), ('GMACs init', converted)):
        try:
            row[column] = f'{count_gmacs(model):.3f}'
        except Exception as error:  # noqa: BLE001 - reported in the table
            row[column] = f'counter fails: {short(error, 40)}'
    return row


def short(error: Exception, limit: int = 90) -> str:
    text = f'{type(error).__name__}: {error}'.replace('|', '/')
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


# -- two training iterations ----------------------------------------------
def uses_ade20k(cfg) -> bool:
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # RepeatDataset and the like
        dataset = dataset.dataset
    return dataset.type == 'ADE20KDataset'


def tiny_train_config(recipe: str, data_root: str, work_dir: str,
                      crop=CROP) -> str:
    """Write the recipe with its backbone wrapped in DynOPoolBackbone, the
    budget loss, the DynOPool optimiser constructor and hooks, a tiny data
    set (ADE20K if the recipe trains on it, else Cityscapes) and 2
    iterations; returns the path."""
    from mmdynopool.utils import remove_pretrained
    cfg = load_recipe(recipe)
    remove_pretrained(cfg.model)
    model = to_bn(cfg.model.to_dict())
    model['backbone'] = dict(type='DynOPoolBackbone',
                             backbone=model['backbone'])
    model['type'] = 'DynOPoolEncoderDecoder'
    model['budget_loss'] = dict(type='GMACsLoss', target_ratio=1.0)
    model['data_preprocessor']['size'] = tuple(crop)
    cfg.model = model
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:  # RepeatDataset and the like
        dataset = dataset.dataset
    ade = dataset.type == 'ADE20KDataset'
    if not ade:
        dataset.type = 'CityscapesDataset'
        dataset.data_prefix = dict(img_path='leftImg8bit/train',
                                   seg_map_path='gtFine/train')
    dataset.data_root = data_root
    # Targets some heads need besides the labels (PIDNet's edge map).
    extra = [t for t in dataset.pipeline if t['type'] in EXTRA_TARGETS]
    dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=ade),
        dict(type='Resize', scale=tuple(crop)[::-1], keep_ratio=False),
        *extra,
        dict(type='PackSegInputs')
    ]
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=10**6)
    for key in ('val', 'test'):
        cfg[f'{key}_dataloader'] = None
        cfg[f'{key}_cfg'] = None
        cfg[f'{key}_evaluator'] = None
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=10**6, save_last=False)
    cfg.optim_wrapper.constructor = 'DynOPoolOptimWrapperConstructor'
    cfg.optim_wrapper.pop('loss_scale', None)
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
        cfg.optim_wrapper.type = 'OptimWrapper'  # no AMP on the CPU
    cfg.custom_hooks = [
        dict(type='DynOPoolRatioHook', interval=1),
        dict(type='DynOPoolHealthHook')
    ]
    cfg.custom_imports = dict(imports=['mmdynopool'],
                              allow_failed_imports=False)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.cudnn_benchmark = False
    path = osp.join(work_dir, 'tiny_' + osp.basename(recipe))
    os.makedirs(work_dir, exist_ok=True)
    cfg.dump(path)
    return path


def make_tiny_data(root: str, ade: bool) -> str:
    sys.path.insert(0, REPO)
    from tests.tools.seg_data import make_ade20k, make_cityscapes
    return make_ade20k(root) if ade else make_cityscapes(root)


def train_two_iterations(recipe: str, crop=CROP,
                         timeout: float = 900) -> str:
    """``'ok, loss a -> b'`` or why not."""
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = osp.join(tmp, 'work_dir')
        ade = uses_ade20k(load_recipe(recipe))
        root = make_tiny_data(osp.join(tmp, 'data'), ade)
        path = tiny_train_config(recipe, root, work_dir, crop)
        env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
                   PYTHONWARNINGS='ignore')
        proc = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), path],
            cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout)
        losses = read_losses(work_dir)
        if proc.returncode != 0 or len(losses) < 2:
            last = [line for line in proc.stdout.splitlines()
                    if 'Error' in line][-1:] or proc.stdout.splitlines()[-1:]
            return 'fails: ' + short(RuntimeError(' '.join(last)))
        return f'ok, loss {losses[0]:.3f} -> {losses[-1]:.3f}'


def read_losses(work_dir: str) -> List[float]:
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                return [json.loads(line)['loss'] for line in f
                        if '"loss"' in line]
    return []


# -- the README table ------------------------------------------------------
def format_table(rows: Sequence[Dict[str, str]]) -> str:
    lines = [BEGIN, '', '| ' + ' | '.join(COLUMNS) + ' |',
             '| ' + ' | '.join('---' for _ in COLUMNS) + ' |']
    lines += ['| ' + ' | '.join(row[c] for c in COLUMNS) + ' |'
              for row in rows]
    return '\n'.join(lines + ['', END])


def read_table(text: str) -> Dict[str, Dict[str, str]]:
    if BEGIN not in text:
        return {}
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        row = dict(zip(COLUMNS, cells))
        rows[row['mmseg recipe']] = row
    return rows


def write_table(text: str, table: str) -> str:
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        return head + table + rest.split(END, 1)[1]
    return text.rstrip('\n') + '\n\n' + table + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='*', default=None,
                        help='row names (default: all)')
    parser.add_argument('--train', action='store_true',
                        help='run the two training iterations')
    parser.add_argument('--check', action='store_true',
                        help='compare with the README table, exit 1 if not '
                        'the same')
    parser.add_argument('--write', action='store_true',
                        help='write the table into the README')
    parser.add_argument('--readme', default=README)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [n for n, _ in RECIPES]
    unknown = sorted(set(args.rows or ()) - set(names))
    if unknown:
        raise SystemExit(f'--rows: unknown rows {unknown}; rows are {names}')
    with open(args.readme) as f:
        text = f.read()
    old = read_table(text)
    rows = []
    for name, recipe in RECIPES:
        if args.rows and name not in args.rows:
            continue
        row = cheap_row(name, recipe)
        key = row['mmseg recipe']
        if args.train and row['Converts'] == 'yes':
            row['2 iters (CPU)'] = train_two_iterations(
                recipe, CROPS.get(name, CROP))
        elif key in old:
            row['2 iters (CPU)'] = old[key]['2 iters (CPU)']
        print(' | '.join(row[c] for c in COLUMNS), flush=True)
        rows.append(row)
    if args.check:
        wrong = [(row['Backbone'], {c: (old.get(row['mmseg recipe'], {}).get(
            c), row[c]) for c in CHEAP
            if old.get(row['mmseg recipe'], {}).get(c) != row[c]})
            for row in rows]
        wrong = [w for w in wrong if w[1]]
        for name, diff in wrong:
            print(f'differs from the README: {name}: {diff}')
        return 1 if wrong else 0
    if args.write:
        merged = dict(old)
        merged.update({row['mmseg recipe']: row for row in rows})
        order = [f'`{recipe}`' for _, recipe in RECIPES]
        table = format_table([merged[k] for k in order if k in merged])
        with open(args.readme, 'w') as f:
            f.write(write_table(text, table))
    return 0


if __name__ == '__main__':
    sys.exit(main())
