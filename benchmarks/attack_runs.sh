#!/usr/bin/env bash
# Every attack on each given run (1000 test examples, seed 0), one after another, with the wall
# time of each; then a copy of the summaries into benchmarks/results/attacks/<run name>/ and the
# comparison report.  Usage:
#   bash benchmarks/attack_runs.sh runs/mr-plain runs/mr-freelb
# (bert-attack/bae use the MLM `advembed mlm build` made, or MLM=FOLDER)
# ATTACKS overrides the list (default: pgd vulnerability pwws bert-attack); REPORT the report dir;
# MLM_N the sample size of the masked-LM attacks (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
ATTACKS=${ATTACKS:-pgd vulnerability pwws bert-attack}
REPORT=${REPORT:-docs/report-mr}
for run in "$@"; do
  for attack in $ATTACKS; do
    extra=()
    if [ "$attack" = bert-attack ] || [ "$attack" = bae ]; then
      extra=(--mlm "${MLM:-default}" --n-examples "${MLM_N:-1000}")
    fi
    start=$(date +%s)
    .venv/bin/advembed attack --run "$run" --attack "$attack" --no-progress "${extra[@]}" \
      | tee "$run/attack-$attack.log"
    echo "$attack on $run: $(( $(date +%s) - start )) s wall" | tee -a "$run/attack-$attack.log"
  done
  dest=benchmarks/results/attacks/$(basename "$run")
  mkdir -p "$dest"
  cp "$run"/config.json "$run"/metrics.json "$run"/attack-*.json "$run"/attack-*.log "$dest"/
done
.venv/bin/advembed report "$@" --out "$REPORT"
