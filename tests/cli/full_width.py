"""Helpers of tests/cli/full_width.sh (run by Debian's /usr/bin/python3).

  full_width.py forward NET WEIGHTS INFO SIZE OUTDIR
      Feeds a seeded SIZE x SIZE image (batch 1) to NET in OpenCV's dnn and
      writes data.npy and, for every blob a layer produces, <blob>.npy with
      OpenCV's value: the reference directory of `crema verify`.  INFO is
      `crema info NET`'s output, which names each layer's tops (a blob
      written in place holds its last writer's output).

  full_width.py backward TRAIN_VAL WEIGHTS SIZE [BATCH]
      Runs the lesion training net (its Data layers replaced by an Input
      of a seeded image and label) through the crema module under each
      convolution engine, forward and backward, and checks every
      convolution's and deconvolution's parameter gradients and bottom
      gradient against float64 computed here from the layer's own inputs
      (crema's bottom data and top gradient).  Prints the largest relative
      error per engine; exits 1 over the golden tolerance.

  full_width.py summary VERIFY_OUTPUT...
      The largest rel= of each `crema verify` output file.
"""
import os
import re
import sys

import numpy as np

TOLERANCE = 1e-4
# The engines of tests/golden/run_golden.sh's full-width runs: each forced,
# then auto with the portable kernels.
ENGINES = [("auto", None), ("winograd", None), ("gemm", None), ("direct", None),
           ("auto", "generic")]


