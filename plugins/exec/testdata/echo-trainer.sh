#!/bin/sh
# A fake trainer for the exec stage's tests: it keeps what it was given
# (stdin, candidate.json and its environment) in $OUT/<candidate_id>/ and
# reports fixed metrics, its own parameter count included, with a metric
# no results column has.
set -eu
d="$OUT/$SWEETSPOT_CANDIDATE_ID"
mkdir -p "$d"
cat > "$d/stdin.json"
cp candidate.json "$d/candidate.json"
env > "$d/env.txt"
echo "training $SWEETSPOT_NAME"
echo '{"epoch": 1, "loss": 0.7}'
echo "{\"accuracy\": 0.5, \"loss\": 0.25, \"params\": ${REPORT_PARAMS:-12345}, \"flops\": 678, \"gpu_hours\": 0.1}"
