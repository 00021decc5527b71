# SR study: the DynOPool tail with mean instead of max aggregation (the
# recipe otherwise): at r = 2 a cell covers half an input pixel, and the
# mean of its samples is a bilinear-like upsampling, the max is not.
_base_ = ['../edsr-dynopool_x2c32b4_1xb8-600iter_skimage.py']
model = dict(generator=dict(aggregation='avg'))
