#!/usr/bin/env bash
set -u
# Issue 15 on the device machine: paper 004's tables on our data, 3 seeds, through quality.py:
# bbc-lm perplexity (--task lm) and help-en-de / help-de-en BLEU (--task translation) for the
# baseline, "+Adv. only" (FGM with ATCL's alpha-weighted adversarial loss, beta = 0) and
# +ATCL (n = 5, and for the LM also n = 10 and 20).  Each variant has its own runs folder,
# since quality.py names runs by dataset, method and seed.  Needs the Debian help packages in
# .gpu/cache/downloads and sacrebleu's wheels (sacrebleu portalocker tabulate colorama lxml)
# in .gpu/wheels.  EPOCHS / Q_S / LIMIT size it (LIMIT: examples per split, for a dry run).
#   run(command="bash benchmarks/device_mt.sh", timeout_s=600)
EPOCHS=${EPOCHS:-10}; LM_EPOCHS=${LM_EPOCHS:-10}; LIMIT=${LIMIT:-}
source "$(dirname "$0")/device_env.sh"
M="one $GPU (device machine, runs sharing it)"
EXTRA=${LIMIT:+--limit $LIMIT}
variant() {  # NAME TASK METRIC DATASETS EPOCHS LR METHOD OBJECTIVE-OPTIONS
  timeout ${Q_S:-500} python3 benchmarks/quality.py --task $2 --metric $3 --datasets $4 \
    --epochs $5 --lr $6 --methods $7 --objective-options "$8" --seeds 13 14 15 --jobs 3 \
    --runs-dir /tmp/mt/$1 --out $OUT/results-$1.md --machine "$M" $EXTRA > $OUT/$1.log 2>&1
  echo "$1 rc $? at $(( $(date +%s) - T0 )) s"
}
variant lm-base lm perplexity bbc-lm $LM_EPOCHS 5e-4 none '{}' &
variant lm-adv lm perplexity bbc-lm $LM_EPOCHS 5e-4 fgm+atcl '{"atcl": {"beta": 0}}' &
variant lm-atcl5 lm perplexity bbc-lm $LM_EPOCHS 5e-4 fgm+atcl '{"atcl": {"num_negatives": 5}}' &
variant lm-atcl10 lm perplexity bbc-lm $LM_EPOCHS 5e-4 fgm+atcl '{"atcl": {"num_negatives": 10}}' &
variant lm-atcl20 lm perplexity bbc-lm $LM_EPOCHS 5e-4 fgm+atcl '{"atcl": {"num_negatives": 20}}' &
variant mt-base translation bleu "help-en-de help-de-en" $EPOCHS 5e-4 none '{}' &
variant mt-adv translation bleu "help-en-de help-de-en" $EPOCHS 5e-4 fgm+atcl '{"atcl": {"beta": 0}}' &
variant mt-atcl5 translation bleu "help-en-de help-de-en" $EPOCHS 5e-4 fgm+atcl '{"atcl": {"num_negatives": 5}}' &
wait
grep -h "^| bbc-lm\|^| help-" $OUT/results-*.md
tar czf $OUT/mt.tgz -C /tmp $(cd /tmp && ls -d mt/*/*/metrics.json mt/*/*/config.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
