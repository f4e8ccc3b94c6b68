#!/usr/bin/env python3
"""make_granularity_fixture.py - a tiny RSUniVLM-style "tripled-MLP" checkpoint for testing
`export.py --granularity-experts`.

From a LLaVA-OneVision checkpoint (the hf-reference tiny model): every decoder MLP tensor
`...layers.{i}.mlp.<proj>` becomes three copies `...layers.{i}.mlp.{k}.<proj>` (RSUniVLM's nn.ModuleList
naming); copy 0 is the original, copies 1 and 2 get seeded Gaussian perturbations so the three experts differ.
Every other file of the checkpoint (config, processor, tokenizer) is copied unchanged.

  python make_granularity_fixture.py --checkpoint shared/models/hf-reference/llava-onevision-tiny --out DIR
"""
import argparse
import os
import re
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

MLP = re.compile(r"^(.*\.layers\.\d+\.)mlp\.(.*)$")
COPIES = 3
NOISE = 0.5  # times each tensor's own standard deviation: enough to change the greedy tokens


def tripled(state):
    out = {}
    for key, tensor in state.items():
        m = MLP.match(key)
        if not m or "language_model" not in key:
            out[key] = tensor
            continue
        for k in range(COPIES):
            g = torch.Generator().manual_seed(1000 + k)
            noise = torch.randn(tensor.shape, generator=g) * tensor.float().std() * NOISE
            copy = tensor if k == 0 else tensor + noise.to(tensor.dtype)
            out[f"{m.group(1)}mlp.{k}.{m.group(2)}"] = copy.contiguous()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in os.listdir(a.checkpoint):
        src = os.path.join(a.checkpoint, name)
        if os.path.isfile(src) and name not in ("model.safetensors", "reference.json"):
            shutil.copyfile(src, os.path.join(a.out, name))
    state = tripled(load_file(os.path.join(a.checkpoint, "model.safetensors")))
    save_file(state, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    print(f"{a.out}: {sum(1 for k in state if '.mlp.0.' in k)} MLP tensors x {COPIES} copies", file=sys.stderr)


if __name__ == "__main__":
    main()
