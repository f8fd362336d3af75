"""The message and enum classes of caffe.proto.

The descriptor comes from the build (protoc-c writes caffe.desc, a
FileDescriptorSet of caffe.proto and its imports); the classes are made
from it at import, as the module protoc --python_out generates makes
them from the descriptor it embeds.  So no protobuf compiler is needed.
"""
import os

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.internal import builder as _builder


def _load_descriptor():
    pool = descriptor_pool.Default()
    try:
        # Already there (another copy of caffe.proto was loaded): share it.
        return pool.FindFileByName('caffe.proto')
    except KeyError:
        pass
    files = descriptor_pb2.FileDescriptorSet()
    path = os.path.join(os.path.dirname(__file__), 'caffe.desc')
    with open(path, 'rb') as f:
        files.ParseFromString(f.read())
    for proto in files.file:
        try:
            pool.FindFileByName(proto.name)
        except KeyError:
            pool.Add(proto)
    return pool.FindFileByName('caffe.proto')


DESCRIPTOR = _load_descriptor()
_builder.BuildMessageAndEnumDescriptors(DESCRIPTOR, globals())
_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'caffe_pb2', globals())
