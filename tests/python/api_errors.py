"""Errors raise Python exceptions with crema's message, and arrays stay
valid as long as Python holds them.

usage: api_errors.py LENET_DEPLOY LENET_WEIGHTS SCRATCH_DIR"""
import gc
import os
import sys

import numpy as np
import crema as caffe

deploy, weights, scratch = sys.argv[1:4]


def raises(exc, needle, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        assert needle in str(e), 'message %r lacks %r' % (str(e), needle)
        return
    raise AssertionError('%s did not raise %s' % (fn, exc.__name__))


assert issubclass(caffe.CremaError, RuntimeError)
raises(caffe.CremaError, 'missing.prototxt', caffe.Net, os.path.join(scratch, 'missing.prototxt'),
       caffe.TEST)
bad = os.path.join(scratch, 'bad.prototxt')
with open(bad, 'w') as f:
    f.write('name: "x"\nlayer { name: "a" type: "Input" top: "a"\n')
raises(caffe.CremaError, 'bad.prototxt:', caffe.Net, bad, caffe.TEST)
with open(bad, 'w') as f:
    f.write('layer { name: "a" type: "NoSuchLayer" top: "a" }\n')
raises(caffe.CremaError, 'NoSuchLayer', caffe.Net, bad, caffe.TEST)
raises(ValueError, 'phase', caffe.Net, deploy, 7)
raises(caffe.CremaError, 'missing.caffemodel', caffe.Net, deploy,
       os.path.join(scratch, 'missing.caffemodel'), caffe.TEST)
raises(caffe.CremaError, 'CPU', caffe.set_mode_gpu)
caffe.set_mode_cpu()

net = caffe.Net(deploy, weights, caffe.TEST)
raises(ValueError, 'nope', net.forward, start='nope')
raises(Exception, 'do not match', net.forward, wrong=np.zeros((2, 1, 28, 28)))
raises(ValueError, 'dimension', net.blobs['data'].reshape, 2, -1, 28, 28)
raises(caffe.CremaError, 'range', net._forward, 5, 2)
raises(IndexError, 'out of range', net._top_ids, 99)
# A bad shape reaches the layers, which refuse it; the net stays usable.
net.blobs['data'].reshape(2, 3, 28, 28)
raises(caffe.CremaError, 'conv1', net.forward)
net.blobs['data'].reshape(2, 1, 28, 28)
net.forward()
assert net.blobs['conv1'].num == 2 and net.blobs['conv1'].channels == 20
assert net.blobs['conv1'].height == 24 and net.blobs['conv1'].count == 2 * 20 * 24 * 24
assert net.blobs['prob'].height == 1 and net.blobs['prob'].width == 1

# set_random_seed makes the fillers of later nets repeat.
caffe.set_random_seed(7)
first = caffe.Net(deploy, caffe.TEST).params['conv1'][0].data.copy()
caffe.set_random_seed(7)
again = caffe.Net(deploy, caffe.TEST).params['conv1'][0].data.copy()
caffe.set_random_seed(8)
other = caffe.Net(deploy, caffe.TEST).params['conv1'][0].data.copy()
assert np.array_equal(first, again) and not np.array_equal(first, other)

# Arrays keep their net alive.
prob = net.blobs['prob'].data
params = net.params['ip2'][0].data
expected = prob.copy()
del net
gc.collect()
assert np.array_equal(prob, expected) and params.shape == (10, 500)
del prob, params

# Solvers: missing files, wrong types; nets outliving the solver object.
raises(caffe.CremaError, 'missing_solver.prototxt', caffe.SGDSolver,
       os.path.join(scratch, 'missing_solver.prototxt'))
solver_file = os.path.join(scratch, 'solver.prototxt')
with open(solver_file, 'w') as f:
    f.write('net: "%s"\ntype: "Fancy"\nbase_lr: 0.1\n' % deploy)
raises(caffe.CremaError, 'Fancy', caffe.get_solver, solver_file)
with open(solver_file, 'w') as f:
    f.write('net: "%s"\nbase_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\n' % deploy)
raises(caffe.CremaError, 'momentum', caffe.AdaGradSolver, solver_file)
solver = caffe.SGDSolver(solver_file)
train_net = solver.net
assert solver.net is train_net and solver.test_nets == [] and solver.iter == 0
raises(ValueError, '>= 0', solver.step, -1)
del solver
gc.collect()
assert train_net.blobs['data'].data.shape == (2, 1, 28, 28)
del train_net

# Many short-lived nets and solvers: reference cycles are collected.
for _ in range(20):
    s = caffe.SGDSolver(solver_file)
    s.net.blobs  # caches a dict of blobs on the net: a cycle through the solver
    n = caffe.Net(deploy, caffe.TEST)
    n.params
    del s, n
gc.collect()
print('api errors ok')
