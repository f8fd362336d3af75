"""Train LeNet from a trained model after surgery on its parameters, as
pycaffe's LeNet notebook does; the only change for crema is the import.

usage: lenet_surgery.py SOLVER DEPLOY WEIGHTS OUT_DIR   (run where the
solver's net and data are)

Writes OUT_DIR/surgery.caffemodel (the weights training starts from),
OUT_DIR/train_loss.txt (the loss of each iteration) and
OUT_DIR/trained.caffemodel, for comparison with crema train."""
import os
import sys

import numpy as np
import crema as caffe

solver_file, deploy, weights, out_dir = sys.argv[1:5]
os.makedirs(out_dir, exist_ok=True)

caffe.set_mode_cpu()
solver = caffe.SGDSolver(solver_file)

# each output is (batch size, feature dim, spatial dim)
print([(k, v.data.shape) for k, v in solver.net.blobs.items()])
# just print the weight sizes (we'll omit the biases)
print([(k, v[0].data.shape) for k, v in solver.net.params.items()])

# Net surgery: start from the trained LeNet, keep only half of conv1's
# filters and halve the classifier's weights.
trained = caffe.Net(deploy, weights, caffe.TEST)
for name, blobs in trained.params.items():
    for i, blob in enumerate(blobs):
        solver.net.params[name][i].data[...] = blob.data
solver.net.params['conv1'][0].data[10:] = 0
solver.net.params['conv1'][1].data[10:] = 0
solver.net.params['ip2'][0].data[...] *= 0.5
assert not solver.net.params['conv1'][0].data[10:].any()
solver.net.save(os.path.join(out_dir, 'surgery.caffemodel'))

# (the notebook also runs solver.net.forward() here, which would make this
# run read its batches one step ahead of crema train's)
solver.test_nets[0].forward()  # test net (there can be more than one)

niter = 10
test_interval = 5
train_loss = np.zeros(niter)
test_acc = np.zeros(int(np.ceil(niter / test_interval)))
output = np.zeros((niter, 4, 10))
for it in range(niter):
    solver.step(1)  # SGD by Caffe
    # store the train loss
    train_loss[it] = solver.net.blobs['loss'].data
    # store the output on the first test batch
    # (start the forward pass at conv1 to avoid loading new data)
    solver.test_nets[0].forward(start='conv1')
    output[it] = solver.test_nets[0].blobs['ip2'].data[:4]
    # run a full test every so often
    if it % test_interval == 0:
        correct = 0
        for test_it in range(2):
            solver.test_nets[0].forward()
            correct += sum(solver.test_nets[0].blobs['ip2'].data.argmax(1)
                           == solver.test_nets[0].blobs['label'].data)
        test_acc[it // test_interval] = correct / 8
print('iter', solver.iter, 'train loss', train_loss)
print('test accuracy', test_acc)
assert solver.iter == niter
# The test net shares the train net's weights (since the first test).
assert np.array_equal(solver.test_nets[0].params['ip1'][0].data,
                      solver.net.params['ip1'][0].data)
np.savetxt(os.path.join(out_dir, 'train_loss.txt'), train_loss, fmt='%.9g')
solver.net.save(os.path.join(out_dir, 'trained.caffemodel'))
