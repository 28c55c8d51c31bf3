#!/usr/bin/env bash
set -u
# Issue 13 on the device machine, in one call: build the masked LM on the GPU, then train plain,
# VDA, FreeLB, FreeLB+VDA, SMART and SMART+VDA on DATASETS with 3 seeds (18 runs sharing the
# card) and write their clean table.  The attacks are not run there: TextAttack is not in the
# device image.  The built MLM comes back instead, as mlm.tar cut into 15 MB parts ($OUT holds
# at most 16 MiB a file); install it here with
#   cat mlm.tar.part-* | tar x -C "$ADVEMBED_CACHE/mlm"      # → $ADVEMBED_CACHE/mlm/minilm
# and run vda_table.py's attacks on the CPU.  If MLM_S runs out before MLM_STEPS, the last
# checkpoint (every 500 steps) is evaluated and installed (`--steps` at or below the steps done).
# Needs .gpu/ from benchmarks/prepare_gpu.sh (it holds the MLM's corpus).  LIMIT (examples per
# split), METHODS and MLM_STEPS/MLM_BATCH make a dry run; it ran on this CPU with PATH holding
# .venv/bin and OUT=/tmp/out.  Session 39's call ran at 15 steps/s, so MLM_S=240 ended near step
# 3,400; the build has since stopped re-tokenizing and re-shuffling every step (59 -> 13 ms of
# host work per step of 128 here), so the next call should get further: size MLM_STEPS by its log.
#   run(command="bash benchmarks/device_vda.sh", timeout_s=600, carry=[".gpu"])
DATASETS=${DATASETS:-mr}; METHODS=${METHODS:-none vda freelb freelb+vda smart smart+vda}
source "$(dirname "$0")/device_env.sh"
M="one $GPU (device machine, 18 runs sharing it), fp16-stored copy of the default MiniLM weights loaded as fp32"
BUILD="python3 -m advembed.cli mlm build --model .gpu/model --batch-size ${MLM_BATCH:-128}
  --lr ${MLM_LR:-2e-4} --warmup-steps ${MLM_WARMUP:-500} --save-every ${MLM_SAVE:-500}"
TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 timeout ${MLM_S:-240} $BUILD --steps ${MLM_STEPS:-10000} \
  > $OUT/mlm.log 2>&1
echo "mlm rc $? at $(( $(date +%s) - T0 )) s"
MLM=.gpu/cache/mlm/minilm
[ -f $MLM/mlm_metrics.json ] || $BUILD --steps 1 --no-progress >> $OUT/mlm.log 2>&1
echo "mlm installed rc $? at $(( $(date +%s) - T0 )) s"; cp $MLM/mlm_metrics.json $OUT/
tar cf - -C .gpu/cache/mlm minilm | split -b 16000000 - $OUT/mlm.tar.part-
timeout ${Q_S:-270} python3 benchmarks/quality.py --model .gpu/model --jobs 18 --datasets $DATASETS \
  --seeds 13 14 15 --methods $METHODS --runs-dir /tmp/qv --machine "$M" ${LIMIT:+--limit $LIMIT} \
  > $OUT/qv.log 2>&1
echo "quality rc $? at $(( $(date +%s) - T0 )) s"
pkill -f advembed.cli; sleep 1
python3 benchmarks/vda_table.py --runs-dir /tmp/qv --datasets $DATASETS --methods $METHODS \
  --no-attack --machine "$M" --summary $OUT/summary.json --out $OUT/results-vda.md
mv $OUT/qv.log $OUT/mlm.log /tmp/   # eight files at most come back: the logs go into the archive
tar czf $OUT/qv.tgz -C /tmp qv.log mlm.log $(cd /tmp && ls -d qv/*/metrics.json qv/*/config.json)
tr '\r' '\n' < /tmp/mlm.log | grep -v "^$" | tail -4; cat $OUT/mlm_metrics.json
echo "total $(( $(date +%s) - T0 )) s"
