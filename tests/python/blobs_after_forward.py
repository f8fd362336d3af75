"""Read blobs after forward, run parts of a net and its backward, as
pycaffe scripts do; the only change for crema is the import.

usage: blobs_after_forward.py DEPLOY WEIGHTS GOLDEN_BLOBS_DIR DUMP_DIR PARAMS_DIR

DEPLOY is LeNet with force_backward.  Every blob is checked against BVLC
Caffe's; the blobs (data and diff) and parameter diffs after backward are
written as BlobProtos for crema verify --backward."""
import os
import sys

import numpy as np
import crema as caffe

model_def, weights, golden, dump, params_dir = sys.argv[1:6]
pb = caffe.proto.caffe_pb2


def load_blob(name):
    with open(os.path.join(golden, name + '.binaryproto'), 'rb') as f:
        return caffe.io.blobproto_to_array(pb.BlobProto.FromString(f.read()))


def check(name, ref):
    got = net.blobs[name].data
    rel = np.abs(got - ref).max() / np.abs(ref).max()
    print('%-6s %-16s max rel diff %.2e' % (name, got.shape, rel))
    assert got.shape == ref.shape and rel <= 1e-4, name


net = caffe.Net(model_def, caffe.TEST, weights=weights)
print([(k, v.data.shape) for k, v in net.blobs.items()])
print([(k, v[0].data.shape, v[1].data.shape) for k, v in net.params.items()])
print([(name, layer.type) for name, layer in net.layer_dict.items()])

data = load_blob('data')
net.blobs['data'].data[...] = data
out = net.forward()
assert list(out) == ['prob']
for name in net.blobs:
    check(name, load_blob(name))

# Part of the net: up to pool1, then the rest from conv2.
net.blobs['conv2'].data[...] = 0
out = net.forward(end='pool1')
assert list(out) == ['pool1']
assert not net.blobs['conv2'].data.any()
out = net.forward(start='conv2')
check('prob', load_blob('prob'))

# Inputs by keyword, extra blobs returned.
out = net.forward(blobs=['ip1'], data=data)
assert sorted(out) == ['ip1', 'prob']

# A batch of one: a view taken before the reshape keeps its old shape,
# a fresh one follows.
old = net.blobs['data'].data
net.blobs['data'].reshape(1, 1, 28, 28)
assert old.shape == (2, 1, 28, 28) and net.blobs['data'].data.shape == (1, 1, 28, 28)
net.blobs['data'].data[...] = data[:1]
net.forward()
assert net.blobs['prob'].data.shape == (1, 10)
assert np.allclose(net.blobs['prob'].data[0], load_blob('prob')[0], rtol=0, atol=1e-6)
net.blobs['data'].reshape(*data.shape)
net.reshape()

# Gradient of each item's top log-probability with respect to the input.
prob = net.forward(data=data)['prob']
top = prob.argmax(1)
seed = np.zeros_like(prob)
seed[np.arange(len(top)), top] = 1.0 / prob[np.arange(len(top)), top]
grads = net.backward(prob=seed)
assert list(grads) == ['data'] and grads['data'].shape == data.shape
assert np.abs(grads['data']).max() > 0
print('input gradient: max |d| = %.3g' % np.abs(grads['data']).max())

os.makedirs(dump, exist_ok=True)
os.makedirs(params_dir, exist_ok=True)
for name, blob in net.blobs.items():
    with open(os.path.join(dump, name + '.binaryproto'), 'wb') as f:
        f.write(caffe.io.array_to_blobproto(blob.data, blob.diff).SerializeToString())
for name, blobs in net.params.items():
    for i, blob in enumerate(blobs):
        with open(os.path.join(params_dir, '%s.%d.binaryproto' % (name, i)), 'wb') as f:
            f.write(caffe.io.array_to_blobproto(blob.data, blob.diff).SerializeToString())
