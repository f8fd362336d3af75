"""pycaffe's Python-level Net interface and the solver classes.

The C extension (_crema) provides the raw Net (blob and layer lists,
_forward/_backward over layer ranges); this module adds what pycaffe adds
in Python: the ordered dictionaries of blobs, params and layers, and
forward/backward taking blob values by name and returning arrays.
"""
from collections import OrderedDict
from itertools import zip_longest

import numpy as np

from . import _crema
from ._crema import CremaError


class Net(_crema.Net):
    """Net(network_file, phase, level=0, stages=None, weights=None), or the
    older Net(network_file, weights, phase)."""

    @property
    def blobs(self):
        """OrderedDict of the blobs by name, inputs to outputs."""
        if not hasattr(self, '_blobs_dict'):
            self._blobs_dict = OrderedDict(zip(self._blob_names, self._blobs))
        return self._blobs_dict

    @property
    def blob_loss_weights(self):
        """OrderedDict of each blob's loss weight by name."""
        if not hasattr(self, '_blob_loss_weights_dict'):
            self._blob_loss_weights_dict = OrderedDict(
                zip(self._blob_names, self._blob_loss_weights))
        return self._blob_loss_weights_dict

    @property
    def layer_dict(self):
        """OrderedDict of the layers by name."""
        if not hasattr(self, '_layer_dict'):
            self._layer_dict = OrderedDict(zip(self._layer_names, self.layers))
        return self._layer_dict

    @property
    def params(self):
        """OrderedDict of layer name -> list of parameter blobs, for the
        layers that have parameters."""
        if not hasattr(self, '_params_dict'):
            self._params_dict = OrderedDict(
                (name, layer.blobs)
                for name, layer in zip(self._layer_names, self.layers)
                if len(layer.blobs) > 0)
        return self._params_dict

    @property
    def inputs(self):
        if not hasattr(self, '_input_list'):
            names = self._blob_names
            self._input_list = [names[i] for i in self._inputs]
        return self._input_list

    @property
    def outputs(self):
        if not hasattr(self, '_output_list'):
            names = self._blob_names
            self._output_list = [names[i] for i in self._outputs]
        return self._output_list

    @property
    def top_names(self):
        """OrderedDict of layer name -> names of its tops."""
        if not hasattr(self, '_top_names'):
            self._top_names = self._names_by_layer(self._top_ids)
        return self._top_names

    @property
    def bottom_names(self):
        """OrderedDict of layer name -> names of its bottoms."""
        if not hasattr(self, '_bottom_names'):
            self._bottom_names = self._names_by_layer(self._bottom_ids)
        return self._bottom_names

    def _names_by_layer(self, ids):
        names = self._blob_names
        return OrderedDict((layer, [names[j] for j in ids(i)])
                           for i, layer in enumerate(self._layer_names))

    def _layer_index(self, name):
        try:
            return list(self._layer_names).index(name)
        except ValueError:
            raise ValueError('%r is not a layer of the net' % (name,)) from None

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Run layers start..end (names, inclusive; default all) forward.

        kwargs set input blobs by name (all inputs, batch-sized arrays).
        Returns {blob name: data array} for the outputs (the tops of end
        when given) and the extra blobs listed in blobs."""
        blobs = list(blobs or [])
        start_ind = 0 if start is None else self._layer_index(start)
        if end is None:
            end_ind = len(self.layers) - 1
            outputs = set(self.outputs + blobs)
        else:
            end_ind = self._layer_index(end)
            outputs = set(self.top_names[end] + blobs)
        if kwargs:
            if set(kwargs.keys()) != set(self.inputs):
                raise Exception('Input blob arguments do not match net inputs.')
            for name, value in kwargs.items():
                if value.shape[0] != self.blobs[name].shape[0]:
                    raise Exception('Input is not batch sized')
                self.blobs[name].data[...] = value
        self._forward(start_ind, end_ind)
        return {out: self.blobs[out].data for out in outputs}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Run layers start down to end (names, inclusive; default all)
        backward.

        kwargs set output diffs by name (all outputs, batch-sized arrays).
        Returns {blob name: diff array} for the inputs (the bottoms of end
        when given) and the extra blobs listed in diffs.  Parameter diffs
        accumulate over calls, as in Caffe (clear_param_diffs)."""
        diffs = list(diffs or [])
        start_ind = len(self.layers) - 1 if start is None else self._layer_index(start)
        if end is None:
            end_ind = 0
            outputs = set(self.inputs + diffs)
        else:
            end_ind = self._layer_index(end)
            outputs = set(self.bottom_names[end] + diffs)
        if kwargs:
            if set(kwargs.keys()) != set(self.outputs):
                raise Exception('Top diff arguments do not match net outputs.')
            for name, value in kwargs.items():
                if value.shape[0] != self.blobs[name].shape[0]:
                    raise Exception('Diff is not batch sized')
                self.blobs[name].diff[...] = value
        self._backward(start_ind, end_ind)
        return {out: self.blobs[out].diff for out in outputs}

    def forward_all(self, blobs=None, **kwargs):
        """forward() over inputs of any length, batch by batch (the last
        batch padded with zeros); returns {blob name: array of all items}."""
        all_outs = {out: [] for out in set(self.outputs + list(blobs or []))}
        for batch in self._batch(kwargs):
            outs = self.forward(blobs=blobs, **batch)
            for out, value in outs.items():
                all_outs[out].extend(value.copy())
        for out in all_outs:
            all_outs[out] = np.asarray(all_outs[out])
        pad = len(next(iter(all_outs.values()))) - len(next(iter(kwargs.values())))
        if pad:
            for out in all_outs:
                all_outs[out] = all_outs[out][:-pad]
        return all_outs

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward() and backward() batch by batch; returns the dicts of
        data and diffs over all items."""
        all_outs = {out: [] for out in set(self.outputs + list(blobs or []))}
        all_diffs = {d: [] for d in set(self.inputs + list(diffs or []))}
        forward_batches = self._batch({name: kwargs[name]
                                       for name in self.inputs if name in kwargs})
        backward_batches = self._batch({name: kwargs[name]
                                        for name in self.outputs if name in kwargs})
        for fb, bb in zip_longest(forward_batches, backward_batches, fillvalue={}):
            batch_blobs = self.forward(blobs=blobs, **fb)
            batch_diffs = self.backward(diffs=diffs, **bb)
            for out, value in batch_blobs.items():
                all_outs[out].extend(value.copy())
            for d, value in batch_diffs.items():
                all_diffs[d].extend(value.copy())
        for out in all_outs:
            all_outs[out] = np.asarray(all_outs[out])
        for d in all_diffs:
            all_diffs[d] = np.asarray(all_diffs[d])
        pad = len(next(iter(all_outs.values()))) - len(next(iter(kwargs.values())))
        if pad:
            for out in all_outs:
                all_outs[out] = all_outs[out][:-pad]
            for d in all_diffs:
                all_diffs[d] = all_diffs[d][:-pad]
        return all_outs, all_diffs

    def _batch(self, blobs):
        """Yields {name: batch} dicts of the net's batch size; the last one
        is padded with zeros."""
        if not blobs:
            return
        num = len(next(iter(blobs.values())))
        batch_size = next(iter(self.blobs.values())).shape[0]
        full, remainder = divmod(num, batch_size)
        for b in range(full):
            i = b * batch_size
            yield {name: blobs[name][i:i + batch_size] for name in blobs}
        if remainder > 0:
            padded = {}
            for name in blobs:
                padding = np.zeros((batch_size - remainder,) + blobs[name].shape[1:])
                padded[name] = np.concatenate([blobs[name][-remainder:], padding])
            yield padded


# The solver's nets are made by the extension: as this class.
_crema._set_net_class(Net)


class Solver(_crema.Solver):
    """A solver of the type its file names (get_solver)."""


def _solver_class(type_name):
    """The class of a solver type: its constructor builds that solver
    whatever type the file names, as pycaffe's SGDSolver(file) etc."""
    def __init__(self, solver_file):
        Solver.__init__(self, solver_file, type_name)
    return type(type_name + 'Solver', (Solver,),
                {'__init__': __init__, '__module__': __name__,
                 '__doc__': '%sSolver(solver_file)' % type_name})


SGDSolver = _solver_class('SGD')
NesterovSolver = _solver_class('Nesterov')
AdaGradSolver = _solver_class('AdaGrad')
RMSPropSolver = _solver_class('RMSProp')
AdaDeltaSolver = _solver_class('AdaDelta')
AdamSolver = _solver_class('Adam')
_SOLVER_CLASSES = {cls.__name__[:-len('Solver')]: cls
                   for cls in (SGDSolver, NesterovSolver, AdaGradSolver,
                               RMSPropSolver, AdaDeltaSolver, AdamSolver)}


def get_solver(solver_file):
    """The solver the file describes (its type field), as pycaffe's."""
    solver = Solver(solver_file)
    # Same layout, so the instance can take the class of its type.
    solver.__class__ = _SOLVER_CLASSES[solver.type]
    return solver


__all__ = ['Net', 'Solver', 'SGDSolver', 'NesterovSolver', 'AdaGradSolver',
           'RMSPropSolver', 'AdaDeltaSolver', 'AdamSolver', 'get_solver',
           'CremaError']
