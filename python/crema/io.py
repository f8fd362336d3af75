"""caffe.io: conversions between arrays and Caffe's messages, image
loading, and the Transformer that prepares images for a net's input.

Semantics follow pycaffe's io module.  Images are decoded by libcrema
(PNG and JPEG); resizing uses scikit-image when it is installed, as
pycaffe does, and a bilinear resize of its own otherwise.
"""
import numpy as np

from . import _crema


def _caffe_pb2():
    from .proto import caffe_pb2
    return caffe_pb2


# ---- BlobProto / Datum <-> ndarray ------------------------------------------

def blobproto_to_array(blob, return_diff=False):
    """The data (or diff) of a BlobProto as an array of its shape; legacy
    num/channels/height/width when those are set."""
    values = np.array(blob.diff if return_diff else blob.data)
    if (blob.HasField('num') or blob.HasField('channels') or
            blob.HasField('height') or blob.HasField('width')):
        return values.reshape(blob.num, blob.channels, blob.height, blob.width)
    return values.reshape(blob.shape.dim)


def array_to_blobproto(arr, diff=None):
    """A BlobProto with arr's shape and values (and diff's, when given)."""
    blob = _caffe_pb2().BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.astype(float).flat)
    if diff is not None:
        blob.diff.extend(diff.astype(float).flat)
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """A serialized BlobProtoVector of the arrays."""
    vec = _caffe_pb2().BlobProtoVector()
    vec.blobs.extend([array_to_blobproto(arr) for arr in arraylist])
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(data):
    """The arrays of a serialized BlobProtoVector."""
    vec = _caffe_pb2().BlobProtoVector()
    vec.ParseFromString(data)
    return [blobproto_to_array(blob) for blob in vec.blobs]


def array_to_datum(arr, label=None):
    """A Datum of a C x H x W array: bytes for uint8 arrays, float_data
    otherwise."""
    if arr.ndim != 3:
        raise ValueError('Incorrect array shape.')
    datum = _caffe_pb2().Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = arr.tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = label
    return datum


def datum_to_array(datum):
    """The C x H x W array of a Datum (uint8 for byte data, float
    otherwise); the label stays in datum.label."""
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(
            datum.channels, datum.height, datum.width)
    return np.array(datum.float_data).astype(float).reshape(
        datum.channels, datum.height, datum.width)


# ---- preprocessing -------------------------------------------------------------

class Transformer:
    """Prepares H x W x K images for a net's inputs.

    inputs: {input name: input shape}, e.g.
    {'data': net.blobs['data'].data.shape}.
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def __check_input(self, in_):
        if in_ not in self.inputs:
            raise Exception('{} is not one of the net inputs: {}'.format(in_, self.inputs))

    def preprocess(self, in_, data):
        """H' x W' x K data -> K x H x W input: float32, resized to the
        input's size, transposed, channels reordered, raw_scale applied,
        mean subtracted, input_scale applied (in that order).  As in
        pycaffe, float32 data may be changed in place."""
        self.__check_input(in_)
        caffe_in = data.astype(np.float32, copy=False)
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        in_dims = self.inputs[in_][2:]
        if caffe_in.shape[:2] != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        if transpose is not None:
            caffe_in = caffe_in.transpose(transpose)
        if channel_swap is not None:
            caffe_in = caffe_in[channel_swap, :, :]
        if raw_scale is not None:
            caffe_in *= raw_scale
        if mean is not None:
            caffe_in -= mean
        if input_scale is not None:
            caffe_in *= input_scale
        return caffe_in

    def deprocess(self, in_, data):
        """The inverse of preprocess (without the resize)."""
        self.__check_input(in_)
        decaf_in = data.copy().squeeze()
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if input_scale is not None:
            decaf_in /= input_scale
        if mean is not None:
            decaf_in += mean
        if raw_scale is not None:
            decaf_in /= raw_scale
        if channel_swap is not None:
            decaf_in = decaf_in[np.argsort(channel_swap), :, :]
        if transpose is not None:
            decaf_in = decaf_in.transpose(np.argsort(transpose))
        return decaf_in

    def set_transpose(self, in_, order):
        """Order of the axes after preprocessing, e.g. (2, 0, 1) for
        H x W x K images."""
        self.__check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise Exception('Transpose order needs to have the same number of '
                            'dimensions as the input.')
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """Channel order (after the transpose), e.g. (2, 1, 0) for RGB to
        BGR."""
        self.__check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise Exception('Channel swap needs to have the same number of '
                            'dimensions as the input channels.')
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Factor applied before the mean, e.g. 255 for images in [0, 1]
        and models trained on [0, 255]."""
        self.__check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Mean to subtract: one value per channel (1-D) or K x H x W."""
        self.__check_input(in_)
        ms = mean.shape
        if mean.ndim == 1:
            if ms[0] != self.inputs[in_][1]:
                raise ValueError('Mean channels incompatible with input.')
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if len(ms) == 2:
                ms = (1,) + ms
            if len(ms) != 3:
                raise ValueError('Mean shape invalid')
            if ms != tuple(self.inputs[in_][1:]):
                raise ValueError('Mean shape incompatible with input shape.')
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Factor applied after the mean subtraction."""
        self.__check_input(in_)
        self.input_scale[in_] = scale


