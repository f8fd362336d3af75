/* _crema: the CPython side of the pycaffe-compatible module, over the
 * public API of libcrema (crema.h) only.
 *
 * Net, Blob, Layer and Solver follow pycaffe's _caffe: a Blob's .data and
 * .diff are float32 numpy arrays made afresh on every access, viewing the
 * blob's memory (so they follow reshapes as pycaffe's do); every array
 * holds its Blob, every Blob its Net, and a solver's nets their Solver, so
 * memory stays valid while Python can reach it.  Errors become CremaError
 * (a RuntimeError) carrying crema's message. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <limits.h>
#include <string.h>

#include "crema.h"

#define MAX_AXES 32

static PyObject *CremaError;

/* The class of the nets a Solver hands out: the package's Net (a Python
 * subclass adding pycaffe's dictionaries and forward/backward). */
static PyTypeObject *net_class;

/* Caffe::set_random_seed: applies to the nets and solvers made after it. */
static int have_seed;
static unsigned random_seed;

static PyObject *raise_crema(const crema_error *err) {
  PyErr_SetString(CremaError, err->message[0] ? err->message : crema_status_name(err->status));
  return NULL;
}

/* ---- Net ------------------------------------------------------------------ */

typedef struct {
  PyObject_HEAD
  crema_net *net;
  PyObject *owner; /* the Solver owning net, or NULL when the Net owns it */
  PyObject *dict;
  PyObject *weakrefs;
} NetObject;

typedef struct {
  PyObject_HEAD
  NetObject *net;
  crema_blob *blob;
  PyObject *weakrefs;
} BlobObject;

typedef struct {
  PyObject_HEAD
  NetObject *net;
  int index;
  PyObject *dict;
} LayerObject;

static PyTypeObject NetType, BlobType, LayerType, SolverType;

static PyObject *new_blob(NetObject *net, crema_blob *b) {
  BlobObject *o = PyObject_GC_New(BlobObject, &BlobType);
  if (!o)
    return NULL;
  Py_INCREF(net);
  o->net = net;
  o->blob = b;
  o->weakrefs = NULL;
  PyObject_GC_Track(o);
  return (PyObject *)o;
}

static PyObject *new_layer(NetObject *net, int index) {
  LayerObject *o = PyObject_GC_New(LayerObject, &LayerType);
  if (!o)
    return NULL;
  Py_INCREF(net);
  o->net = net;
  o->index = index;
  o->dict = NULL;
  PyObject_GC_Track(o);
  return (PyObject *)o;
}

static NetObject *wrap_net(PyTypeObject *type, crema_net *net, PyObject *owner) {
  NetObject *o = (NetObject *)type->tp_alloc(type, 0);
  if (!o)
    return NULL;
  o->net = net;
  Py_XINCREF(owner);
  o->owner = owner;
  return o;
}

static int check_net(const NetObject *self) {
  if (self->net)
    return 0;
  PyErr_SetString(CremaError, "the Net was not initialised");
  return -1;
}

static int parse_phase(PyObject *obj, crema_phase *out) {
  long v = PyLong_AsLong(obj);
  if (v == -1 && PyErr_Occurred())
    return -1;
  if (v != CREMA_TRAIN && v != CREMA_TEST) {
    PyErr_Format(PyExc_ValueError, "phase must be TRAIN (0) or TEST (1), got %ld", v);
    return -1;
  }
  *out = (crema_phase)v;
  return 0;
}

/* Net(network_file, phase, level=0, stages=None, weights=None), and the
 * older Net(network_file, weights, phase). */
