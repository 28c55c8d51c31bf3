#!/usr/bin/env bash
set -u
# Issue 14 on the device machine: paper 000's table (F1 of the answer class) on a QA-matching
# dataset for plain, FGSM, FGM, PGD, FreeAT, YOPO and FreeLB, 3 seeds, and FreeAT beside plain
# at 9 epochs (FreeAT divides epochs by its 3 replays: none@9/freeat@9 cost the same and give
# FreeAT the data passes the others get at 3), for MODEL (MiniLM, or
# scratch:esim with LR=1e-3, the model from scratch that clears the TF-IDF row on this CPU;
# scratch:transformer with LR=5e-4 does not).  help-qa-* need the Debian .debs in
# .gpu/cache/downloads.
#   run(command="DATASET=help-qa-en MODEL=.gpu/model bash benchmarks/device_qa.sh", timeout_s=600)
DATASET=${DATASET:-help-qa-en}; MODEL=${MODEL:-.gpu/model}; LR=${LR:-2e-5}
source "$(dirname "$0")/device_env.sh"
timeout ${Q_S:-480} python3 benchmarks/quality.py --model $MODEL --lr $LR --task qa-matching \
  --metric f1 --jobs 12 --datasets $DATASET --seeds 13 14 15 \
  --methods none fgsm fgm pgd freeat yopo freelb none@9 freeat@9 --runs-dir /tmp/qa --out $OUT/results-qa.md \
  --machine "$M" > $OUT/qa.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
python3 benchmarks/quality.py --model $MODEL --lr $LR --task qa-matching --metric f1 \
  --datasets $DATASET --seeds 13 14 15 --methods none fgsm fgm pgd freeat yopo freelb none@9 freeat@9 \
  --runs-dir /tmp/qa --out $OUT/results-qa.md --machine "$M" --aggregate-only --reference \
  > /dev/null 2>&1
cat $OUT/results-qa.md | grep "| $DATASET |"
tar czf $OUT/qa.tgz -C /tmp $(cd /tmp && ls -d qa/*/metrics.json qa/*/config.json 2>/dev/null)
echo "total $(( $(date +%s) - T0 )) s"
