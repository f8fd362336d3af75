#!/bin/sh
# Reproduces the bundled lesion model, models/lesion/bundled/lesion_w8_128.caffemodel,
# bit for bit: synthetic images (crema synth) -> databases (crema lesion-db)
# -> training from scratch (crema train), then scores it on held-out
# synthetic images (crema segment, crema evaluate).
#
#   models/lesion/train-synthetic.sh [WORKDIR]      (default: ./lesion-synthetic)
#
# Environment: CREMA, the crema binary (default: crema on the PATH);
# INSTALL=1 copies the trained model over the bundled one instead of only
# comparing the two.  Training runs on 2 threads: the floating-point sums,
# and so the weights, depend on the thread count (and on the CPU's SIMD
# kernels in OpenBLAS), so bit-for-bit equality holds for the same build on
# the same kind of machine.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
crema=${CREMA:-crema}
work=${1:-lesion-synthetic}
model=lesion_w8_128_iter_1200.caffemodel
bundled="$here/bundled/lesion_w8_128.caffemodel"

OMP_NUM_THREADS=2
OPENBLAS_NUM_THREADS=2
export OMP_NUM_THREADS OPENBLAS_NUM_THREADS

mkdir -p "$work"
cd "$work"
rm -rf synth_train synth_test pred images_lmdb labels_lmdb val_images_lmdb val_labels_lmdb \
  train.txt val.txt lesion_w8_128_iter_*

# 400 training images (40 of them kept for validation), each with 2
# augmented copies; 60 held-out images from another seed for the score.
"$crema" synth --count 400 --size 160 --seed 2024 synth_train
"$crema" lesion-db --size 128 --val-fraction 0.1 --augment 2 --seed 1 synth_train .
"$crema" synth --count 60 --size 256 --seed 777 --first 100000 synth_test

cp "$here/bundled/train_val.prototxt" "$here/bundled/solver.prototxt" .
start=$(date +%s)
"$crema" train --solver solver.prototxt
end=$(date +%s)
echo "training took $((end - start)) s"

"$crema" segment --model "$here/bundled/deploy.prototxt" --weights "$model" --output pred \
  synth_test
"$crema" evaluate --truth synth_test --pred pred | tail -n 1

if [ "${INSTALL:-0}" = 1 ]; then
  cp "$model" "$bundled"
  echo "installed $bundled"
elif cmp -s "$model" "$bundled"; then
  echo "identical to the bundled model: $bundled"
else
  echo "differs from the bundled model: $bundled" >&2
  exit 1
fi
