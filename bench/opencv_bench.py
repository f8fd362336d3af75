"""OpenCV dnn side of bench/run: the same measurements as crema_bench, on
the same inputs, printed as "key value" lines.

  opencv_bench.py load    --model M --weights W
  opencv_bench.py forward --model M --weights W [--size S] [--batch N]
                          [--iterations K] [--input-shape N,C,H,W]

The thread count is OpenCV's default unless OMP_NUM_THREADS is set (bench/run
sets it to compare 1 and 2 threads).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import cv2
import numpy as np


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_input(shape, is_label=False):
    """crema_bench's fill_input: index i -> hash(i) / 2^32 * 2 - 1."""
    n = int(np.prod(shape))
    h = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    if is_label:
        x = (h >> np.uint64(31)).astype(np.float32)
    else:
        x = (h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0).astype(np.float32)
    return x.reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "forward"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--channels", type=int, default=3)
    a = ap.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        cv2.setNumThreads(int(threads))

    t0 = time.perf_counter()
    net = cv2.dnn.readNetFromCaffe(a.model, a.weights)
    load_ms = (time.perf_counter() - t0) * 1e3
    if a.mode == "load":
        print("load_ms %.1f" % load_ms)
        print("peak_rss_mb %.1f" % peak_rss_mb())
        return 0

    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    x = bench_input((a.batch, a.channels, a.size, a.size))
    net.setInput(x)
    outs = list(net.getUnconnectedOutLayersNames())
    ys = net.forward(outs)  # setup and warm-up, untimed
    times = []
    for _ in range(a.iterations):
        t0 = time.perf_counter()
        ys = net.forward(outs)
        times.append((time.perf_counter() - t0) * 1e3)
    print("forward_ms " + " ".join("%.2f" % t for t in times))
    print("forward_median_ms %.2f" % statistics.median(times))
    for name, y in zip(outs, ys):
        print("checksum %s %.6g" % (name, float(np.square(y.astype(np.float64)).sum())))
    print("peak_rss_mb %.1f" % peak_rss_mb())
    return 0


if __name__ == "__main__":
    sys.exit(main())
