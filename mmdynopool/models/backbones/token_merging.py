"""Patch merging on tokens (Swin): stride 1 plus a DynOPool on the map.

mmseg's ``PatchMerging`` takes tokens ``(B, H*W, C)`` and their ``(H, W)``,
gathers each ``k x k`` patch with an ``nn.Unfold`` of stride ``k`` and maps
it to ``C_out`` channels with a linear layer. Converted, the unfold runs at
stride 1 on a map padded by ``k - 1`` at the bottom / right (every pixel
gets the patch it starts, so the map keeps its size) and a DynOPool at
``1/k`` resizes the merged map, given back as tokens with its new size.
The linear layer is unchanged (same parameters), it runs at ``k^2`` times
the tokens at the initial ratio.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .surgery import ATTACHED_NAME

POSITION = 'tokens'


def is_patch_merging(module: nn.Module) -> bool:
    return type(module).__name__ == 'PatchMerging' and isinstance(
        getattr(module, 'sampler', None), nn.Unfold)


def _pad_bottom_right(sampler: nn.Unfold, args: tuple) -> tuple:
    (kh, kw), (dh, dw) = sampler.kernel_size, sampler.dilation
    return (F.pad(args[0], (0, dw * (kw - 1), 0, dh * (kh - 1))), )


def _resize_tokens(host: nn.Module, args: tuple, output: tuple) -> tuple:
    tokens, (out_h, out_w) = output
    # mmseg computes the size for an unpadded stride-1 unfold; the padding
    # above gives back the (k - 1) rows and columns.
    (kh, kw), (dh, dw) = host.sampler.kernel_size, host.sampler.dilation
    h, w = out_h + dh * (kh - 1), out_w + dw * (kw - 1)
    b, _, c = tokens.shape
    # contiguous: the view of the transposed tokens is channels-last
    x = tokens.transpose(1, 2).reshape(b, c, h, w).contiguous()
    x = getattr(host, ATTACHED_NAME)(x)
    size = (x.shape[2], x.shape[3])  # symbolic while exporting
    if torch.jit.is_tracing():  # the tracer's 0-d tensors: views need ints
        size = (int(size[0]), int(size[1]))
    return x.flatten(2).transpose(1, 2), size


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def convert_patch_merging(root: nn.Module, host: str,
                          dynopool: nn.Module) -> str:
    """Stride 1 for ``root.<host>`` (a PatchMerging) and ``dynopool`` on its
    merged map; returns the DynOPool's dotted name."""
    module = root.get_submodule(host)
    if not is_patch_merging(module):
        raise TypeError(f'{host} is a {type(module).__name__}, not a '
                        "PatchMerging with an nn.Unfold: position 'tokens' "
                        'is for those only')
    sampler = module.sampler
    if _pair(sampler.padding) != (0, 0):
        raise ValueError(f'{host}: its unfold pads by {sampler.padding}; '
                         'only unpadded patch merging is converted')
    sampler.kernel_size = _pair(sampler.kernel_size)
    sampler.dilation = _pair(sampler.dilation)
    sampler.padding = (0, 0)
    sampler.stride = (1, 1)
    sampler.register_forward_pre_hook(_pad_bottom_right)
    module.add_module(ATTACHED_NAME, dynopool)
    module.register_forward_hook(_resize_tokens)
    return f'{host}.{ATTACHED_NAME}'


def merging_stride(module: nn.Module):
    """``(s_h, s_w)`` of a PatchMerging's unfold."""
    return _pair(module.sampler.stride)
