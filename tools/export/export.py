#!/usr/bin/env python3
"""export.py - a transformers checkpoint directory -> an expert directory the mesh serves.

The output is the onnx-community / transformers.js layout (see docs/model-layout.md and
shared/models/hf-reference/README.md):

  LLaVA-OneVision  onnx/vision_encoder.onnx, onnx/embed_tokens.onnx, onnx/decoder_model_merged.onnx
  InstructBLIP     onnx/vision_encoder.onnx, onnx/qformer.onnx, onnx/embed_tokens.onnx, onnx/decoder_model_merged.onnx

plus config.json, generation_config.json, processor_config.json, preprocessor_config.json, chat_template.jinja,
tokenizer.json, tokenizer_config.json (and qformer_tokenizer/ for InstructBLIP), and the precision variants asked
for with --dtypes (variants.py lists them).

  python export.py CHECKPOINT --out DIR [--dtypes fp32,fp16,q4f16,quantized] [--force]
  python export.py CHECKPOINT --out DIR --granularity-experts [--expert-names image,region,pixel]
                   [--expert-key-pattern 'mlp.{k}.' --expert-key-replacement 'mlp.']

--granularity-experts (RSUniVLM): the checkpoint's decoder layers hold one MLP copy per granularity; DIR/<name>/
is written for each copy, each a standard LLaVA-OneVision export whose decoder uses copy k, all sharing one
vision encoder (byte-identical files in every folder).

Run it with the venv made by tools/export/setup-venv.sh: .venv-export/bin/python tools/export/export.py ...
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch
from transformers import AutoConfig, AutoTokenizer
from transformers.utils import logging as hf_logging

import granularity
import onnx_graphs
from variants import DTYPES, make_variants, suffix

KINDS = {
    "llava_onevision": {
        "class": "LlavaOnevisionForConditionalGeneration",
        "graphs": ["vision_encoder", "embed_tokens", "decoder_model_merged"],
    },
    "instructblip": {
        "class": "InstructBlipForConditionalGeneration",
        "graphs": ["vision_encoder", "qformer", "embed_tokens", "decoder_model_merged"],
    },
}
# copied byte for byte when the checkpoint has them; the missing ones are made (write_model_files)
MODEL_FILES = ["config.json", "generation_config.json", "processor_config.json", "preprocessor_config.json",
               "chat_template.jinja", "chat_template.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json"]
DEFAULT_DTYPES = "fp32,fp16,q4f16,quantized"


class ExportError(Exception):
    pass


def log(message):
    print(f"export: {message}", file=sys.stderr, flush=True)


def model_kind(checkpoint):
    if not os.path.isfile(os.path.join(checkpoint, "config.json")):
        raise ExportError(f"{checkpoint}: no config.json (not a transformers checkpoint directory)")
    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type not in KINDS:
        raise ExportError(f"{checkpoint}: model_type {config.model_type!r} is not supported "
                          f"(supported: {', '.join(KINDS)})")
    if config.model_type == "instructblip" and not config.use_decoder_only_language_model:
        raise ExportError(f"{checkpoint}: InstructBLIP with an encoder-decoder language model (Flan-T5) is not "
                          "supported: the mesh runs decoder-only LLMs")
    return config.model_type


def load_model(checkpoint, kind, label=None):
    """The model in float32; `label` names the checkpoint in errors when `checkpoint` is a scratch copy."""
    import transformers
    cls = getattr(transformers, KINDS[kind]["class"])
    # float32 whatever the checkpoint's dtype (variants are made from the fp32 graphs); eager attention traces the
    # padding mask exactly as HF computes it
    model, info = cls.from_pretrained(checkpoint, dtype=torch.float32, attn_implementation="eager",
                                      output_loading_info=True)
    # from_pretrained only warns about missing weights (it initialises them at random): an export must refuse
    problems = [f"{len(info[k])} {k.replace('_', ' ')} (e.g. {sorted(map(str, info[k]))[0]})"
                for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)]
    if problems:
        copies = granularity.key_regex(granularity.DEFAULT_PATTERN)
        hint = ""
        if any(copies.search(str(k)) for k in info["unexpected_keys"]):
            hint = " - a checkpoint with several MLP copies per layer needs --granularity-experts"
        raise ExportError(f"{label or checkpoint}: the weights do not fit {KINDS[kind]['class']}: "
                          f"{'; '.join(problems)}{hint}")
    return model.eval()


def parse_dtypes(text):
    dtypes = list(DTYPES) if text == "all" else [d.strip() for d in text.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown:
        raise ExportError(f"--dtypes: unknown {', '.join(unknown)} (known: {', '.join(DTYPES)} or all)")
    return ["fp32"] + [d for d in dtypes if d != "fp32"]


def prepare_out(out, force):
    if os.path.isdir(out) and os.listdir(out):
        if not force:
            raise ExportError(f"--out {out} is not empty: use --force to replace its onnx/ folder and model files")
        shutil.rmtree(os.path.join(out, "onnx"), ignore_errors=True)
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)


def write_model_files(model, kind, checkpoint, out):
    for name in MODEL_FILES:
        if os.path.isfile(os.path.join(checkpoint, name)):
            shutil.copyfile(os.path.join(checkpoint, name), os.path.join(out, name))
    if kind == "instructblip":
        src = os.path.join(checkpoint, "qformer_tokenizer")
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(out, "qformer_tokenizer"), dirs_exist_ok=True)
        else:
            from transformers import InstructBlipProcessor
            InstructBlipProcessor.from_pretrained(checkpoint).qformer_tokenizer.save_pretrained(
                os.path.join(out, "qformer_tokenizer"))
    if not os.path.exists(os.path.join(out, "generation_config.json")):
        model.generation_config.save_pretrained(out)
    if not os.path.exists(os.path.join(out, "tokenizer.json")):
        with tempfile.TemporaryDirectory() as scratch:
            AutoTokenizer.from_pretrained(checkpoint).save_pretrained(scratch)
            for name in ("tokenizer.json", "tokenizer_config.json"):
                if not os.path.exists(os.path.join(out, name)):
                    shutil.copyfile(os.path.join(scratch, name), os.path.join(out, name))
    processor_config = read_json(os.path.join(out, "processor_config.json"))
    if not os.path.exists(os.path.join(out, "preprocessor_config.json")) and "image_processor" in processor_config:
        write_json(os.path.join(out, "preprocessor_config.json"), processor_config["image_processor"])
    # transformers 5 keeps the chat template in chat_template.jinja; older checkpoints carry it elsewhere
    if kind == "llava_onevision" and not os.path.exists(os.path.join(out, "chat_template.jinja")):
        template = read_json(os.path.join(out, "chat_template.json")).get("chat_template") or \
            read_json(os.path.join(out, "tokenizer_config.json")).get("chat_template")
        if isinstance(template, str):
            with open(os.path.join(out, "chat_template.jinja"), "w", encoding="utf-8") as f:
                f.write(template)
    missing = [n for n in ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json")
               if not os.path.exists(os.path.join(out, n))]
    if missing:
        raise ExportError(f"{checkpoint}: cannot find or make {', '.join(missing)}")


def mark_external_data(out, graphs, dtypes):
    """transformers.js only fetches `<graph>.onnx_data` when config.json says the graph has one."""
    external = {f"{g}{suffix(d)}.onnx": 1 for g in graphs for d in dtypes
                if os.path.exists(os.path.join(out, "onnx", f"{g}{suffix(d)}.onnx_data"))}
    if external:
        config = read_json(os.path.join(out, "config.json"))
        config.setdefault("transformers.js_config", {})["use_external_data_format"] = external
        write_json(os.path.join(out, "config.json"), config)


def read_json(path):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def export_expert(model, kind, checkpoint, out, dtypes, shared_vision_dir=None):
    """Writes one expert directory. With shared_vision_dir, the vision encoder files (all dtypes) are copied from
    that expert's onnx/ folder instead of being exported again, so experts share them byte for byte."""
    onnx_dir = os.path.join(out, "onnx")
    started = time.time()
    if shared_vision_dir:
        for dtype in dtypes:
            onnx_graphs.copy_graph(shared_vision_dir, onnx_dir, f"vision_encoder{suffix(dtype)}")
    else:
        vision = {"llava_onevision": onnx_graphs.export_onevision_vision,
                  "instructblip": onnx_graphs.export_instructblip_vision}[kind]
        vision(onnx_dir, model)
        make_variants(onnx_dir, ["vision_encoder"], dtypes)
    text = {"llava_onevision": onnx_graphs.export_onevision_text,
            "instructblip": onnx_graphs.export_instructblip_text}[kind]
    text(onnx_dir, model)
    make_variants(onnx_dir, [g for g in KINDS[kind]["graphs"] if g != "vision_encoder"], dtypes)
    write_model_files(model, kind, checkpoint, out)
    mark_external_data(out, KINDS[kind]["graphs"], dtypes)
    log(f"{out}: {len(KINDS[kind]['graphs'])} graphs x {len(dtypes)} dtypes in {time.time() - started:.1f} s")


