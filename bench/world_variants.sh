#!/bin/bash
# The toy world's larger-UNet, wider-world and cross-attention-LoRA runs of the README, as they were run
# on a lent GPU machine (one H200, 16 cores; its own python3 with torch, and diffusers, jsonargparse,
# docstring_parser, typeshed_client and structlog installed from wheels carried in .whl/):
#   wave 1: DreamBooth settings on the shipped base (CPU, one thread each, side by side) while two
#           128-channel bases pretrain on the GPU (`python -m groundglass.dreambooth.world.pretrain --device cuda`);
#   wave 2: DreamBooth with the demo's settings on those bases, and more settings.
# Prints the mean of each setting's runs; OUT gets summary.json (every run) and logs.txt.
# A dry run on a CPU machine: DEVICE=cpu UNET_STEPS=10 S=3 IMAGES=200 PT_MIN=0.5 bash bench/world_variants.sh
DEVICE=${DEVICE:-cuda}; UNET_STEPS=${UNET_STEPS:-2150}; S=${S:-300}; IMAGES=${IMAGES:-20000}
PT_MIN=${PT_MIN:-3.2}; T1=${T1:-200}; T2=${T2:-200}; OUT=${OUT:-/tmp/gwout}; W=${W:-/tmp/gw}
mkdir -p $OUT $W/v $W/sw
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD; PY=python3
else
  PY=${PY:-.venv/bin/python}; export PYTHONPATH=$PWD/src:$PWD
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
$PY -c "import torch, diffusers, structlog, groundglass.dreambooth.fit, groundglass.dreambooth.world.personalise; print(torch.__version__, torch.cuda.is_available())" || exit 1
BASE=src/groundglass/dreambooth/world/base_model
T0=$(date +%s)
pt() { n=$1; shift
  $PY -m groundglass.dreambooth.world.pretrain --out $W/v/$n --device $DEVICE --vae-from $BASE --threads 1 \
     --images $IMAGES --unet-steps $UNET_STEPS --batch 128 --save-every 100000 --max-minutes $PT_MIN "$@" > $W/v/$n.log 2>&1
  $PY -m groundglass.dreambooth.world.pretrain --out $W/v/$n --to-fp16 >> $W/v/$n.log 2>&1; }
run() { to=$1; name=$2; json=$3; base=$4
  timeout $to $PY -m bench.world_run $W/sw/$name "$json" $base > $W/sw/$name.log 2>&1; }
KV='"unet_target_modules": ["attn2.to_k", "attn2.to_v"]'
pt c128 --unet-channels 128,256 &
pt x128 --unet-channels 128,256 --extra-shapes &
for s in 0 1 2; do run $T1 demo-s$s "{\"steps\": $S, \"seed\": $s}" & done
for s in 0 1; do
  run $T1 kv16-1e-3-s$s "{\"steps\": $S, \"seed\": $s, \"learning_rate\": 1e-3, \"lora\": {\"rank\": 16, $KV}}" &
  run $T1 kv64-1e-3-s$s "{\"steps\": $S, \"seed\": $s, \"learning_rate\": 1e-3, \"lora\": {\"rank\": 64, $KV}}" &
  run $T1 kv64-3e-3-s$s "{\"steps\": $S, \"seed\": $s, \"learning_rate\": 3e-3, \"lora\": {\"rank\": 64, $KV}}" &
  run $T1 kv64id-1e-3-s$s "{\"steps\": $S, \"seed\": $s, \"learning_rate\": 1e-3, \"train_identifier\": true, \"lora\": {\"rank\": 64, $KV}}" &
done
run $T1 all16-1e-3-s0 "{\"steps\": $S, \"seed\": 0, \"learning_rate\": 1e-3, \"lora\": {\"rank\": 16}}" &
wait
echo "wave 1 took $(( $(date +%s) - T0 )) s"
grep -hE "unet step .*/|time budget|Error" $W/v/*.log | tail -4
for s in 0 1 2; do
  [ -d $W/v/c128/unet ] && run $T2 c128-demo-s$s "{\"steps\": $S, \"seed\": $s}" $W/v/c128 &
  [ -d $W/v/x128/unet ] && run $T2 x128-demo-s$s "{\"steps\": $S, \"seed\": $s}" $W/v/x128 &
done
run $T2 kv64-1e-3-s2 "{\"steps\": $S, \"seed\": 2, \"learning_rate\": 1e-3, \"lora\": {\"rank\": 64, $KV}}" &
run $T2 kv64-1e-3-600-s0 "{\"steps\": $((2*S)), \"seed\": 0, \"learning_rate\": 1e-3, \"lora\": {\"rank\": 64, $KV}}" &
run $T2 kv16-3e-3-s0 "{\"steps\": $S, \"seed\": 0, \"learning_rate\": 3e-3, \"lora\": {\"rank\": 16, $KV}}" &
run $T2 kv64-1e-3-noprior-s0 "{\"steps\": $S, \"seed\": 0, \"learning_rate\": 1e-3, \"prior_loss_weight\": 0, \"lora\": {\"rank\": 64, $KV}}" &
wait
echo "all took $(( $(date +%s) - T0 )) s"
$PY - "$W" "$OUT" <<'PY'
import json, sys, pathlib, statistics as st
w, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
keys = ["identity_plain", "identity_recontext", "identity_property", "background_followed", "colour_followed",
        "class_identity", "named_identity", "prior_shape_accuracy", "prior_colour_accuracy", "subject_fidelity", "pres", "seconds"]
runs = {}
for f in sorted((w / "sw").glob("*/results.json")):
    runs[f.parent.name] = json.loads(f.read_text())
(out / "summary.json").write_text(json.dumps(runs, indent=1))
groups = {}
for name, r in runs.items():
    groups.setdefault(name.rsplit("-s", 1)[0], []).append(r["scores"])
print("setting n " + " ".join(k[:10] for k in keys))
for g, rs in groups.items():
    print(f"{g:22} {len(rs)} " + " ".join(f"{st.mean(r[k] for r in rs):10.2f}" for k in keys))
missing = sorted(p.stem for p in (w / "sw").glob("*.log") if not (w / "sw" / p.stem / "results.json").is_file())
print("no result:", missing)
PY
pack() { [ -d $W/v/$1 ] && tar -cf $W/$1.tar --exclude=vae/diffusion_pytorch_model.safetensors -C $W/v $1 && split -b 15728640 -d $W/$1.tar $OUT/$1.tar.part; }
pack c128
{ for f in $W/v/*.log $W/sw/*.log; do echo "=== $f"; tail -c 3000 $f; done; } > $OUT/logs.txt
ls -la $OUT