static int Net_init(NetObject *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"network_file", "phase", "level", "stages", "weights", NULL};
  PyObject *file = NULL, *second = NULL, *third = NULL, *stages = Py_None, *weights = Py_None;
  int level = 0;
  if (self->net) {
    PyErr_SetString(CremaError, "Net.__init__ called twice");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O|OOO:Net", kwlist, PyUnicode_FSConverter,
                                   &file, &second, &third, &stages, &weights))
    return -1;
  PyObject *weights_bytes = NULL, *stage_list = NULL;
  const char **stage_names = NULL;
  int rc = -1;
  crema_net_config cfg;
  crema_net_config_init(&cfg, CREMA_TEST);
  if (!PyLong_Check(second)) {
    /* Net(network_file, weights, phase): weights a str or path */
    if (!third || weights != Py_None) {
      PyErr_SetString(PyExc_TypeError, "Net(network_file, weights, phase): phase missing");
      goto done;
    }
    weights = second;
    if (parse_phase(third, &cfg.phase) < 0)
      goto done;
  } else {
    if (parse_phase(second, &cfg.phase) < 0)
      goto done;
    if (third) {
      long v = PyLong_AsLong(third);
      if (v == -1 && PyErr_Occurred())
        goto done;
      if (v < INT_MIN || v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "level out of range");
        goto done;
      }
      level = (int)v;
    }
  }
  cfg.level = level;
  if (weights != Py_None && !PyUnicode_FSConverter(weights, &weights_bytes))
    goto done;
  if (stages != Py_None) {
    if (!(stage_list = PySequence_Fast(stages, "stages must be a list of strings")))
      goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(stage_list);
    if (n > 0 && !(stage_names = PyMem_Calloc((size_t)n, sizeof *stage_names))) {
      PyErr_NoMemory();
      goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
      if (!(stage_names[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(stage_list, i))))
        goto done;
    cfg.stages = stage_names;
    cfg.nstages = (int)n;
  }
  cfg.has_seed = have_seed;
  cfg.seed = random_seed;
  cfg.observable = 1;
  crema_error err = {0};
  crema_net *net = NULL;
  if (crema_net_open_config(PyBytes_AS_STRING(file),
                            weights_bytes ? PyBytes_AS_STRING(weights_bytes) : NULL, &cfg, &net,
                            &err) != CREMA_OK) {
    raise_crema(&err);
    goto done;
  }
  self->net = net;
  rc = 0;
done:
  PyMem_Free(stage_names);
  Py_XDECREF(stage_list);
  Py_XDECREF(weights_bytes);
  Py_XDECREF(file);
  return rc;
}

static int Net_traverse(NetObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->owner);
  Py_VISIT(self->dict);
  return 0;
}

static int Net_clear(NetObject *self) {
  Py_CLEAR(self->dict);
  return 0;
}

static void Net_dealloc(NetObject *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakrefs)
    PyObject_ClearWeakRefs((PyObject *)self);
  Net_clear(self);
  /* A solver's nets (and their handles) are freed by the solver. */
  if (!self->owner)
    crema_net_close(self->net);
  Py_CLEAR(self->owner);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A list of n items made by item(ctx, i); NULL (error set) when one fails. */
static PyObject *make_list(int n, PyObject *(*item)(void *ctx, int i), void *ctx) {
  PyObject *list = PyList_New(n);
  for (int i = 0; list && i < n; i++) {
    PyObject *v = item(ctx, i);
    if (!v) {
      Py_CLEAR(list);
      break;
    }
    PyList_SET_ITEM(list, i, v);
  }
  return list;
}

static PyObject *blob_item(void *net, int i) {
  return new_blob(net, crema_net_blob(((NetObject *)net)->net, i));
}

static PyObject *blob_name_item(void *net, int i) {
  return PyUnicode_FromString(crema_net_blob_name(((NetObject *)net)->net, i));
}

static PyObject *loss_weight_item(void *net, int i) {
  return PyFloat_FromDouble(crema_net_blob_loss_weight(((NetObject *)net)->net, i));
}

static PyObject *layer_item(void *net, int i) { return new_layer(net, i); }

static PyObject *layer_name_item(void *net, int i) {
  return PyUnicode_FromString(crema_net_layer_name(((NetObject *)net)->net, i));
}

/* Indices of the input and output blobs among the net's blobs. */
static PyObject *input_item(void *net, int i) {
  const crema_net *n = ((NetObject *)net)->net;
  return PyLong_FromLong(crema_net_blob_index(n, crema_net_input_name(n, i)));
}

static PyObject *output_item(void *net, int i) {
  const crema_net *n = ((NetObject *)net)->net;
  return PyLong_FromLong(crema_net_blob_index(n, crema_net_output_name(n, i)));
}

static PyObject *Net_get_blobs(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_blobs(self->net), blob_item, self);
}

static PyObject *Net_get_blob_names(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_blobs(self->net), blob_name_item, self);
}

static PyObject *Net_get_layer_names(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_layers(self->net), layer_name_item, self);
}

