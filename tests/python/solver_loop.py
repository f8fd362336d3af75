"""A solver step loop that reads the loss from net.blobs, for each of
Caffe's six solvers; the only change for crema is the import.

usage: solver_loop.py GOLDEN_SOLVERS_DIR CASE...   (each CASE a scratch
copy of GOLDEN_SOLVERS_DIR/CASE's solver, net, init weights and LMDB, run
in its directory)

The losses are BVLC Caffe's (trajectory.txt) and the weights after 12
iterations its snapshot, also after restoring the iteration-6 snapshot."""
import os
import sys

import numpy as np
import crema as caffe

golden_dir = sys.argv[1]
cases = sys.argv[2:]
pb = caffe.proto.caffe_pb2
by_type = {'SGD': caffe.SGDSolver, 'Nesterov': caffe.NesterovSolver,
           'AdaGrad': caffe.AdaGradSolver, 'RMSProp': caffe.RMSPropSolver,
           'AdaDelta': caffe.AdaDeltaSolver, 'Adam': caffe.AdamSolver}


def check_weights(net, caffemodel, what):
    model = pb.NetParameter()
    with open(caffemodel, 'rb') as f:
        model.ParseFromString(f.read())
    for layer in model.layer:
        for i, blob in enumerate(layer.blobs):
            ref = caffe.io.blobproto_to_array(blob).reshape(net.params[layer.name][i].data.shape)
            got = net.params[layer.name][i].data
            rel = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
            assert rel <= 1e-4, '%s: %s.%d differs by %.3g' % (what, layer.name, i, rel)


for case in cases:
    os.chdir(case)
    golden = os.path.join(golden_dir, os.path.basename(case.rstrip('/')))
    trajectory = np.loadtxt(os.path.join(golden, 'trajectory.txt'))
    solver = caffe.get_solver('solver.prototxt')
    cls = by_type[solver.type]
    assert type(solver) is cls, (type(solver), cls)
    solver.net.copy_from('init.caffemodel')
    losses = []
    for it in range(12):
        solver.step(1)
        losses.append(float(solver.net.blobs['loss'].data))
    assert solver.iter == 12
    worst = np.abs(np.array(losses) - trajectory[:, 1]).max() / np.abs(trajectory[:, 1]).max()
    print('%-30s %-9s losses %s  max rel diff %.2e' % (case, solver.type,
                                                      ' '.join('%.5f' % l for l in losses), worst))
    assert worst <= 1e-4, case
    check_weights(solver.net, os.path.join(golden, 'snap_iter_12.caffemodel'), case)
    assert os.path.exists('snap_iter_6.solverstate') and os.path.exists('snap_iter_12.caffemodel')

    # Resume from iteration 6 with the solver class named explicitly.
    resumed = cls('solver.prototxt')
    resumed.restore('snap_iter_6.solverstate')
    assert resumed.iter == 6
    resumed.step(6)
    check_weights(resumed.net, os.path.join(golden, 'snap_iter_12.caffemodel'), case + ' resumed')
    os.remove('snap_iter_12.caffemodel')
    resumed.snapshot()
    assert os.path.exists('snap_iter_12.caffemodel')
    del solver, resumed

# solve(): up to max_iter at once, and resuming from a snapshot.
os.chdir(cases[0])
golden = os.path.join(golden_dir, os.path.basename(cases[0].rstrip('/')))
solver = caffe.get_solver('solver.prototxt')
solver.net.copy_from('init.caffemodel')
solver.solve()
assert solver.iter == 12
check_weights(solver.net, os.path.join(golden, 'snap_iter_12.caffemodel'), 'solve')
solver = caffe.get_solver('solver.prototxt')
solver.solve('snap_iter_6.solverstate')
assert solver.iter == 12
check_weights(solver.net, os.path.join(golden, 'snap_iter_12.caffemodel'), 'solve(resume)')
print('solver loops ok')
