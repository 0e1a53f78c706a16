#!/bin/sh
# A trainer whose validation and test scores disagree: validation is best
# at lr = 0.01 with opt "b", the test split at lr = 0.1 with opt "a". It
# records what it received in $OUT, one file per trial.
set -eu
printf '%s %s %s %s %s\n' "$SWEETSPOT_LR" "$SWEETSPOT_OPT" "$SWEETSPOT_EPOCHS" "$SWEETSPOT_KNOBS" "$SWEETSPOT_CANDIDATE_ID" \
  > "$OUT/$(basename "$(dirname "$SWEETSPOT_WORKDIR")")-$(basename "$SWEETSPOT_WORKDIR")"
awk -v lr="$SWEETSPOT_LR" -v opt="$SWEETSPOT_OPT" -v e="$SWEETSPOT_EPOCHS" -v w="${SWEETSPOT_WIDTH:-1}" 'BEGIN {
  l = log(lr) / log(10)
  v = 0.9 - 0.1 * (l + 2) ^ 2 - (opt == "a" ? 0.05 : 0) - 0.2 / e - 0.001 * w
  t = 0.5 + 0.1 * (l + 3) + (opt == "a" ? 0.05 : 0)
  printf "{\"val_accuracy\": %.6f, \"accuracy\": %.6f, \"loss\": %.6f}\n", v, t, 1 - t
}'
