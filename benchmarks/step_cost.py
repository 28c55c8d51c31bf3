"""Step cost of each method as a ratio to plain fine-tuning, measured in one run.

For every method: median wall time of a training step (``method.step`` + AdamW step) and peak
memory, each divided by plain fine-tuning's, next to the method's count of forward/backward
passes.  Default model, batch 32 of real ``mr`` training sentences (the same batches, in the
same order, for every method).  Each method runs in a fresh worker process so peak memory is
its own: on CUDA ``torch.cuda.max_memory_allocated``, on CPU the process's peak RSS (which
includes the model, optimiser state and the Python runtime, so CPU memory ratios are diluted).

Targets (issue 3): every time ratio <= 1.05 × passes; YOPO cheaper than PGD with as many ascent
updates (``pgd``, 3 steps, vs ``yopo`` 2×3, whose (m − 1)·n = 3 δ-updates follow the first full
pass only; ``pgd-6`` is kept as the row an earlier reading compared with). VDA (issue 13): its
step (sparse top-64 mixture) costs <= 1.05 × (two classifier forward/backward passes + one MLM
forward), timed by hand in the same worker; ``vda-dense`` is the full-vocabulary mixture. VAA
(issue 16): its stage-two step costs <= 1.05 × (one training step of B + two forwards and one
backward to the embeddings of A), each part timed on its own in the same worker on the same
batches (A and B both the default model).

    python benchmarks/step_cost.py [--steps 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# name → (method, options, objective).  ``pgd`` (3 steps) has as many ascent updates as
# ``yopo`` (2 outer × 3 inner: 3 updates after the first pass, none after the last).
# Objective rows are compared with their adversary's row.
CONFIGS: dict[str, tuple[str, dict, str]] = {
    "none": ("none", {}, "ce"),
    "fgsm": ("fgsm", {}, "ce"),
    "fgm": ("fgm", {}, "ce"),
    "pgd": ("pgd", {}, "ce"),
    "pgd-6": ("pgd", {"steps": 6}, "ce"),
    "freeat": ("freeat", {}, "ce"),
    "yopo": ("yopo", {}, "ce"),
    "freelb": ("freelb", {}, "ce"),
    "smart": ("smart", {}, "ce"),
    "freelb+carl": ("freelb", {}, "carl"),
    "freelb+rar": ("freelb", {}, "rar"),
    "fgm+atcl": ("fgm", {}, "atcl"),
    "vaa": ("vaa", {}, "ce"),
    "vaa-position": ("vaa", {"placement": "position"}, "ce"),
    "vda": ("vda", {}, "ce"),
    "vda-dense": ("vda", {"top_k": 0}, "ce"),
    "freelb+vda": ("freelb", {}, "vda"),
    "smart+vda": ("smart", {}, "vda"),
}


def masked_lm(model_name: str):
    """The built MLM where there is one, else the model with a random MLM head: the same
    architecture and cost (only the cost is measured here)."""
    from transformers import AutoTokenizer, BertForMaskedLM

    from advembed.mlm.load import built_mlm_dir
    from advembed.models import resolve_model

    path = built_mlm_dir() if (built_mlm_dir() / "config.json").is_file() else (
        resolve_model(model_name))
    return BertForMaskedLM.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def vda_reference_s(model, mlm, batches, optimizer, warmup: int) -> float:
    """Median time of VDA's limit done by hand: two forward/backward passes of the classifier
    and one forward of the MLM, then the optimiser step."""
    import torch

    def step(batch):
        with torch.no_grad():
            mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        (model(**batch).loss + model(**batch).loss).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return median_step_s(step, batches, warmup)


def median_step_s(step, batches, warmup: int) -> float:
    """Median wall time of ``step(batch)`` over ``batches`` after ``warmup`` (synchronised)."""
    times = []
    for index, batch in enumerate(batches):
        sync(batch)
        started = time.perf_counter()
        step(batch)
        sync(batch)
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def vaa_reference_s(model, batches, optimizer, warmup: int) -> float:
    """Median time of VAA's parts done by hand: a training step of B, then A's clean forward,
    its backward to the embeddings (FGSM on A's prediction) and A's adversarial forward."""
    import torch

    def step(batch):
        model.model_b(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        inputs = {k: v for k, v in batch.items() if k not in ("input_ids", "labels")}
        x = model.model_a.get_input_embeddings()(batch["input_ids"]).detach().requires_grad_()
        logits = model.model_a(inputs_embeds=x, **inputs).logits
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(-1))
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            model.model_a(inputs_embeds=x + 0.02 * grad, **inputs)

    return median_step_s(step, batches, warmup)


def sync(batch) -> None:
    import torch

    if batch["input_ids"].is_cuda:
        torch.cuda.synchronize()


def worker(name: str, steps: int, warmup: int, batch_size: int, model_name: str) -> dict:
    import torch
    from transformers import DataCollatorWithPadding

    from advembed.data import load_dataset
    from advembed.encoding import EncodedDataset
    from advembed.methods import build_training_method
    from advembed.models import load_classifier

    torch.manual_seed(0)
    data = load_dataset("mr")
    loaded = load_classifier(model_name, data.label_names)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = loaded.model.to(device)
    model.train()
    examples = data.splits["train"][: batch_size * (steps + warmup)]
    encoded = EncodedDataset(examples, loaded.tokenizer, max_length=128)
    collate = DataCollatorWithPadding(loaded.tokenizer)
    batches = []
    for start in range(0, len(encoded), batch_size):
        batch = collate([encoded[i] for i in range(start, start + batch_size)])
        batches.append({key: value.to(device) for key, value in batch.items()})
    method_name, options, objective_name = CONFIGS[name]
    objective = None
    if objective_name not in ("ce", "vda"):
        from advembed.objectives import build_objective

        extra = {"warmup": 0.0} if objective_name == "carl" else {}
        objective = build_objective(objective_name, model, tokenizer=loaded.tokenizer,
                                    train_labels=[e.label for e in examples], **extra)
        start = 0
        for batch in batches:
            size = len(batch["labels"])
            batch["example_index"] = torch.arange(start, start + size, device=device)
            start += size
        if objective_name == "carl":  # time the active phase: banks already full
            objective.fill_banks(model, [dict(batch) for batch in batches])
    if method_name == "vaa":
        from advembed.methods import VAASettings
        from advembed.vaa.model import VulnerabilityAwareModel

        placement = options.get("placement", VAASettings().placement)
        model = VulnerabilityAwareModel.from_model_a(model, placement=placement).to(device)
    augment = mlm = None
    if method_name == "vda" or objective_name == "vda":
        from advembed.vda import VDASettings, VirtualAugmenter

        mlm, mlm_tokenizer = masked_lm(model_name)
        vda = options if method_name == "vda" else {}
        augment = VirtualAugmenter(model, VDASettings(**vda), mlm=mlm.to(device),
                                   special_ids=mlm_tokenizer.all_special_ids)
        options = {} if method_name == "vda" else options
        objective = None
    method = build_training_method(method_name, model, objective=objective, augment=augment,
                                   **options)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=2e-5)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if method.replays > 1:  # FreeAT: each minibatch is replayed; one replay is one step
        batches = [batch for batch in batches for _ in range(method.replays)][: len(batches)]

    def step(batch):
        method.step(model, batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    median = median_step_s(step, batches, warmup)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"name": name, "passes": method.passes, "median_s": median,
              "peak_bytes": peak, "device": str(device)}
    if method_name == "vaa":
        result["reference_s"] = vaa_reference_s(model, batches, optimizer, warmup)
    if method_name == "vda":
        result["vda_reference_s"] = vda_reference_s(model, mlm, batches, optimizer, warmup)
    return result


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=_positive, default=10, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="default")
    parser.add_argument("--methods", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--json", action="store_true", help="print one JSON list only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.warmup, args.batch_size,
                                args.model)))
        return 0
    names = ["none"] + [m for m in args.methods if m != "none"]
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    results = {}
    for name in names:
        process = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--steps", str(args.steps),
             "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
             "--model", args.model],
            capture_output=True, text=True, env=env,
        )
        if process.returncode != 0:
            sys.exit(f"worker {name} failed:\n{process.stderr[-3000:]}")
        results[name] = json.loads(process.stdout.strip().splitlines()[-1])
        if not args.json:
            print(f"measured {name}: {results[name]['median_s']:.3f} s/step", file=sys.stderr)
    base = results["none"]
    rows = [
        {
            "method": name,
            "passes": r["passes"],
            "time_ratio": round(r["median_s"] / base["median_s"], 3),
            "memory_ratio": round(r["peak_bytes"] / base["peak_bytes"], 3),
        }
        for name, r in results.items()
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"device {base['device']}, batch {args.batch_size}, median of {args.steps} steps; "
          f"plain step {base['median_s']:.3f} s")
    print(f"{'method':12} {'passes':>6} {'time x':>7} {'target':>7} {'memory x':>8}  ok")
    for row in rows:
        target = 1.05 * row["passes"]
        ok = "yes" if row["time_ratio"] <= target else "NO"
        print(f"{row['method']:12} {row['passes']:>6g} {row['time_ratio']:>7.2f} {target:>7.2f} "
              f"{row['memory_ratio']:>8.2f}  {ok}")
    for name in results:
        if "+" in name and name.split("+")[0] in results:
            extra = results[name]["median_s"] / results[name.split("+")[0]]["median_s"] - 1
            target = "" if name.endswith("+vda") else " (target <= 10%)"
            print(f"{name}: {name.split('+')[1]} adds {100 * extra:.0f}% to "
                  f"{name.split('+')[0]}'s step{target}")
    references = {"reference_s": "its parts by hand (B step + 2 A forwards + 1 A backward)",
                  "vda_reference_s": "its limit by hand (2 classifier forward/backward + 1 MLM "
                                     "forward)"}
    for key, parts in references.items():
        for name in (n for n in results if key in results[n]):
            ratio = results[name]["median_s"] / results[name][key]
            print(f"{name}: step {results[name]['median_s']:.3f} s, {parts} "
                  f"{results[name][key]:.3f} s: x{ratio:.2f} (target <= 1.05) "
                  f"{'yes' if ratio <= 1.05 else 'NO'}")
    if "yopo" in results and "pgd" in results:
        cheaper = results["yopo"]["median_s"] < results["pgd"]["median_s"]
        print(f"yopo (3 ascent updates) cheaper than pgd (3 steps): {'yes' if cheaper else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
