#!/usr/bin/env bash
# Device-machine driver (not part of the package): offline deps, then search + quality.
set -u
source "$(dirname "$0")/device_env.sh"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name(0))"
timeout ${SEARCH_S:-200} python3 benchmarks/search_defaults.py --model .gpu/model --jobs 11 --epochs 2 \
  --runs-dir /tmp/search --out $OUT/defaults.md --json-out $OUT/defaults.json --machine "$M"
echo "search done at $(( $(date +%s) - T0 )) s"
OPTS=$(cat $OUT/defaults.json 2>/dev/null || echo '{}')
timeout ${QUALITY_S:-330} python3 benchmarks/quality.py --model .gpu/model --jobs 12 --datasets mr cr \
  --seeds 13 14 15 --method-options "$OPTS" --runs-dir /tmp/quality --out $OUT/results.md --machine "$M" \
  > $OUT/quality.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 2
python3 benchmarks/quality.py --model .gpu/model --datasets mr cr --seeds 13 14 15 --method-options "$OPTS" \
  --runs-dir /tmp/quality --out $OUT/results.md --machine "$M" --aggregate-only > /dev/null
cat $OUT/results.md; tail -5 $OUT/quality.log
tar czf $OUT/runs.tgz -C /tmp $(cd /tmp && ls -d search/*/*/metrics.json search/*/*/config.json quality/*/metrics.json quality/*/config.json quality/*.log 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
