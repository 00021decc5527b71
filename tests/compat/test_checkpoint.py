"""mmengine checkpoints load under torch>=2.6's weights_only default."""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmdynopool import DynOPool
from mmdynopool.compat.checkpoint import history_buffer_getattr


class TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.pool = DynOPool((0.5, 0.75))
        self.head = nn.Conv2d(1, 1, 1)

    def forward(self, image, mode='tensor'):
        image = torch.stack(image) if isinstance(image, list) else image
        out = self.head(self.pool(image))
        return {'loss': out.square().mean()} if mode == 'loss' else out


class Images(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(image=torch.randn(1, 8, 8))


def train_tiny(work_dir, max_iters=4, **kwargs):
    runner = Runner(
        model=TinyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Images(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.5)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        **kwargs)
    runner.train()
    return runner


def test_plain_torch_load_of_mmengine_checkpoint(tmp_path):
    runner = train_tiny(tmp_path)
    checkpoint = torch.load(tmp_path / 'iter_4.pth')  # weights_only default
    assert isinstance(checkpoint['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    alpha = checkpoint['state_dict']['pool.alpha']
    assert torch.equal(alpha, runner.model.pool.alpha.detach())


def test_resume_and_load_from_restore_alpha(tmp_path):
    first = train_tiny(tmp_path / 'a', max_iters=4)
    resumed = train_tiny(tmp_path / 'a', max_iters=6, resume=True)
    assert resumed.iter == 6
    loaded = Runner(
        model=TinyModel(), work_dir=str(tmp_path / 'b'),
        load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    loaded.load_or_resume()
    assert torch.equal(loaded.model.pool.alpha,
                       torch.load(tmp_path / 'a' / 'iter_4.pth')
                       ['state_dict']['pool.alpha'])
    assert not torch.equal(first.model.pool.alpha.detach(),
                           torch.tensor([2.0, 4 / 3]))  # alpha did learn


class Sneaky:
    """Pickles as getattr(HistoryBuffer, '__init__'): a method outside the
    statistics allow-list."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_other_getattr_references_are_refused(tmp_path):
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refuses getattr'):
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError):
        history_buffer_getattr(torch, 'load')


@pytest.mark.parametrize('version, pairs', [('2.5.0', False),
                                             ('2.5.1+cu121', False),
                                             ('2.6.0', True),
                                             ('2.13.0+cpu', True)])
def test_getattr_pairs_only_where_torch_takes_them(monkeypatch, version,
                                                   pairs):
    """torch 2.5 (a user's CUDA build, say) has add_safe_globals but not the
    ``(callable, name)`` pairs: registering one would break every
    ``weights_only=True`` load in that process."""
    from mmdynopool.compat import checkpoint
    registered = []
    monkeypatch.setattr(torch, '__version__', version)
    monkeypatch.setattr(torch.serialization, 'add_safe_globals',
                        registered.extend)
    checkpoint.allow_mmengine_checkpoints()
    assert HistoryBuffer in registered
    assert any(isinstance(g, tuple) for g in registered) == pairs
