"""RSUniVLM-style granularity experts: a LLaVA-OneVision checkpoint whose decoder layers hold several MLP copies
(RSUniVLM's Qwen2GMoEDecoderLayer: `self.mlp = nn.ModuleList([Qwen2MLP(config) for _ in range(3)])`, picked by a
`granularity` index: 0 image-level, 1 region-level, 2 pixel-level). Copy k becomes a standard checkpoint by keeping
the keys of copy k under the single-MLP name and dropping the other copies."""
import json
import os
import re
import shutil

from safetensors.torch import load_file, save_file

DEFAULT_PATTERN = "mlp.{k}."
DEFAULT_REPLACEMENT = "mlp."
DEFAULT_NAMES = ("image", "region", "pixel")


class GranularityError(Exception):
    pass


def checkpoint_files(checkpoint):
    index = os.path.join(checkpoint, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return sorted({os.path.join(checkpoint, v) for v in json.load(f)["weight_map"].values()})
    single = os.path.join(checkpoint, "model.safetensors")
    if os.path.exists(single):
        return [single]
    raise GranularityError(f"{checkpoint}: no model.safetensors (or model.safetensors.index.json)")


def key_regex(pattern):
    if pattern.count("{k}") != 1:
        raise GranularityError(f"--expert-key-pattern {pattern!r} must contain {{k}} exactly once")
    before, after = (re.escape(part) for part in pattern.split("{k}"))
    return re.compile(f"(^|\\.){before}(\\d+){after}")


def load_state_dict(checkpoint):
    state = {}
    for file in checkpoint_files(checkpoint):
        state.update(load_file(file))
    return state


def split_copies(state, pattern, replacement):
    """{k: number of keys} of the copies found, and a function giving copy k's state dict."""
    regex = key_regex(pattern)
    counts = {}
    for key in state:
        m = regex.search(key)
        if m:
            counts[int(m.group(2))] = counts.get(int(m.group(2)), 0) + 1

    def select(k):
        out = {}
        for key, tensor in state.items():
            m = regex.search(key)
            if m is None:
                out[key] = tensor
            elif int(m.group(2)) == k:
                out[key[:m.start()] + m.group(1) + replacement + key[m.end():]] = tensor
        return out
    return counts, select


def check_copies(counts, names, pattern, checkpoint):
    if not counts:
        raise GranularityError(f"{checkpoint}: no weight key matches --expert-key-pattern {pattern!r} "
                               "(expected keys such as language_model.model.layers.0.mlp.0.gate_proj.weight)")
    if sorted(counts) != list(range(len(names))):
        raise GranularityError(f"{checkpoint}: found MLP copies {sorted(counts)} for pattern {pattern!r}, "
                               f"expected {list(range(len(names)))} for experts {', '.join(names)}")
    if len(set(counts.values())) != 1:
        raise GranularityError(f"{checkpoint}: the MLP copies hold different numbers of tensors: {counts}")


def write_copy(checkpoint, state, scratch):
    """A standard single-MLP checkpoint folder (config.json + model.safetensors) that from_pretrained loads."""
    os.makedirs(scratch, exist_ok=True)
    shutil.copyfile(os.path.join(checkpoint, "config.json"), os.path.join(scratch, "config.json"))
    save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(scratch, "model.safetensors"),
              metadata={"format": "pt"})
    return scratch
