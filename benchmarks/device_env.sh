# Sourced by the device_*.sh drivers: the pinned wheels installed offline, the cache and model
# copies of .gpu/, and T0 and M (the machine, for the tables).  Not run on its own.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$(date +%s)
if [ -f .gpu/model/model.safetensors.xz ] && [ ! -f .gpu/model/model.safetensors ]; then  # xz: fits the transfer
  python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.gpu/model/model.safetensors.xz'),
open('.gpu/model/model.safetensors', 'wb'))" && rm .gpu/model/model.safetensors.xz
fi
python3 -m pip install --quiet --no-deps --no-index --target /tmp/deps .gpu/wheels/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/deps:$PWD/src ADVEMBED_CACHE=$PWD/.gpu/cache ADVEMBED_OFFLINE=1
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
M="one $GPU (device machine, 12 runs sharing it), fp16-stored copy of the default MiniLM weights loaded as fp32"
