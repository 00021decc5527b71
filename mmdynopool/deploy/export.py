"""Build a trained model for deployment and export it to ONNX.

The exported graph is the *frozen* model (every DynOPool replaced by its
:class:`~mmdynopool.ops.StaticDynOPool`), traced by ``torch.export`` with a
symbolic height and width, and translated by PyTorch's dynamo ONNX exporter
(``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``). The
learned size rule ``max(min_size, round(r * H))`` is carried out on the
symbolic input size in exact integer arithmetic (see
:mod:`mmdynopool.ops.static`), so one ONNX model serves every input size and
reproduces PyTorch's feature sizes exactly.

What the ONNX model takes and returns:

* segmentors (mmseg ``EncoderDecoder`` and subclasses): the *preprocessed*
  image ``(N, 3, H, W)`` float32 (what ``SegDataPreProcessor`` outputs:
  channel order converted, mean subtracted, divided by std), and the
  decode head's logits resized (bilinearly) to ``H x W``:
  ``(N, num_classes, H, W)``; ``argmax(1)`` is the prediction;
* super-resolution models (``SRModel``): the LR image ``(N, 3, h, w)`` in
  [0, 1] and the generator's output ``(N, 3, s*h, s*w)`` (unclamped);
* any other module: its ``forward(x)``.

``onnx``, ``onnxruntime`` and ``onnxscript`` are imported only when used:
``pip install -e ".[deploy]"``.
"""
import copy
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import BaseModel, revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from torch import Tensor

from mmdynopool.utils import remove_pretrained
from .freeze import freeze_dynopool

DEFAULT_SHAPE = (512, 512)


# -- building ---------------------------------------------------------------
def build_model(cfg: Config,
                checkpoint: Optional[str] = None,
                freeze: bool = True) -> nn.Module:
    """The config's model on the CPU in eval mode, with the checkpoint's
    weights and (``freeze``) every DynOPool frozen to its learned ratio.

    Pretrained-weight sources are removed first (the checkpoint has all the
    weights); SyncBN becomes BN (no process group needed).
    """
    model_cfg = copy.deepcopy(cfg.model)
    remove_pretrained(model_cfg)
    if cfg.get('default_scope') is not None:
        init_default_scope(cfg.default_scope)
    model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    if freeze:
        freeze_dynopool(model)
    return model


def default_shape(cfg: Config) -> Tuple[int, int]:
    """The training input size of a config: ``crop_size`` (mmseg),
    ``data_preprocessor.size``, ``lr_patch_size`` (SR), else 512 x 512."""
    for value in (cfg.get('crop_size'),
                  (cfg.get('model', {}).get('data_preprocessor') or {}).get(
                      'size'), cfg.get('lr_patch_size')):
        if isinstance(value, int):
            return value, value
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return int(value[0]), int(value[1])
    return DEFAULT_SHAPE


