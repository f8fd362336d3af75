#!/bin/sh
# Optional cross-check: the bundled lesion deploy net uses only stock Caffe
# layers, so OpenCV's dnn module (Debian python3-opencv) runs it too; crema
# verify must agree with OpenCV's probabilities.  Skipped (77) without cv2.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
srcdir=$(cd "$CREMA_TEST_DATA/../.." && pwd)
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import cv2' >/dev/null 2>&1 || { echo "no python3-opencv: skipped"; exit 77; }
model="$srcdir/models/lesion/bundled"
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir opencv
"$py" - "$model" "$work" <<'PY' || exit 1
import sys
import cv2
import numpy as np
model, work = sys.argv[1], sys.argv[2]
net = cv2.dnn.readNetFromCaffe(model + "/deploy.prototxt", model + "/lesion_w8_128.caffemodel")
x = (np.random.default_rng(0).standard_normal((1, 3, 128, 128)) * 50).astype(np.float32)
np.save(work + "/data.npy", x)
net.setInput(x, "data")
names = ["fuse_prob", "border_prob", "lesion_prob"]
for name, out in zip(names, net.forward(names)):
    np.save(work + "/" + name + ".npy", out.astype(np.float32))
PY
"$CREMA_BIN" verify --model "$model/deploy.prototxt" --weights "$model/lesion_w8_128.caffemodel" \
  --reference "$work" 2>/dev/null > "$work/out.txt"
rc=$?
cat "$work/out.txt"
[ $rc -eq 0 ] && grep -q '^3 passed, 0 failed$' "$work/out.txt"
