"""tools/analysis_tools/gpu_check.sh on a machine without a GPU."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh')


def test_script_parses():
    assert subprocess.run(['bash', '-n', SCRIPT]).returncode == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_without_cuda_it_says_so_and_runs_nothing(tmp_path):
    proc = subprocess.run(['bash', SCRIPT, str(tmp_path / 'logs')],
                          env=dict(PYTHON=sys.executable, PATH='/usr/bin:/bin'),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    assert 'no CUDA device' in proc.stderr
    assert not (tmp_path / 'logs').exists()
