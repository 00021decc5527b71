"""Registries of the ``mmdynopool`` scope.

Configs inherited through ``mmdynopool::`` get ``_scope_='mmdynopool'``
(mmengine scopes a base by its package), so mmengine looks for registries of
that scope; without them it warns and falls back. Each registry here is a
child of mmseg's (itself a child of mmengine's root), so a build in the
``mmdynopool`` scope finds mmdynopool's modules (registered in the roots),
mmseg's and mmengine's. Modules are not registered here: they stay in the
root registries, where the ``mmseg`` scope and ``default_scope = None`` (the
SR recipes) find them too.
"""
from mmengine.registry import Registry
from mmseg.registry import registry as mmseg_registry

SCOPE = 'mmdynopool'

def _child(attr: str, name: str) -> Registry:
    parent = getattr(mmseg_registry, attr)
    # Re-importing this module (e.g. after importlib.reload) must not add a
    # second child of the same scope: mmengine refuses that.
    existing = parent._children.get(SCOPE)
    if existing is not None:
        return existing
    # mmseg registers its modules lazily, when a build in its scope imports
    # its ``locations``; a build in ours must import them too, or the
    # lookup in the parent misses e.g. SegLocalVisualizer.
    return Registry(name, parent=parent, scope=SCOPE,
                    locations=['mmdynopool', *parent._locations])


# One per mmseg 1.2 registry (21).
RUNNERS = _child('RUNNERS', 'runner')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS', 'runner constructor')
LOOPS = _child('LOOPS', 'loop')
HOOKS = _child('HOOKS', 'hook')
DATASETS = _child('DATASETS', 'dataset')
DATA_SAMPLERS = _child('DATA_SAMPLERS', 'data sampler')
TRANSFORMS = _child('TRANSFORMS', 'transform')
MODELS = _child('MODELS', 'model')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS', 'model_wrapper')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS', 'weight initializer')
OPTIMIZERS = _child('OPTIMIZERS', 'optimizer')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS', 'optim_wrapper')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS',
                                    'optimizer wrapper constructor')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS', 'parameter scheduler')
METRICS = _child('METRICS', 'metric')
EVALUATOR = _child('EVALUATOR', 'evaluator')
TASK_UTILS = _child('TASK_UTILS', 'task util')
VISUALIZERS = _child('VISUALIZERS', 'visualizer')
VISBACKENDS = _child('VISBACKENDS', 'vis_backend')
LOG_PROCESSORS = _child('LOG_PROCESSORS', 'log_processor')
INFERENCERS = _child('INFERENCERS', 'inferencer')