static PyObject *Net_get_layers(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_layers(self->net), layer_item, self);
}

static PyObject *Net_get_inputs(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_inputs(self->net), input_item, self);
}

static PyObject *Net_get_outputs(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_outputs(self->net), output_item, self);
}

static PyObject *Net_get_loss_weights(NetObject *self, void *closure) {
  if (check_net(self) < 0)
    return NULL;
  return make_list(crema_net_num_blobs(self->net), loss_weight_item, self);
}

static int layer_arg(NetObject *self, PyObject *arg, int *out) {
  if (check_net(self) < 0)
    return -1;
  long i = PyLong_AsLong(arg);
  if (i == -1 && PyErr_Occurred())
    return -1;
  if (i < 0 || i >= crema_net_num_layers(self->net)) {
    PyErr_Format(PyExc_IndexError, "layer index %ld out of range", i);
    return -1;
  }
  *out = (int)i;
  return 0;
}

/* A layer's bottom or top blob indices. */
typedef struct {
  const crema_net *net;
  int layer;
  int (*index)(const crema_net *, int, int);
} layer_blobs;

static PyObject *layer_blob_item(void *ctx, int j) {
  const layer_blobs *lb = ctx;
  return PyLong_FromLong(lb->index(lb->net, lb->layer, j));
}

static PyObject *Net_top_ids(NetObject *self, PyObject *arg) {
  layer_blobs lb = {self->net, 0, crema_net_layer_top};
  if (layer_arg(self, arg, &lb.layer) < 0)
    return NULL;
  return make_list(crema_net_layer_num_tops(self->net, lb.layer), layer_blob_item, &lb);
}

static PyObject *Net_bottom_ids(NetObject *self, PyObject *arg) {
  layer_blobs lb = {self->net, 0, crema_net_layer_bottom};
  if (layer_arg(self, arg, &lb.layer) < 0)
    return NULL;
  return make_list(crema_net_layer_num_bottoms(self->net, lb.layer), layer_blob_item, &lb);
}

static PyObject *Net_forward_range(NetObject *self, PyObject *args) {
  int start, end;
  if (check_net(self) < 0 || !PyArg_ParseTuple(args, "ii:_forward", &start, &end))
    return NULL;
  crema_error err = {0};
  float loss = 0;
  if (crema_net_forward_range(self->net, start, end, &loss, &err) != CREMA_OK)
    return raise_crema(&err);
  return PyFloat_FromDouble(loss);
}

