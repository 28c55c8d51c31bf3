#!/usr/bin/env bash
set -u
# Issue 13 on the device machine, in one call: build the masked LM on the GPU, train plain, VDA,
# FreeLB, FreeLB+VDA, SMART and SMART+VDA on DATASETS with 3 seeds (12 runs sharing the card),
# then PWWS and BERT-Attack on N test examples of each run (16 CPU workers).  Needs .gpu/
# prepared as benchmarks/README.md says, with every named dataset's extracted files (the MLM's
# corpus).  Run as
#   run(command="DATASETS=mr bash benchmarks/device_vda.sh", timeout_s=600)
DATASETS=${DATASETS:-mr}
source "$(dirname "$0")/device_env.sh"
timeout ${MLM_S:-150} python3 -m advembed.cli mlm build --model .gpu/model --steps ${MLM_STEPS:-3000} \
  --no-progress > $OUT/mlm.log 2>&1
echo "mlm rc $? at $(( $(date +%s) - T0 )) s"; cp .gpu/cache/mlm/minilm/mlm_metrics.json $OUT/ 2>/dev/null
METHODS="none vda freelb freelb+vda smart smart+vda"
timeout ${Q_S:-300} python3 benchmarks/quality.py --model .gpu/model --jobs 12 --datasets $DATASETS \
  --seeds 13 14 15 --methods $METHODS --runs-dir /tmp/qv --out $OUT/quality-vda.md --machine "$M" \
  > $OUT/qv.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
timeout ${A_S:-120} python3 benchmarks/vda_table.py --runs-dir /tmp/qv --datasets $DATASETS \
  --n-examples ${N:-200} --workers 16 --machine "$M" --summary $OUT/summary.json \
  --out $OUT/results-vda.md > $OUT/table.log 2>&1
echo "table rc $? at $(( $(date +%s) - T0 )) s"
python3 benchmarks/vda_table.py --runs-dir /tmp/qv --datasets $DATASETS --no-attack --machine "$M" \
  --summary $OUT/summary.json --out $OUT/results-vda.md
tar czf $OUT/qv.tgz -C /tmp $(cd /tmp && ls -d qv/*/metrics.json qv/*/config.json qv/*/attack-*.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
