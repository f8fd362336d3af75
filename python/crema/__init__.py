"""crema for Python: pycaffe's interface over libcrema.

Scripts written for pycaffe run with one change::

    import crema as caffe

Net, the solvers, caffe.io and caffe.proto behave as pycaffe's; crema runs
on the CPU only.  Errors raise CremaError (a RuntimeError) with crema's
message.
"""
import importlib

from ._crema import (Blob, CremaError, Layer, TEST, TRAIN, __version__,
                     set_random_seed)
from .pycaffe import (AdaDeltaSolver, AdaGradSolver, AdamSolver,
                      NesterovSolver, Net, RMSPropSolver, SGDSolver, Solver,
                      get_solver)
from . import io


def set_mode_cpu():
    """crema always runs on the CPU."""


def set_mode_gpu():
    raise CremaError('crema runs on the CPU only: call set_mode_cpu()')


def set_device(device_id):
    raise CremaError('crema runs on the CPU only: there is no device %r to select'
                     % (device_id,))


def __getattr__(name):
    # caffe.proto needs python3-protobuf; it is loaded on first use so that
    # the rest of the module works without it.
    if name == 'proto':
        return importlib.import_module('.proto', __name__)
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
