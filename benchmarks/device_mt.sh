#!/usr/bin/env bash
set -u
# Issue 15 on the device machine: paper 004's tables on our data, 3 seeds, through
# atcl_table.py (which trains each variant with quality.py into its own runs folder): bbc-lm
# perplexity (--task lm) for the baseline, "+Adv. only" (FGM with ATCL's alpha-weighted
# adversarial loss, beta = 0) and +ATCL with n = 5/10/20, and help-en-de / help-de-en BLEU for
# the baseline, +Adv. only and +ATCL (n = 5).  Needs the Debian help packages in
# .gpu/cache/downloads and sacrebleu's wheels (sacrebleu portalocker tabulate colorama lxml)
# in .gpu/wheels.  EPOCHS / LM_EPOCHS / Q_S / LIMIT size it (LIMIT: examples per split, for a
# dry run).  Translation trains at lr 1e-3 (MT_LR): on help-en-de, one CPU epoch at 5e-4 ends at
# dev BLEU 0.13, at 1e-3 at 0.23, and 2e-3 falls back to the unigram plateau (BLEU 0).
#   run(command="bash benchmarks/device_mt.sh", timeout_s=600)
EPOCHS=${EPOCHS:-10}; LM_EPOCHS=${LM_EPOCHS:-10}; LIMIT=${LIMIT:-}; MT_LR=${MT_LR:-1e-3}
source "$(dirname "$0")/device_env.sh"
M="one $GPU (device machine, runs sharing it)"
EXTRA=${LIMIT:+--limit $LIMIT}
table() {  # NAME EPOCHS JOBS ATCL-TABLE-OPTIONS...
  local name=$1 epochs=$2 jobs=$3; shift 3
  timeout ${Q_S:-500} python3 benchmarks/atcl_table.py "$@" --epochs $epochs --jobs $jobs \
    --runs-dir /tmp/mt --machine "$M" --out $OUT/results-$name.md \
    --summary $OUT/summary-$name.json $EXTRA > $OUT/$name.log 2>&1
  echo "$name rc $? at $(( $(date +%s) - T0 )) s"
}
table lm $LM_EPOCHS 15 --datasets bbc-lm &
table mt $EPOCHS 18 --datasets help-en-de help-de-en --variants base adv atcl5 --lr $MT_LR &
wait
cat $OUT/results-*.md
tar czf $OUT/mt.tgz -C /tmp $(cd /tmp && ls -d mt/*/*/metrics.json mt/*/*/config.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
