"""Classify an image with a VGG-16 definition, as pycaffe's classification
example does; the only change for crema is the import.

usage: classify_vgg.py DEPLOY WEIGHTS IMAGE GOLDEN_BLOBS_DIR DUMP_DIR

Checks every blob against BVLC Caffe's (GOLDEN_BLOBS_DIR, tolerance
1e-4 of the largest value), then classifies IMAGE through caffe.io and
saves every blob as DUMP_DIR/<blob>.npy for crema verify."""
import os
import sys

import numpy as np
import crema as caffe

model_def, model_weights, image_file, golden, dump = sys.argv[1:6]

caffe.set_mode_cpu()
net = caffe.Net(model_def,      # defines the structure of the model
                model_weights,  # contains the trained weights
                caffe.TEST)     # use test mode (e.g., don't perform dropout)


def load_blob(name):
    with open(os.path.join(golden, name + '.binaryproto'), 'rb') as f:
        return caffe.io.blobproto_to_array(caffe.proto.caffe_pb2.BlobProto.FromString(f.read()))


# Caffe's own input, and every blob as Caffe computed it.
net.blobs['data'].data[...] = load_blob('data')
output = net.forward()
for name, blob in net.blobs.items():
    if not os.path.exists(os.path.join(golden, name + '.binaryproto')):
        continue
    ref = load_blob(name)
    rel = np.abs(blob.data - ref).max() / np.abs(ref).max()
    print('%-8s %-18s max rel diff %.2e' % (name, blob.data.shape, rel))
    assert rel <= 1e-4, name
assert output['prob'][0].argmax() == load_blob('prob')[0].argmax()
print('golden input: class', output['prob'][0].argmax())

# load the mean ImageNet image (as distributed with Caffe) for subtraction
mu = np.array([103.939, 116.779, 123.68])  # per-channel BGR means
transformer = caffe.io.Transformer({'data': net.blobs['data'].data.shape})
transformer.set_transpose('data', (2, 0, 1))     # move image channels to outermost
transformer.set_mean('data', mu)                 # subtract the dataset-mean value
transformer.set_raw_scale('data', 255)           # rescale from [0, 1] to [0, 255]
transformer.set_channel_swap('data', (2, 1, 0))  # swap channels from RGB to BGR

# set the size of the input (we can skip this if we're happy
# with the default; we can also change it later, e.g., for different batch sizes)
net.blobs['data'].reshape(2,        # batch size
                          3,        # 3-channel (BGR) images
                          64, 64)   # image size
image = caffe.io.load_image(image_file)
transformed_image = transformer.preprocess('data', image)
net.blobs['data'].data[...] = transformed_image
output = net.forward()
output_prob = output['prob'][0]  # the output probability vector for the first image
print('predicted class is:', output_prob.argmax())
top_inds = output_prob.argsort()[::-1][:5]
print('top 5:', list(zip(output_prob[top_inds], top_inds)))
assert output['prob'].shape == (2, 1000)
assert np.array_equal(output['prob'][0], output['prob'][1])

os.makedirs(dump, exist_ok=True)
for name, blob in net.blobs.items():
    np.save(os.path.join(dump, name.replace('/', '%2F') + '.npy'), blob.data)
