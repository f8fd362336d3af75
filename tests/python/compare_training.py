"""Compares a pycaffe-style training run with crema train's: the losses
(the script's list against the log's "Iteration N ... loss = X" lines)
and the final weights, within 1e-4 of the largest value of each blob.

usage: compare_training.py PY_LOSSES CREMA_LOG PY_CAFFEMODEL CREMA_CAFFEMODEL"""
import re
import sys

import numpy as np
from crema.proto import caffe_pb2

py_losses, log, py_model, c_model = sys.argv[1:5]
ours = np.loadtxt(py_losses)
theirs = {}
with open(log) as f:
    for line in f:
        m = re.search(r'Iteration (\d+) \(.*\), loss = (\S+)', line)
        if m:
            theirs[int(m.group(1))] = float(m.group(2))
c = np.array([theirs[i] for i in range(len(ours))])
rel = np.abs(ours - c).max() / np.abs(c).max()
print('losses: python %s\n        crema  %s\n        max rel diff %.2e' % (ours, c, rel))
assert rel <= 1e-4


def blobs(path):
    m = caffe_pb2.NetParameter()
    with open(path, 'rb') as f:
        m.ParseFromString(f.read())
    return {(l.name, i): np.array(b.data) for l in m.layer for i, b in enumerate(l.blobs)}


a, b = blobs(py_model), blobs(c_model)
assert a.keys() == b.keys() and a, (sorted(a), sorted(b))
for key in sorted(a):
    rel = np.abs(a[key] - b[key]).max() / max(np.abs(b[key]).max(), 1e-30)
    print('%s.%d max rel diff %.2e' % (key[0], key[1], rel))
    assert rel <= 1e-4, key
print('training matches crema train')
