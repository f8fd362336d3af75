"""A caffe.io preprocessing chain, checked against the C library's image
pipeline (convert-imageset, then a Data layer's DataTransformer); the only
change for crema is the import.

usage: transformer_chain.py IMAGE DATA_NET   (run where DATA_NET's LMDB is)"""
import sys

import numpy as np
import crema as caffe

image_file, data_net = sys.argv[1:3]

net = caffe.Net(data_net, caffe.TEST)
net.forward()
ref = net.blobs['data'].data[0].copy()
shape = net.blobs['data'].data.shape

transformer = caffe.io.Transformer({'data': shape})
transformer.set_transpose('data', (2, 0, 1))
transformer.set_channel_swap('data', (2, 1, 0))
transformer.set_raw_scale('data', 255)
transformer.set_mean('data', np.array([104, 117, 123]))
transformer.set_input_scale('data', 0.017)

image = caffe.io.load_image(image_file)
assert image.dtype == np.float32 and image.shape == shape[2:] + (3,)
assert 0 <= image.min() and image.max() <= 1
x = transformer.preprocess('data', image.copy())
assert x.dtype == np.float32 and x.shape == shape[1:]
diff = np.abs(x - ref).max()
print('preprocess vs the Data layer: max |diff| %.3g (max |value| %.3g)' % (diff, np.abs(ref).max()))
assert diff <= 1e-4 * np.abs(ref).max()

back = transformer.deprocess('data', x)
assert np.abs(back - image).max() < 1e-5

# The same chain with an elementwise mean image.
mean_image = np.tile(np.array([104.0, 117.0, 123.0])[:, None, None], (1,) + shape[2:])
transformer.set_mean('data', mean_image)
assert np.abs(transformer.preprocess('data', image.copy()) - x).max() < 1e-5

gray = caffe.io.load_image(image_file, color=False)
assert gray.shape == shape[2:] + (1,)
expected = image @ np.array([0.2125, 0.7154, 0.0721])
assert np.abs(gray[:, :, 0] - expected).max() < 1e-5

# Datum and BlobProto round trips.
pixels = np.round(image.transpose(2, 0, 1)[::-1] * 255).astype(np.uint8)
datum = caffe.io.array_to_datum(pixels, 3)
assert datum.label == 3 and np.array_equal(caffe.io.datum_to_array(datum), pixels)
datum = caffe.io.array_to_datum(x.astype(float))
assert np.allclose(caffe.io.datum_to_array(datum), x)
blob = caffe.io.array_to_blobproto(x[np.newaxis])
assert np.array_equal(caffe.io.blobproto_to_array(blob), x[np.newaxis])
vec = caffe.io.arraylist_to_blobprotovector_str([x[np.newaxis], ref[np.newaxis]])
back = caffe.io.blobprotovector_str_to_arraylist(vec)
assert len(back) == 2 and np.array_equal(back[1], ref[np.newaxis])

resized = caffe.io.resize_image(image, (32, 48))
assert resized.shape == (32, 48, 3) and resized.dtype == np.float32
crops = caffe.io.oversample([image], (56, 56))
assert crops.shape == (10, 56, 56, 3)
assert np.array_equal(crops[0], image[:56, :56]) and np.array_equal(crops[5], image[:56, 55::-1])
print('transformer chain ok')