# ---- images --------------------------------------------------------------------

_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])  # scikit-image's rgb2gray


def load_image(filename, color=True):
    """An image as float32 in [0, 1], H x W x 3 (RGB) or, with
    color=False, H x W x 1 (intensity)."""
    pixels = _crema.read_image(filename, 0)
    img = pixels.astype(np.float64) / 255.0
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if not color and img.shape[2] == 3:
        img = img @ _GRAY_WEIGHTS
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
    if color and img.shape[2] == 1:
        img = np.tile(img, (1, 1, 3))
    return img


def _bilinear(im, new_dims):
    """Bilinear resize of H x W x K with pixel centres aligned (as
    OpenCV's INTER_LINEAR), edges clamped."""
    h, w = im.shape[:2]
    nh, nw = int(new_dims[0]), int(new_dims[1])

    def axis(n_out, n_in):
        x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        x = np.clip(x, 0, n_in - 1)
        lo = np.floor(x).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, x - lo

    y0, y1, fy = axis(nh, h)
    x0, x1, fx = axis(nw, w)
    fy = fy[:, None, None]
    fx = fx[None, :, None]
    top = im[y0][:, x0] * (1 - fx) + im[y0][:, x1] * fx
    bottom = im[y1][:, x0] * (1 - fx) + im[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def resize_image(im, new_dims, interp_order=1):
    """Resize H x W x K to new_dims (height, width), keeping K."""
    try:
        from skimage.transform import resize as _skresize
    except ImportError:
        _skresize = None
    im_min, im_max = im.min(), im.max()
    if im_max == im_min:
        ret = np.empty((new_dims[0], new_dims[1], im.shape[-1]), dtype=np.float32)
        ret.fill(im_min)
        return ret
    if _skresize is not None and im.shape[-1] in (1, 3):
        im_std = (im - im_min) / (im_max - im_min)
        resized = _skresize(im_std, new_dims, order=interp_order, mode='constant')
        return (resized * (im_max - im_min) + im_min).astype(np.float32)
    if interp_order != 1:
        raise NotImplementedError('resize_image: only interp_order=1 without scikit-image')
    return _bilinear(np.asarray(im, dtype=np.float64), new_dims).astype(np.float32)


def oversample(images, crop_dims):
    """The four corner crops and the centre crop of each image, and their
    mirrors: (10 * N) x H x W x K."""
    im_shape = np.array(images[0].shape)
    crop_dims = np.array(crop_dims)
    im_center = im_shape[:2] / 2.0
    corners = [(i, j, i + crop_dims[0], j + crop_dims[1])
               for i in (0, im_shape[0] - crop_dims[0])
               for j in (0, im_shape[1] - crop_dims[1])]
    centre = np.concatenate([im_center - crop_dims / 2.0, im_center + crop_dims / 2.0])
    boxes = np.array(corners + [centre]).astype(int)
    crops = np.empty((10 * len(images), crop_dims[0], crop_dims[1], im_shape[-1]),
                     dtype=np.float32)
    ix = 0
    for im in images:
        for y0, x0, y1, x1 in boxes:
            crops[ix] = im[y0:y1, x0:x1, :]
            ix += 1
        crops[ix:ix + 5] = crops[ix - 5:ix, :, ::-1, :]
        ix += 5
    return crops