def second_shape(shape: Sequence[int]) -> Tuple[int, int]:
    """A check size unlike the training size: other aspect ratio, odd."""
    h, w = shape
    return max(2, (3 * h) // 4) | 1, max(2, (5 * w) // 4) | 1


# -- the exported module ------------------------------------------------------
def detach_macs_recorders(model: nn.Module) -> int:
    """Remove the hooks of every compute-budget loss's MACs recorder.

    They only matter for training, and they read sizes as Python ints,
    which would pin the traced height and width to the example's. Returns
    how many recorders were detached.
    """
    detached = 0
    for module in model.modules():
        recorder = getattr(module, '_recorder', None)
        if recorder is not None and hasattr(recorder, 'remove'):
            recorder.remove()
            detached += 1
    return detached


def deploy_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` without training-only hooks, in eval
    mode: what is exported."""
    model = freeze_dynopool(model, inplace=False)
    detach_macs_recorders(model)
    return model.eval()


def is_segmentor(model: nn.Module) -> bool:
    return hasattr(model, 'decode_head') and hasattr(model, 'extract_feat')


class DeployModel(nn.Module):
    """``x -> output`` of a (frozen) model, as described in the module
    docstring: segmentors return logits at the input size
    (``resize_logits=False``: at the decode head's size, as mmseg's
    ``mode='tensor'``)."""

    def __init__(self, model: nn.Module, resize_logits: bool = True) -> None:
        super().__init__()
        self.model = model
        self.resize_logits = resize_logits

    def forward(self, x: Tensor) -> Tensor:
        model = self.model
        if is_segmentor(model):
            logits = model._forward(x)
            if not self.resize_logits:
                return logits
            return F.interpolate(
                logits,
                size=x.shape[2:],
                mode='bilinear',
                align_corners=bool(getattr(model, 'align_corners', False)))
        if isinstance(model, BaseModel):
            out = model(x, mode='tensor')
        else:
            out = model(x)
        if isinstance(out, (list, tuple)):
            out = out[0]
        if not isinstance(out, Tensor):
            raise TypeError(f'{type(model).__name__} returned '
                            f'{type(out).__name__}; export needs a tensor')
        return out


# -- export and check ---------------------------------------------------------
def export_onnx(model: nn.Module,
                out_file: str,
                shape: Sequence[int],
                in_channels: int = 3,
                batch_size: int = 1,
                opset_version: Optional[int] = None,
                dynamic: bool = True) -> str:
    """Export ``model`` (a frozen copy of it, see :func:`deploy_copy`) to
    ``out_file`` with dynamic height and width.

    Args:
        model (nn.Module): A segmentor, an SR model or any ``x -> tensor``
            module.
        out_file (str): The ``.onnx`` path (weights embedded).
        shape (Sequence[int]): ``(H, W)`` of the example input to trace.
        in_channels (int): Input channels. Default: 3.
        batch_size (int): Batch of the example input; the batch dimension is
            dynamic when it is > 1 (a size-1 example fixes it to 1).
        opset_version (int, optional): ONNX opset; the exporter's default
            when None.
        dynamic (bool): Symbolic height and width (default); False fixes
            them to ``shape``.

    Returns:
        str: ``out_file``.
    """
    wrapper = DeployModel(deploy_copy(model)).eval()
    example = torch.rand(batch_size, in_channels, *shape)
    dims = {}
    if dynamic:
        dims = {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    if batch_size > 1:
        dims[0] = torch.export.Dim.DYNAMIC
    kwargs = dict(
        dynamo=True,
        input_names=['input'],
        output_names=['output'],
        dynamic_shapes=({**dims}, ) if dims else None,
        external_data=False,
        verbose=False)
    if opset_version is not None:
        kwargs['opset_version'] = opset_version
    with torch.no_grad():
        program = torch.onnx.export(wrapper, (example, ), **kwargs)
    program.save(out_file)
    return out_file


def onnx_session(onnx_file: str):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


def check_onnx(onnx_file: str,
               model: nn.Module,
               shapes: Sequence[Sequence[int]],
               in_channels: int = 3,
               batch_size: int = 1,
               seed: int = 0,
               fp64_reference: bool = False) -> List[Dict[str, Any]]:
    """Run the ONNX model with onnxruntime and the PyTorch model on the same
    random inputs in [-1, 1], one per ``(H, W)`` in ``shapes``.

    Args:
        fp64_reference (bool): Also run a float64 copy of the PyTorch model
            and report how far the float32 PyTorch output
            (``torch_fp64_diff``) and the ONNX output (``onnx_fp64_diff``)
            are from it: when the ONNX output is no farther from the exact
            result than PyTorch's own float32 output, a difference between
            them is float32 rounding noise (deep transformers reach 1e-4).

    Returns:
        list[dict]: per shape ``{'shape', 'output_shape',
        'onnx_output_shape', 'max_abs_output', 'max_abs_diff'}``
        (``max_abs_diff`` is ``inf`` when the output shapes differ), plus
        ``torch_fp64_diff`` and ``onnx_fp64_diff`` with ``fp64_reference``.
    """
    import onnx
    onnx.checker.check_model(onnx_file)
    session = onnx_session(onnx_file)
    input_name = session.get_inputs()[0].name
    wrapper = DeployModel(model).eval()
    reference = None
    if fp64_reference:
        reference = DeployModel(copy.deepcopy(model).double()).eval()
    generator = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        x = torch.rand(
            batch_size, in_channels, *shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = wrapper(x).numpy()
        actual = session.run(None, {input_name: x.numpy()})[0]
        same_shape = actual.shape == expected.shape
        result = dict(
            shape=tuple(shape),
            output_shape=tuple(expected.shape),
            onnx_output_shape=tuple(actual.shape),
            max_abs_output=float(abs(expected).max()),
            max_abs_diff=float(abs(actual - expected).max())
            if same_shape else math.inf)
        if reference is not None and same_shape:
            with torch.no_grad():
                exact = reference(x.double()).numpy()
            result['torch_fp64_diff'] = float(abs(expected - exact).max())
            result['onnx_fp64_diff'] = float(abs(actual - exact).max())
        results.append(result)
    return results


# -- complexity ---------------------------------------------------------------
def static_gmacs(model: nn.Module,
                 shape: Sequence[int],
                 in_channels: int = 3) -> Dict[str, float]:
    """GMACs per image of the (frozen) model at ``shape``.

    Returns ``{'gmacs': ..., 'conv_gmacs': ...}``: ``gmacs`` is mmengine's
    ``FlopAnalyzer`` total (as ``tools/analysis_tools/get_flops.py``; a
    frozen DynOPool counts 4 MACs per bilinear query point, 16 per output
    element), ``conv_gmacs`` the convolution / linear MACs that the GMACs
    budget loss counts.
    """
    from mmengine.analysis import FlopAnalyzer

    from mmdynopool.models.losses import MACsRecorder
    wrapper = DeployModel(deploy_copy(model), resize_logits=False).eval()
    x = torch.rand(1, in_channels, *shape)
    recorder = MACsRecorder(wrapper)
    try:
        with torch.no_grad():
            wrapper(x)
            conv_macs = recorder.macs
            analyzer = FlopAnalyzer(wrapper, (x, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            macs = analyzer.total()
    finally:
        recorder.remove()
    return dict(gmacs=macs / 1e9, conv_gmacs=conv_macs / 1e9)
