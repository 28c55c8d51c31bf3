#!/usr/bin/env bash
set -u
# Issue 12 on the device machine, in one call: plain, FreeLB (defaults) and the robust preset
# on DATASETS, 3 seeds (up to 18 runs sharing the card, through quality.py, where `robust`
# trains with --preset robust), then PWWS on N test examples of each run (16 CPU workers;
# the lowest accuracy over the logit temperatures 1, 100 and 0.01), through attack_table.py.
# Needs .gpu/ prepared as benchmarks/README.md says.  ADA and the search are not in it: PWWS
# over mr's whole training split and search_robust.py's 18 points do not fit one call.
#   run(command="DATASETS='mr cr' bash benchmarks/device_robust.sh", timeout_s=600)
DATASETS=${DATASETS:-mr cr}; METHODS="none freelb robust"
source "$(dirname "$0")/device_env.sh"
timeout ${Q_S:-330} python3 benchmarks/quality.py --model .gpu/model --jobs 18 --datasets $DATASETS \
  --seeds 13 14 15 --methods $METHODS --runs-dir /tmp/qr --out $OUT/quality-robust.md \
  --machine "$M" > $OUT/qr.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
TABLE="--runs-dir /tmp/qr --datasets $DATASETS --methods $METHODS --attacks pwws"
timeout ${A_S:-180} python3 benchmarks/attack_table.py $TABLE --machine "$M" --n-examples ${N:-1000} \
  --workers 16 --summary $OUT/summary.json --out $OUT/results-robust.md > $OUT/table.log 2>&1
echo "table rc $? at $(( $(date +%s) - T0 )) s"
# the table again, whole, from whatever the timed attacks finished
python3 benchmarks/attack_table.py $TABLE --machine "$M" --no-attack --summary $OUT/summary.json \
  --out $OUT/results-robust.md
tar czf $OUT/qr.tgz -C /tmp $(cd /tmp && ls -d qr/*/metrics.json qr/*/config.json qr/*/attack-*.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
