#!/bin/sh
# The HTML page of crema retrieve in a real browser: headless Chromium
# renders it and takes a screenshot, which must show the page (not a blank
# or error page).  Skipped (77) when Chromium is not installed.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not installed: skipped"; exit 77; }
python=/usr/bin/python3
"$python" -c 'import cv2' 2>/dev/null || { echo "python3-opencv missing: skipped"; exit 77; }

make_workdir retrieve-html
cd "$work" || exit 99
"$CREMA_BIN" synth --count 4 --size 48 --seed 9 imgs 2>/dev/null || fail "synth"
for i in 0 1 2 3; do echo "ISIC_000000$i.jpg $((i % 2))"; done >list.txt
"$CREMA_BIN" convert-imageset --resize_width 32 --resize_height 32 imgs/ list.txt db \
  2>/dev/null || fail "convert-imageset"
cat >net.prototxt <<'NET'
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00390625 } data_param { source: "db" batch_size: 4 backend: LMDB } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "bil" type: "Bilinear" bottom: "conv" bottom: "conv" top: "bil" }
layer { name: "bil_sqrt" type: "SignedSqrt" bottom: "bil" top: "bil_sqrt" }
layer { name: "bil_l2" type: "L2Normalize" bottom: "bil_sqrt" top: "bil_l2" }
layer { name: "sil" type: "Silence" bottom: "label" }
NET
"$CREMA_BIN" init --model net.prototxt --output w.caffemodel 2>/dev/null || fail "init"
"$CREMA_BIN" extract-features w.caffemodel net.prototxt bil_l2,conv feats,spatial 1 lmdb \
  --keep-source 2>/dev/null || fail "extract-features"
# A bilinear descriptor (signed square root, L2) and its heat maps.
"$CREMA_BIN" retrieve --features feats --queries feats --k 2 --exclude-self --eval \
  --html page.html --images imgs --heat spatial --query-heat spatial \
  --class-names benign,malignant >/dev/null || fail "retrieve --html"

# A fresh profile in the scratch directory; as root Chromium needs
# --no-sandbox.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=900,700 --screenshot="$work/shot.png" \
  "file://$work/page.html" >browser.log 2>&1
[ -s shot.png ] || { fail "no screenshot"; cat browser.log >&2; finish; }

# Not blank: many distinct colours (thumbnails, heat maps, text) and the
# page's coloured frames.
"$python" - "$work/shot.png" <<'PY' || fail "the screenshot looks blank"
import sys
import cv2
import numpy as np
img = cv2.imread(sys.argv[1])
assert img is not None and img.shape[0] >= 600 and img.shape[1] >= 800, "bad screenshot"
colours = len(np.unique(img.reshape(-1, 3), axis=0))
std = float(img.std())
# The green and red frames of same and other diagnoses (BGR).
green = np.all(img == (0x22, 0xaa, 0x22), axis=2).sum()
red = np.all(img == (0x33, 0x33, 0xcc), axis=2).sum()
print("colours", colours, "std", round(std, 1), "green", green, "red", red)
sys.exit(0 if colours > 500 and std > 20 and green + red > 100 else 1)
PY
finish
