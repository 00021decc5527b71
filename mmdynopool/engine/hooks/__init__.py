from .ratio_hook import DynOPoolRatioHook

__all__ = ['DynOPoolRatioHook']
