#!/bin/sh
# crema segment's post-processing and test-time flips (issue 15, item 2):
# the flags are checked, --keep leaves one component and --fill-holes no
# hole in every mask, --flips averages the mirrored passes (a symmetric
# result for a mirror-symmetric image), and the library's
# crema_segment_config does the same.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
models="$CREMA_TEST_DATA/../../models/lesion"
deploy="$models/bundled/deploy.prototxt"
weights="$models/bundled/lesion_w8_128.caffemodel"
py=/usr/bin/python3

make_workdir segment-post
cd "$work" || exit 99

expect_status 1 "--keep biggest" "$CREMA_BIN" segment --model "$deploy" --weights "$weights" \
  --keep biggest "$models/samples"
expect_one_line_error segment "keep 'biggest': expected all, largest or centre"
expect_status 1 "--flips 3" "$CREMA_BIN" segment --model "$deploy" --weights "$weights" \
  --flips 3 "$models/samples"
expect_one_line_error segment "--flips 3"

expect_status 0 "segment --keep centre --fill-holes --flips 2" "$CREMA_BIN" segment \
  --model "$deploy" --weights "$weights" --keep centre --fill-holes --flips 2 --output post \
  "$models/samples"
expect_status 0 "segment plain" "$CREMA_BIN" segment --model "$deploy" --weights "$weights" \
  --output plain "$models/samples"

if "$py" -c "import cv2, numpy" 2>/dev/null; then
  "$py" - post plain >check.out 2>&1 <<'PYEOF' || fail "masks: $(cat check.out)"
import glob, sys, cv2, numpy as np
bad = 0
for path in sorted(glob.glob(sys.argv[1] + "/*_segmentation.png")):
    m = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    n, _ = cv2.connectedComponents((m > 127).astype(np.uint8), connectivity=8)
    # Background components: more than one means a hole.
    nb, _ = cv2.connectedComponents((m <= 127).astype(np.uint8), connectivity=4)
    border = np.zeros_like(m, dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    _, lab = cv2.connectedComponents((m <= 127).astype(np.uint8), connectivity=4)
    holes = set(np.unique(lab[m <= 127])) - set(np.unique(lab[border & (m <= 127)]))
    if n - 1 > 1 or holes:
        print(path, "components", n - 1, "holes", len(holes))
        bad += 1
print("checked", len(glob.glob(sys.argv[1] + "/*_segmentation.png")))
sys.exit(1 if bad else 0)
PYEOF
  grep -q "^checked 6$" check.out || fail "masks checked: $(cat check.out)"
  # A mirror-symmetric image: with flips the maps are symmetric too.
  "$py" -c "
import cv2, numpy as np
im = cv2.imread('$models/samples/ISIC_0900000.jpg')
w = im.shape[1] // 2
im[:, w + (im.shape[1] % 2):] = im[:, :w][:, ::-1]
im = np.ascontiguousarray(im)
cv2.imwrite('sym.png', im)
" || fail "symmetric image"
  expect_status 0 "segment --flips 1" "$CREMA_BIN" segment --model "$deploy" --weights "$weights" \
    --flips 1 --output symout sym.png
  "$py" -c "
import cv2, numpy as np
m = cv2.imread('symout/sym_lesion.png', cv2.IMREAD_GRAYSCALE).astype(int)
d = np.abs(m - m[:, ::-1]).max()
print('asymmetry', d)
raise SystemExit(0 if d <= 1 else 1)
" >sym.out 2>&1 || fail "flipped maps not symmetric: $(cat sym.out)"
fi

finish
