"""Caffe's message classes: crema.proto.caffe_pb2 (as caffe.proto.caffe_pb2)."""
from . import caffe_pb2
