from .dynopool_encoder_decoder import DynOPoolEncoderDecoder

__all__ = ['DynOPoolEncoderDecoder']