def export_granularity_experts(checkpoint, out, dtypes, names, pattern, replacement, force):
    state = granularity.load_state_dict(checkpoint)
    counts, select = granularity.split_copies(state, pattern, replacement)
    granularity.check_copies(counts, names, pattern, checkpoint)
    log(f"{checkpoint}: {len(names)} MLP copies of {counts[0]} tensors each ({pattern!r} -> {replacement!r})")
    first = None
    for k, name in enumerate(names):
        expert_dir = os.path.join(out, name)
        prepare_out(expert_dir, force)
        with tempfile.TemporaryDirectory(dir=out) as scratch:
            model = load_model(granularity.write_copy(checkpoint, select(k), scratch), "llava_onevision",
                               label=f"{checkpoint} (MLP copy {k})")
        export_expert(model, "llava_onevision", checkpoint, expert_dir, dtypes,
                      shared_vision_dir=first and os.path.join(first, "onnx"))
        first = first or expert_dir


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint",
                    help="transformers checkpoint directory (config.json, *.safetensors, processor, tokenizer)")
    ap.add_argument("--out", required=True, help="expert directory to write (with --granularity-experts: their parent)")
    ap.add_argument("--dtypes", default=DEFAULT_DTYPES,
                    help=f"comma-separated, of {', '.join(DTYPES)}, or all (default {DEFAULT_DTYPES}); "
                         "fp32 is always written: the other variants are made from it")
    ap.add_argument("--force", action="store_true", help="write into a non-empty --out (its onnx/ folder is replaced)")
    ap.add_argument("--granularity-experts", action="store_true",
                    help="RSUniVLM: one expert directory per decoder MLP copy, sharing one vision encoder")
    ap.add_argument("--expert-names", default=",".join(granularity.DEFAULT_NAMES),
                    help="directory name of copy 0, 1, ... (default: image,region,pixel as RSUniVLM's granularity "
                         "index 0, 1, 2)")
    ap.add_argument("--expert-key-pattern", default=granularity.DEFAULT_PATTERN,
                    help="weight-key fragment of MLP copy {k} (default 'mlp.{k}.', RSUniVLM's nn.ModuleList: "
                         "language_model.model.layers.0.mlp.1.up_proj.weight)")
    ap.add_argument("--expert-key-replacement", default=granularity.DEFAULT_REPLACEMENT,
                    help="what the pattern becomes in the single-MLP model (default 'mlp.')")
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    hf_logging.disable_progress_bar()
    checkpoint, out = os.path.abspath(a.checkpoint), os.path.abspath(a.out)
    try:
        dtypes = parse_dtypes(a.dtypes)
        kind = model_kind(checkpoint)
        if a.granularity_experts:
            if kind != "llava_onevision":
                raise ExportError("--granularity-experts needs a LLaVA-OneVision checkpoint (RSUniVLM)")
            names = [n.strip() for n in a.expert_names.split(",") if n.strip()]
            os.makedirs(out, exist_ok=True)
            export_granularity_experts(checkpoint, out, dtypes, names, a.expert_key_pattern,
                                       a.expert_key_replacement, a.force)
        else:
            model = load_model(checkpoint, kind)
            prepare_out(out, a.force)
            export_expert(model, kind, checkpoint, out, dtypes)
    except (ExportError, granularity.GranularityError) as error:
        print(f"export: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
