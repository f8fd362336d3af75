#!/bin/sh
# Prints VGG-16 (Simonyan & Zisserman's ILSVRC-2014 model D) as the published
# VGG_ILSVRC_16_layers_deploy.prototxt writes it: V1 layers and input_dim.
#   vgg16.sh [WIDTH_DIVISOR [SIZE [fillers]]]
# divides every layer's width (the fc layers' 4096 too) by WIDTH_DIVISOR
# (default 1: the real model) and takes SIZE x SIZE inputs (default 224;
# a multiple of 32).  With "fillers", conv and fc weights get MSRA fillers
# (for crema init: activations then keep their scale through the net, as
# with trained weights); the published file has none.
set -eu
div=${1:-1}
size=${2:-224}
filler=
if [ "${3:-}" = fillers ]; then
  filler='    weight_filler {
      type: "msra"
    }
'
fi

layer() { # name type bottom top [params]
  printf 'layers {\n  bottom: "%s"\n  top: "%s"\n  name: "%s"\n  type: %s\n%s}\n' \
    "$3" "$4" "$1" "$2" "${5:-}"
}
conv() { # name bottom width
  layer "$1" CONVOLUTION "$2" "$1" "  convolution_param {
    num_output: $3
    pad: 1
    kernel_size: 3
$filler  }
"
  layer "relu${1#conv}" RELU "$1" "$1"
}
pool() { # n bottom
  layer "pool$1" POOLING "$2" "pool$1" "  pooling_param {
    pool: MAX
    kernel_size: 2
    stride: 2
  }
"
}
fc() { # n bottom width
  layer "fc$1" INNER_PRODUCT "$2" "fc$1" "  inner_product_param {
    num_output: $3
$filler  }
"
}

echo 'name: "VGG_ILSVRC_16_layers"'
bottom=data
for stage in 1:2:64 2:2:128 3:3:256 4:3:512 5:3:512; do
  s=${stage%%:*}; rest=${stage#*:}; n=${rest%%:*}; w=$(( ${rest#*:} / div ))
  i=1
  while [ "$i" -le "$n" ]; do
    conv "conv${s}_$i" "$bottom" "$w"
    bottom="conv${s}_$i"
    i=$((i + 1))
  done
  pool "$s" "$bottom"
  bottom="pool$s"
done
fc 6 pool5 $((4096 / div))
layer relu6 RELU fc6 fc6
layer drop6 DROPOUT fc6 fc6 "  dropout_param {
    dropout_ratio: 0.5
  }
"
fc 7 fc6 $((4096 / div))
layer relu7 RELU fc7 fc7
layer drop7 DROPOUT fc7 fc7 "  dropout_param {
    dropout_ratio: 0.5
  }
"
fc 8 fc7 1000
layer prob SOFTMAX fc8 prob
printf 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: %s\ninput_dim: %s\n' "$size" "$size"