def seeded_image(size, seed=14, batch=1):
    """A mean-subtracted image's range, smooth enough to look like one."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-110.0, 130.0, (batch, 3, size // 8 + 1, size // 8 + 1))
    img = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)[:, :, :size, :size]
    return (img + rng.normal(0.0, 20.0, img.shape)).astype(np.float32)


def producers(info_path):
    """blob -> name of the last layer that writes it, skipping Input layers."""
    out = {}
    layer = None
    with open(info_path) as f:
        for line in f:
            m = re.match(r"layer \d+: (\S+) \((\S+)\)", line)
            if m:
                layer = None if m.group(2) == "Input" else m.group(1)
                continue
            m = re.match(r"\s+tops: (.*)", line)
            if m and layer:
                for top in m.group(1).split():
                    out[top] = layer
    return out


def forward(net_path, weights, info, size, outdir):
    import cv2
    net = cv2.dnn.readNetFromCaffe(net_path, weights)
    x = seeded_image(int(size))
    np.save(os.path.join(outdir, "data.npy"), x)
    net.setInput(x, "data")
    blobs = producers(info)
    names = sorted(blobs)
    outs = net.forward([blobs[b] for b in names])
    for name, value in zip(names, outs):
        np.save(os.path.join(outdir, name.replace("/", "%2F") + ".npy"),
                np.asarray(value, dtype=np.float32))


# ---- float64 convolutions (the definition, through im2col) ----

def im2col(x, kh, kw, ph, pw, sh, sw, dh, dw):
    c, h, w = x.shape
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw))
    xp[:, ph:ph + h, pw:pw + w] = x
    col = np.empty((c, kh, kw, oh, ow))
    for i in range(kh):
        for j in range(kw):
            col[:, i, j] = xp[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                              j * dw:j * dw + sw * (ow - 1) + 1:sw]
    return col.reshape(c * kh * kw, oh * ow), oh, ow


def col2im(col, shape, kh, kw, ph, pw, sh, sw, dh, dw, oh, ow):
    c, h, w = shape
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw))
    col = col.reshape(c, kh, kw, oh, ow)
    for i in range(kh):
        for j in range(kw):
            xp[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
               j * dw:j * dw + sw * (ow - 1) + 1:sw] += col[:, i, j]
    return xp[:, ph:ph + h, pw:pw + w]


def conv_geometry(layer_param):
    cp = layer_param.convolution_param

    def pick(rep, single_h, single_w, default):
        if cp.HasField(single_h):
            return getattr(cp, single_h), getattr(cp, single_w)
        vals = list(rep)
        if not vals:
            return default, default
        return vals[0], vals[-1]
    kh, kw = pick(cp.kernel_size, "kernel_h", "kernel_w", 1)
    ph, pw = pick(cp.pad, "pad_h", "pad_w", 0)
    sh, sw = pick(cp.stride, "stride_h", "stride_w", 1)
    dil = list(cp.dilation) or [1]
    return kh, kw, ph, pw, sh, sw, dil[0], dil[-1], cp.group or 1


def conv_grads(x, w, dy, geo, deconv):
    """float64 (dW, db, dx) of a Convolution (or Deconvolution) whose
    bottom is x (C,H,W), weights w and top gradient dy (K,OH,OW)."""
    kh, kw, ph, pw, sh, sw, dh, dw, group = geo
    if deconv:
        # A deconvolution is the data gradient of the convolution that maps
        # its top to its bottom: swap the roles of x and dy.
        big, small = dy, x
    else:
        big, small = x, dy
    cin = big.shape[0] // group
    kout = small.shape[0] // group
    dW = np.zeros(w.shape)
    dx = np.zeros(x.shape)
    for g in range(group):
        col, oh, ow = im2col(big[g * cin:(g + 1) * cin], kh, kw, ph, pw, sh, sw, dh, dw)
        s = small[g * kout:(g + 1) * kout].reshape(kout, -1)
        if deconv:
            # w is (C_bottom, K_top/group, kh, kw): bottom channel c of group
            # g maps to the group's top channels.
            wg = w[g * kout:(g + 1) * kout].reshape(kout, -1)
            dW[g * kout:(g + 1) * kout] = (s @ col.T).reshape(w[g * kout:(g + 1) * kout].shape)
            dx[g * kout:(g + 1) * kout] = (wg @ col).reshape(kout, oh, ow)
        else:
            wg = w[g * kout:(g + 1) * kout].reshape(kout, -1)
            dW[g * kout:(g + 1) * kout] = (s @ col.T).reshape(w[g * kout:(g + 1) * kout].shape)
            dx[g * cin:(g + 1) * cin] = col2im(wg.T @ s, (cin,) + big.shape[1:], kh, kw, ph, pw,
                                               sh, sw, dh, dw, oh, ow)
    db = dy.sum(axis=(1, 2))
    return dW, db, dx


def rel_error(ours, ref):
    ref = np.asarray(ref, dtype=np.float64)
    top = np.abs(ref).max()
    return float(np.abs(np.asarray(ours, dtype=np.float64) - ref).max() / (top if top else 1.0))


def train_input_net(train_val, size, path, batch=1):
    """train_val with its Data layers replaced by one Input layer."""
    from crema.proto import caffe_pb2
    from google.protobuf import text_format
    net = caffe_pb2.NetParameter()
    with open(train_val) as f:
        text_format.Merge(f.read(), net)
    kept = [l for l in net.layer if l.type != "Data"]
    del net.layer[:]
    inp = net.layer.add()
    inp.name = "input"
    inp.type = "Input"
    inp.top.extend(["data", "label"])
    inp.input_param.shape.add().dim.extend([batch, 3, size, size])
    # Two label channels (mask, border) where a Slice splits them.
    channels = 2 if any(l.type == "Slice" and "label" in l.bottom for l in kept) else 1
    inp.input_param.shape.add().dim.extend([batch, channels, size, size])
    net.layer.extend(kept)
    with open(path, "w") as f:
        f.write(text_format.MessageToString(net))
    return net


def net_label_channels(param):
    return param.layer[0].input_param.shape[1].dim[1]


def seeded_label(size, batch=1):
    """A lesion disc and the band around its border, moving with the item."""
    yy, xx = np.mgrid[0:size, 0:size]
    items = []
    for n in range(batch):
        r = np.hypot(yy - (0.45 + 0.05 * n) * size, xx - 0.55 * size)
        mask = (r < 0.3 * size).astype(np.float32)
        border = (np.abs(r - 0.3 * size) < 0.03 * size).astype(np.float32)
        items.append(np.stack([mask, border]))
    return np.stack(items)


def backward(train_val, weights, size, batch=1):
    import crema
    size, batch = int(size), int(batch)
    path = os.path.join(os.path.dirname(weights), "train_input.prototxt")
    param = train_input_net(train_val, size, path, batch)
    convs = [l for l in param.layer if l.type in ("Convolution", "Deconvolution")]
    x = seeded_image(size, batch=batch)
    label = seeded_label(size, batch)[:, :net_label_channels(param)]
    worst_all = 0.0
    for engine, simd in ENGINES:
        os.environ["CREMA_CONV"] = engine
        if simd:
            os.environ["CREMA_SIMD"] = simd
        else:
            os.environ.pop("CREMA_SIMD", None)
        net = crema.Net(path, crema.TRAIN, weights=weights)
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = label
        net.forward()
        net.clear_param_diffs()
        net.backward()
        worst = (0.0, "")
        for lp in convs:
            name = lp.name
            deconv = lp.type == "Deconvolution"
            bottom = net.bottom_names[name][0]
            top = net.top_names[name][0]
            params = net.params[name]
            w = params[0].data.astype(np.float64)
            dW, db, dx = 0.0, 0.0, []
            for n in range(batch):
                xb = net.blobs[bottom].data[n].astype(np.float64)
                dy = net.blobs[top].diff[n].astype(np.float64)
                gw, gb, gx = conv_grads(xb, w, dy, conv_geometry(lp), deconv)
                dW, db = dW + gw, db + gb
                dx.append(gx)
            # Copies: the arrays view the blobs, which the layer's second
            # backward below changes.
            checks = []
            lr = [p.lr_mult if p.HasField("lr_mult") else 1.0 for p in lp.param]
            if not lr or lr[0] != 0:
                checks.append((name + " weights", np.array(params[0].diff), dW))
            if len(params) > 1 and (len(lr) < 2 or lr[1] != 0):
                checks.append((name + " bias", np.array(params[1].diff), db))
            if bottom not in ("data",):
                # The layer's own bottom gradient, unmasked by the ReLU that
                # shares the blob: run this layer's backward alone.
                net.blobs[bottom].diff[...] = 0
                net.backward(start=name, end=name)
                checks.append((name + " bottom", net.blobs[bottom].diff, np.stack(dx)))
            for what, ours, ref in checks:
                e = rel_error(ours, ref)
                if e > worst[0]:
                    worst = (e, what)
                if e > TOLERANCE:
                    print("FAIL %s %s: rel %.3g" % (engine + ("/" + simd if simd else ""), what, e))
        label_engine = engine + (" (CREMA_SIMD=" + simd + ")" if simd else "")
        print("backward %s: max rel %.3g (%s)" % (label_engine, worst[0], worst[1]))
        worst_all = max(worst_all, worst[0])
        del net
    return 0 if worst_all <= TOLERANCE else 1


def summary(files):
    for path in files:
        worst, blob = 0.0, "-"
        with open(path) as f:
            for line in f:
                m = re.match(r"(\S+) (data|diff) \S+ max_abs=\S+ rel=(\S+)", line)
                if m and float(m.group(3)) > worst:
                    worst, blob = float(m.group(3)), m.group(1)
        print("%s: max rel %.3g (%s)" % (os.path.basename(path), worst, blob))


def main(argv):
    if argv[1] == "forward":
        forward(*argv[2:7])
        return 0
    if argv[1] == "backward":
        return backward(*argv[2:6])
    if argv[1] == "summary":
        summary(argv[2:])
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
