#!/usr/bin/env bash
set -u
# Issue 4 on the device machine: FreeLB vs FreeLB+CARL vs FreeLB+RAR vs FGM+ATCL, 3 seeds, then
# k-PGD drift (Table 4). Needs .gpu/ prepared as benchmarks/README.md says. Run as
#   run(command="DATASETS=mr bash benchmarks/device_objectives.sh", timeout_s=600)
DATASETS=${DATASETS:-mr}
source "$(dirname "$0")/device_env.sh"
METHODS=${METHODS:-"freelb freelb+carl freelb+rar fgm+atcl"}
timeout ${Q_S:-420} python3 benchmarks/quality.py --model .gpu/model --jobs 12 --datasets $DATASETS --seeds 13 14 15 \
  --methods $METHODS --runs-dir /tmp/q4 --out $OUT/results4.md --machine "$M" > $OUT/q4.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
python3 benchmarks/quality.py --model .gpu/model --datasets $DATASETS --seeds 13 14 15 --methods $METHODS \
  --runs-dir /tmp/q4 --out $OUT/results4.md --machine "$M" --aggregate-only > /dev/null 2>&1
grep "| $DATASETS |" $OUT/results4.md
timeout ${D_S:-100} python3 benchmarks/drift.py --runs-dir /tmp/q4 --datasets $DATASETS --methods $METHODS \
  --epsilons 0.02 0.075 0.1 --out $OUT/drift4.md > $OUT/drift.log 2>&1
echo "drift rc $? at $(( $(date +%s) - T0 )) s"
grep "| $DATASETS |" $OUT/drift4.md
tar czf $OUT/q4.tgz -C /tmp $(cd /tmp && ls -d q4/*/metrics.json q4/*/config.json q4/*/attack-pgd.json q4/*.log 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