static PyObject *Net_backward_range(NetObject *self, PyObject *args) {
  int start, end;
  if (check_net(self) < 0 || !PyArg_ParseTuple(args, "ii:_backward", &start, &end))
    return NULL;
  crema_error err = {0};
  if (crema_net_backward_range(self->net, start, end, &err) != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyObject *Net_reshape(NetObject *self, PyObject *unused) {
  if (check_net(self) < 0)
    return NULL;
  crema_error err = {0};
  if (crema_net_reshape(self->net, &err) != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyObject *Net_clear_param_diffs(NetObject *self, PyObject *unused) {
  if (check_net(self) < 0)
    return NULL;
  crema_net_clear_param_diffs(self->net);
  Py_RETURN_NONE;
}

/* A call taking one path: copy_from, save. */
static PyObject *with_path(NetObject *self, PyObject *arg,
                           crema_status (*fn)(crema_net *, const char *, crema_error *)) {
  PyObject *path = NULL;
  if (check_net(self) < 0 || !PyUnicode_FSConverter(arg, &path))
    return NULL;
  crema_error err = {0};
  crema_status st = fn(self->net, PyBytes_AS_STRING(path), &err);
  Py_DECREF(path);
  if (st != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static crema_status save_net(crema_net *net, const char *path, crema_error *err) {
  return crema_net_save(net, path, err);
}

static PyObject *Net_copy_from(NetObject *self, PyObject *arg) {
  return with_path(self, arg, crema_net_copy_from);
}

static PyObject *Net_save(NetObject *self, PyObject *arg) { return with_path(self, arg, save_net); }

static PyMethodDef Net_methods[] = {
    {"_forward", (PyCFunction)Net_forward_range, METH_VARARGS,
     "_forward(start, end): layers start..end (inclusive); returns their loss"},
    {"_backward", (PyCFunction)Net_backward_range, METH_VARARGS,
     "_backward(start, end): backward from layer start down to end"},
    {"_top_ids", (PyCFunction)Net_top_ids, METH_O, "blob indices of a layer's tops"},
    {"_bottom_ids", (PyCFunction)Net_bottom_ids, METH_O, "blob indices of a layer's bottoms"},
    {"reshape", (PyCFunction)Net_reshape, METH_NOARGS, "propagate input shapes through the net"},
    {"clear_param_diffs", (PyCFunction)Net_clear_param_diffs, METH_NOARGS,
     "zero the parameter gradients"},
    {"copy_from", (PyCFunction)Net_copy_from, METH_O,
     "copy_from(path): load a .caffemodel's weights (layers matched by name)"},
    {"save", (PyCFunction)Net_save, METH_O, "save(path): write the weights as a .caffemodel"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Net_getset[] = {
    {"_blobs", (getter)Net_get_blobs, NULL, "the blobs, in order", NULL},
    {"_blob_names", (getter)Net_get_blob_names, NULL, "blob names, in order", NULL},
    {"_blob_loss_weights", (getter)Net_get_loss_weights, NULL, "loss weight of each blob", NULL},
    {"layers", (getter)Net_get_layers, NULL, "the layers, in order", NULL},
    {"_layer_names", (getter)Net_get_layer_names, NULL, "layer names, in order", NULL},
    {"_inputs", (getter)Net_get_inputs, NULL, "blob indices of the inputs", NULL},
    {"_outputs", (getter)Net_get_outputs, NULL, "blob indices of the outputs", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject NetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crema._crema.Net",
    .tp_basicsize = sizeof(NetObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Net(network_file, phase, level=0, stages=None, weights=None)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Net_init,
    .tp_dealloc = (destructor)Net_dealloc,
    .tp_traverse = (traverseproc)Net_traverse,
    .tp_clear = (inquiry)Net_clear,
    .tp_dictoffset = offsetof(NetObject, dict),
    .tp_weaklistoffset = offsetof(NetObject, weakrefs),
    .tp_methods = Net_methods,
    .tp_getset = Net_getset,
};

/* ---- Blob ----------------------------------------------------------------- */

static int Blob_traverse(BlobObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->net);
  return 0;
}

static int Blob_clear(BlobObject *self) {
  Py_CLEAR(self->net);
  return 0;
}

static void Blob_dealloc(BlobObject *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakrefs)
    PyObject_ClearWeakRefs((PyObject *)self);
  Blob_clear(self);
  PyObject_GC_Del(self);
}

static int check_blob(const BlobObject *self) {
  if (self->net)
    return 0;
  PyErr_SetString(CremaError, "the blob's net is gone");
  return -1;
}

/* A fresh float32 view of count floats at p in the blob's current shape;
 * the array keeps the Blob (and so the net) alive. */
static PyObject *view(BlobObject *self, float *p) {
  int dims[MAX_AXES];
  int n = crema_blob_shape(self->blob, dims, MAX_AXES);
  if (n > MAX_AXES) {
    PyErr_Format(CremaError, "blob has %d axes (at most %d viewable)", n, MAX_AXES);
    return NULL;
  }
  npy_intp shape[MAX_AXES];
  for (int i = 0; i < n; i++)
    shape[i] = dims[i];
  PyObject *arr = PyArray_SimpleNewFromData(n, shape, NPY_FLOAT32, p);
  if (!arr)
    return NULL;
  Py_INCREF(self);
  if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
    Py_DECREF(arr);
    return NULL;
  }
  return arr;
}

static PyObject *Blob_get_data(BlobObject *self, void *closure) {
  if (check_blob(self) < 0)
    return NULL;
  float *p = crema_blob_data(self->blob);
  if (!p) {
    PyErr_SetString(CremaError, "the blob has no storage (the net's last reshape failed)");
    return NULL;
  }
  return view(self, p);
}

static PyObject *Blob_get_diff(BlobObject *self, void *closure) {
  if (check_blob(self) < 0)
    return NULL;
  crema_error err = {0};
  float *p = NULL;
  if (crema_blob_diff(self->blob, &p, &err) != CREMA_OK)
    return raise_crema(&err);
  return view(self, p);
}

static PyObject *dim_item(void *dims, int i) { return PyLong_FromLong(((int *)dims)[i]); }

static PyObject *Blob_get_shape(BlobObject *self, void *closure) {
  if (check_blob(self) < 0)
    return NULL;
  int dims[MAX_AXES];
  int n = crema_blob_shape(self->blob, dims, MAX_AXES);
  PyObject *list = make_list(n < MAX_AXES ? n : MAX_AXES, dim_item, dims);
  if (!list)
    return NULL;
  PyObject *t = PyList_AsTuple(list);
  Py_DECREF(list);
  return t;
}

static PyObject *Blob_get_count(BlobObject *self, void *closure) {
  if (check_blob(self) < 0)
    return NULL;
  return PyLong_FromSize_t(crema_blob_count(self->blob));
}

/* Caffe's LegacyShape(axis): num, channels, height, width with missing
 * axes as 1; blobs of more than 4 axes have none. */
static PyObject *legacy_dim(BlobObject *self, int axis) {
  if (check_blob(self) < 0)
    return NULL;
  int dims[MAX_AXES];
  int n = crema_blob_shape(self->blob, dims, MAX_AXES);
  if (n > 4) {
    PyErr_Format(CremaError,
                 "num/channels/height/width are only defined for blobs of 4 axes or fewer "
                 "(this one has %d): use shape", n);
    return NULL;
  }
  return PyLong_FromLong(axis < n ? dims[axis] : 1);
}

static PyObject *Blob_get_num(BlobObject *self, void *c) { return legacy_dim(self, 0); }
static PyObject *Blob_get_channels(BlobObject *self, void *c) { return legacy_dim(self, 1); }
static PyObject *Blob_get_height(BlobObject *self, void *c) { return legacy_dim(self, 2); }
static PyObject *Blob_get_width(BlobObject *self, void *c) { return legacy_dim(self, 3); }

/* reshape(*dims), as pycaffe's (also accepts one sequence of dims). */
static PyObject *Blob_reshape(BlobObject *self, PyObject *args, PyObject *kwds) {
  if (check_blob(self) < 0)
    return NULL;
  if (kwds && PyDict_Size(kwds) > 0) {
    PyErr_SetString(PyExc_TypeError, "Blob.reshape takes no keyword arguments");
    return NULL;
  }
  PyObject *seq = args;
  if (PyTuple_GET_SIZE(args) == 1 && PySequence_Check(PyTuple_GET_ITEM(args, 0)))
    seq = PyTuple_GET_ITEM(args, 0);
  PyObject *fast = PySequence_Fast(seq, "Blob.reshape takes dimensions");
  if (!fast)
    return NULL;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
  if (n > MAX_AXES) {
    Py_DECREF(fast);
    PyErr_Format(PyExc_ValueError, "a blob has at most %d axes, got %zd", MAX_AXES, n);
    return NULL;
  }
  int dims[MAX_AXES];
  for (Py_ssize_t i = 0; i < n; i++) {
    long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
    if (v == -1 && PyErr_Occurred()) {
      Py_DECREF(fast);
      return NULL;
    }
    if (v < 0 || v > INT_MAX) {
      Py_DECREF(fast);
      PyErr_Format(PyExc_ValueError, "bad blob dimension %ld", v);
      return NULL;
    }
    dims[i] = (int)v;
  }
  Py_DECREF(fast);
  crema_error err = {0};
  if (crema_blob_reshape(self->blob, (int)n, dims, &err) != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyMethodDef Blob_methods[] = {
    {"reshape", (PyCFunction)(void (*)(void))Blob_reshape, METH_VARARGS | METH_KEYWORDS,
     "reshape(*dims): new shape (storage grows when needed)"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Blob_getset[] = {
    {"data", (getter)Blob_get_data, NULL, "float32 array viewing the values", NULL},
    {"diff", (getter)Blob_get_diff, NULL, "float32 array viewing the gradient", NULL},
    {"shape", (getter)Blob_get_shape, NULL, "the dimensions", NULL},
    {"count", (getter)Blob_get_count, NULL, "number of values", NULL},
    {"num", (getter)Blob_get_num, NULL, "axis 0 (legacy)", NULL},
    {"channels", (getter)Blob_get_channels, NULL, "axis 1 (legacy)", NULL},
    {"height", (getter)Blob_get_height, NULL, "axis 2 (legacy)", NULL},
    {"width", (getter)Blob_get_width, NULL, "axis 3 (legacy)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject BlobType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crema._crema.Blob",
    .tp_basicsize = sizeof(BlobObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A blob of a Net (made by the Net)",
    .tp_dealloc = (destructor)Blob_dealloc,
    .tp_traverse = (traverseproc)Blob_traverse,
    .tp_clear = (inquiry)Blob_clear,
    .tp_weaklistoffset = offsetof(BlobObject, weakrefs),
    .tp_methods = Blob_methods,
    .tp_getset = Blob_getset,
};

/* ---- Layer ---------------------------------------------------------------- */

static int Layer_traverse(LayerObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->net);
  Py_VISIT(self->dict);
  return 0;
}

static int Layer_clear(LayerObject *self) {
  Py_CLEAR(self->net);
  Py_CLEAR(self->dict);
  return 0;
}

static void Layer_dealloc(LayerObject *self) {
  PyObject_GC_UnTrack(self);
  Layer_clear(self);
  PyObject_GC_Del(self);
}

static int check_layer(const LayerObject *self) {
  if (self->net)
    return 0;
  PyErr_SetString(CremaError, "the layer's net is gone");
  return -1;
}

static PyObject *param_item(void *layer, int k) {
  LayerObject *l = layer;
  return new_blob(l->net, crema_net_layer_param(l->net->net, l->index, k));
}

static PyObject *Layer_get_blobs(LayerObject *self, void *closure) {
  if (check_layer(self) < 0)
    return NULL;
  return make_list(crema_net_layer_num_params(self->net->net, self->index), param_item, self);
}

static PyObject *Layer_get_type(LayerObject *self, void *closure) {
  if (check_layer(self) < 0)
    return NULL;
  return PyUnicode_FromString(crema_net_layer_type(self->net->net, self->index));
}

static PyGetSetDef Layer_getset[] = {
    {"blobs", (getter)Layer_get_blobs, NULL, "the parameter blobs", NULL},
    {"type", (getter)Layer_get_type, NULL, "Caffe's type name", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject LayerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crema._crema.Layer",
    .tp_basicsize = sizeof(LayerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A layer of a Net (made by the Net)",
    .tp_dealloc = (destructor)Layer_dealloc,
    .tp_traverse = (traverseproc)Layer_traverse,
    .tp_clear = (inquiry)Layer_clear,
    .tp_dictoffset = offsetof(LayerObject, dict),
    .tp_getset = Layer_getset,
};

/* ---- Solver --------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  crema_solver *solver;
  PyObject *net;       /* the train Net, made once */
  PyObject *test_nets; /* list of Nets */
  PyObject *dict;
  PyObject *weakrefs;
} SolverObject;

static int check_solver(const SolverObject *self) {
  if (self->solver)
    return 0;
  PyErr_SetString(CremaError, "the Solver was not initialised");
  return -1;
}

static int make_solver_nets(SolverObject *self) {
  PyTypeObject *type = net_class ? net_class : &NetType;
  self->net = (PyObject *)wrap_net(type, crema_solver_net(self->solver), (PyObject *)self);
  if (!self->net)
    return -1;
  int n = crema_solver_num_test_nets(self->solver);
  if (!(self->test_nets = PyList_New(n)))
    return -1;
  for (int i = 0; i < n; i++) {
    PyObject *t =
        (PyObject *)wrap_net(type, crema_solver_test_net(self->solver, i), (PyObject *)self);
    if (!t)
      return -1;
    PyList_SET_ITEM(self->test_nets, i, t);
  }
  return 0;
}

/* Solver(solver_file, type=None): type None reads the file's. */
static int Solver_init(SolverObject *self, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"solver_file", "type", NULL};
  PyObject *file = NULL;
  const char *type = NULL;
  if (self->solver) {
    PyErr_SetString(CremaError, "Solver.__init__ called twice");
    return -1;
  }
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|z:Solver", kwlist, PyUnicode_FSConverter,
                                   &file, &type))
    return -1;
  crema_solver_config cfg;
  crema_solver_config_init(&cfg);
  cfg.type = type;
  cfg.has_seed = have_seed;
  cfg.seed = random_seed;
  cfg.observable = 1;
  crema_error err = {0};
  crema_status st = crema_solver_open(PyBytes_AS_STRING(file), &cfg, &self->solver, &err);
  Py_DECREF(file);
  if (st != CREMA_OK) {
    raise_crema(&err);
    return -1;
  }
  return make_solver_nets(self);
}

static int Solver_traverse(SolverObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->net);
  Py_VISIT(self->test_nets);
  Py_VISIT(self->dict);
  return 0;
}

static int Solver_clear(SolverObject *self) {
  Py_CLEAR(self->net);
  Py_CLEAR(self->test_nets);
  Py_CLEAR(self->dict);
  return 0;
}

static void Solver_dealloc(SolverObject *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakrefs)
    PyObject_ClearWeakRefs((PyObject *)self);
  Solver_clear(self);
  /* The Nets are gone (they held this Solver), so nothing views the nets. */
  crema_solver_close(self->solver);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Solver_get_net(SolverObject *self, void *closure) {
  if (check_solver(self) < 0)
    return NULL;
  Py_INCREF(self->net);
  return self->net;
}

static PyObject *Solver_get_test_nets(SolverObject *self, void *closure) {
  if (check_solver(self) < 0)
    return NULL;
  /* A copy: the solver's own list stays as built. */
  return PyList_GetSlice(self->test_nets, 0, PyList_GET_SIZE(self->test_nets));
}

static PyObject *Solver_get_iter(SolverObject *self, void *closure) {
  if (check_solver(self) < 0)
    return NULL;
  return PyLong_FromLong(crema_solver_iter(self->solver));
}

static PyObject *Solver_get_type(SolverObject *self, void *closure) {
  if (check_solver(self) < 0)
    return NULL;
  return PyUnicode_FromString(crema_solver_type(self->solver));
}

static PyObject *Solver_step(SolverObject *self, PyObject *arg) {
  if (check_solver(self) < 0)
    return NULL;
  long iters = PyLong_AsLong(arg);
  if (iters == -1 && PyErr_Occurred())
    return NULL;
  if (iters < 0 || iters > INT_MAX) {
    PyErr_Format(PyExc_ValueError, "step takes a number of iterations >= 0, got %ld", iters);
    return NULL;
  }
  crema_error err = {0};
  if (crema_solver_step(self->solver, (int)iters, &err) != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyObject *Solver_solve(SolverObject *self, PyObject *args) {
  PyObject *resume = Py_None, *path = NULL;
  if (check_solver(self) < 0 || !PyArg_ParseTuple(args, "|O:solve", &resume))
    return NULL;
  if (resume != Py_None && !PyUnicode_FSConverter(resume, &path))
    return NULL;
  crema_error err = {0};
  crema_status st =
      crema_solver_solve(self->solver, path ? PyBytes_AS_STRING(path) : NULL, &err);
  Py_XDECREF(path);
  if (st != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyObject *Solver_restore(SolverObject *self, PyObject *arg) {
  PyObject *path = NULL;
  if (check_solver(self) < 0 || !PyUnicode_FSConverter(arg, &path))
    return NULL;
  crema_error err = {0};
  crema_status st = crema_solver_restore(self->solver, PyBytes_AS_STRING(path), &err);
  Py_DECREF(path);
  if (st != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyObject *Solver_snapshot(SolverObject *self, PyObject *unused) {
  if (check_solver(self) < 0)
    return NULL;
  crema_error err = {0};
  if (crema_solver_snapshot(self->solver, &err) != CREMA_OK)
    return raise_crema(&err);
  Py_RETURN_NONE;
}

static PyMethodDef Solver_methods[] = {
    {"step", (PyCFunction)Solver_step, METH_O, "step(iters): train that many iterations"},
    {"solve", (PyCFunction)Solver_solve, METH_VARARGS,
     "solve(resume_file=None): train up to max_iter"},
    {"restore", (PyCFunction)Solver_restore, METH_O, "restore(path): resume a .solverstate"},
    {"snapshot", (PyCFunction)Solver_snapshot, METH_NOARGS,
     "write PREFIX_iter_N.caffemodel and .solverstate"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Solver_getset[] = {
    {"net", (getter)Solver_get_net, NULL, "the train net", NULL},
    {"test_nets", (getter)Solver_get_test_nets, NULL, "the test nets", NULL},
    {"iter", (getter)Solver_get_iter, NULL, "iterations done", NULL},
    {"type", (getter)Solver_get_type, NULL, "the solver's type name", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject SolverType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "crema._crema.Solver",
    .tp_basicsize = sizeof(SolverObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Solver(solver_file, type=None)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Solver_init,
    .tp_dealloc = (destructor)Solver_dealloc,
    .tp_traverse = (traverseproc)Solver_traverse,
    .tp_clear = (inquiry)Solver_clear,
    .tp_dictoffset = offsetof(SolverObject, dict),
    .tp_weaklistoffset = offsetof(SolverObject, weakrefs),
    .tp_methods = Solver_methods,
    .tp_getset = Solver_getset,
};

/* ---- module functions ----------------------------------------------------- */

static PyObject *set_random_seed(PyObject *mod, PyObject *arg) {
  long long v = PyLong_AsLongLong(arg);
  if (v == -1 && PyErr_Occurred())
    return NULL;
  /* Caffe takes an unsigned seed; negative values wrap as they do there. */
  random_seed = (unsigned)v;
  have_seed = 1;
  Py_RETURN_NONE;
}

static PyObject *set_net_class(PyObject *mod, PyObject *arg) {
  if (!PyType_Check(arg) || !PyType_IsSubtype((PyTypeObject *)arg, &NetType)) {
    PyErr_SetString(PyExc_TypeError, "_set_net_class takes a subclass of Net");
    return NULL;
  }
  Py_INCREF(arg);
  Py_XSETREF(net_class, (PyTypeObject *)arg);
  Py_RETURN_NONE;
}

/* Pixels of a PNG or JPEG as uint8 H x W x C (R,G,B(,A) order). */
static PyObject *read_image(PyObject *mod, PyObject *args) {
  PyObject *path = NULL;
  int channels = 0;
  if (!PyArg_ParseTuple(args, "O&|i:read_image", PyUnicode_FSConverter, &path, &channels))
    return NULL;
  crema_error err = {0};
  int h = 0, w = 0, c = 0;
  unsigned char *pixels = NULL;
  crema_status st = crema_image_read(PyBytes_AS_STRING(path), channels, &h, &w, &c, &pixels, &err);
  Py_DECREF(path);
  if (st != CREMA_OK)
    return raise_crema(&err);
  npy_intp dims[3] = {h, w, c};
  PyObject *arr = PyArray_SimpleNew(3, dims, NPY_UINT8);
  if (arr)
    memcpy(PyArray_DATA((PyArrayObject *)arr), pixels, (size_t)h * (size_t)w * (size_t)c);
  crema_free(pixels);
  return arr;
}

static PyMethodDef module_methods[] = {
    {"set_random_seed", set_random_seed, METH_O,
     "seed the fillers and random layers of the nets and solvers made next"},
    {"_set_net_class", set_net_class, METH_O, "the class of the nets solvers make"},
    {"read_image", read_image, METH_VARARGS,
     "read_image(path, channels=0): uint8 H x W x C pixels, R,G,B(,A) order"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_crema", "libcrema for Python (see the crema package)", -1,
    module_methods, NULL, NULL, NULL, NULL};

static int add_type(PyObject *m, PyTypeObject *t, const char *name) {
  if (PyType_Ready(t) < 0)
    return -1;
  Py_INCREF(t);
  if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
    Py_DECREF(t);
    return -1;
  }
  return 0;
}

PyMODINIT_FUNC PyInit__crema(void) {
  import_array();
  PyObject *m = PyModule_Create(&module_def);
  if (!m)
    return NULL;
  CremaError = PyErr_NewExceptionWithDoc("crema.CremaError",
                                         "An error reported by libcrema (its message says "
                                         "where and what).", PyExc_RuntimeError, NULL);
  if (!CremaError || PyModule_AddObject(m, "CremaError", CremaError) < 0 ||
      add_type(m, &NetType, "Net") < 0 || add_type(m, &BlobType, "Blob") < 0 ||
      add_type(m, &LayerType, "Layer") < 0 || add_type(m, &SolverType, "Solver") < 0 ||
      PyModule_AddIntConstant(m, "TRAIN", CREMA_TRAIN) < 0 ||
      PyModule_AddIntConstant(m, "TEST", CREMA_TEST) < 0 ||
      PyModule_AddStringConstant(m, "__version__", crema_version()) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  Py_INCREF(CremaError);
  return m;
}
