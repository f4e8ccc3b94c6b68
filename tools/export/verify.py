#!/usr/bin/env python3
"""verify.py - runs an exported expert directory in onnxruntime with a greedy loop (embed_tokens +
decoder_model_merged with the KV cache, the way HF generate does it) on the cases of an hf-reference
reference.json, with inputs built by transformers' own processor loaded from the exported files.

  python verify.py --model DIR --reference REF_DIR [--dtypes fp16,q4f16,...]
                   [--hf-checkpoint CKPT [--granularity K --expert-key-pattern P --expert-key-replacement R]]

Prints one JSON report on stdout and exits 0 when
  * the fp32 graphs give reference.json's greedyNewTokenIds exactly on every exact case (without --hf-checkpoint),
  * or, with --hf-checkpoint, the same tokens as HF generate on that checkpoint (copy K of a granularity
    checkpoint) on every exact case,
  * and every variant in --dtypes loads and generates a non-empty run of valid token ids on every case.
Variants are not compared token for token (4- and 8-bit weights change greedy paths): their first-step logit
difference to fp32 is reported.
"""
import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort
from PIL import Image

from variants import DTYPES, suffix

def torchvision_loads():
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - a CUDA build next to a CPU torch fails with RuntimeError, not ImportError
        return False
    return True


def load_processor(model_dir, kind):
    """transformers' processor for the exported folder, with the PIL image processor: the hf-reference outputs
    were made with it, whatever backend AutoProcessor would pick."""
    from transformers import AutoTokenizer
    if kind == "instructblip":
        from transformers import BlipImageProcessorPil, InstructBlipProcessor
        processor = InstructBlipProcessor.from_pretrained(model_dir)
        processor.image_processor = BlipImageProcessorPil.from_pretrained(model_dir)
        return processor
    from transformers import LlavaOnevisionImageProcessorPil, LlavaOnevisionProcessor
    image_processor = LlavaOnevisionImageProcessorPil.from_pretrained(model_dir)
    if torchvision_loads():
        processor = LlavaOnevisionProcessor.from_pretrained(model_dir)
        processor.image_processor = image_processor
        return processor
    # without a working torchvision transformers cannot build the video processor, which images never use: the
    # processor is assembled from the exported files without one
    class ImageOnlyProcessor(LlavaOnevisionProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name != "video_processor":
                super().check_argument_for_proper_class(argument_name, argument)

    with open(os.path.join(model_dir, "processor_config.json"), encoding="utf-8") as f:
        settings = json.load(f)
    with open(os.path.join(model_dir, "chat_template.jinja"), encoding="utf-8") as f:
        template = f.read()
    return ImageOnlyProcessor(
        image_processor=image_processor, tokenizer=AutoTokenizer.from_pretrained(model_dir), video_processor=None,
        chat_template=template,
        **{k: settings[k] for k in ("num_image_tokens", "vision_feature_select_strategy", "vision_aspect_ratio")
           if k in settings})


def case_inputs(processor, kind, reference_dir, case):
    images = [Image.open(os.path.join(reference_dir, p)).convert("RGB") for p in case["images"]]
    prompts = case["prompt"] if isinstance(case["prompt"], list) else [case["prompt"]]
    batch = isinstance(case["prompt"], list)
    if kind == "instructblip":
        return processor(images=images, text=case["prompt"], padding=batch, return_tensors="pt")

    def conversation(prompt, n_images):
        return [{"role": "user", "content": [{"type": "image"}] * n_images + [{"type": "text", "text": prompt}]}]
    if batch:
        texts = [processor.apply_chat_template(conversation(p, 1), add_generation_prompt=True) for p in prompts]
        side, processor.tokenizer.padding_side = processor.tokenizer.padding_side, "left"
        try:
            return processor(images=images, text=texts, padding=True, return_tensors="pt")
        finally:
            processor.tokenizer.padding_side = side
    text = processor.apply_chat_template(conversation(prompts[0], len(images)), add_generation_prompt=True)
    # several images of ONE prompt go nested: a flat list would send each down the single-image anyres path
    return processor(images=[images] if len(images) > 1 else images, text=text, return_tensors="pt")


# ---------------------------------------------------------------------------------------------- onnxruntime
def sessions(model_dir, graphs, dtype):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return {g: ort.InferenceSession(os.path.join(model_dir, "onnx", f"{g}{suffix(dtype)}.onnx"), options,
                                    providers=["CPUExecutionProvider"]) for g in graphs}


def run(session, feeds):
    """Feeds float tensors in the graph's own float type and returns float32 (fp16 graphs may keep fp16 I/O)."""
    kinds = {x.name: x.type for x in session.get_inputs()}
    cast = {k: v.astype(np.float16 if kinds.get(k) == "tensor(float16)" else np.float32)
            if v.dtype in (np.float32, np.float16) else v for k, v in feeds.items()}
    return [o.astype(np.float32) if o.dtype == np.float16 else o for o in session.run(None, cast)]


def kv_shape(text_config):
    d = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
    return text_config.num_hidden_layers, text_config.num_key_value_heads, d


def greedy(s, embeds, attention_mask, text_config, eos_ids, pad_id, max_new):
    """position_ids = cumsum(attention_mask) - 1 (pads -> 0), then last position + 1 per step."""
    batch = embeds.shape[0]
    layers, heads, d = kv_shape(text_config)
    mask = attention_mask.astype(np.int64)
    pos = np.cumsum(mask, -1) - 1
    pos[mask == 0] = 0
    feeds = {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": pos}
    for i in range(layers):
        for k in ("key", "value"):
            feeds[f"past_key_values.{i}.{k}"] = np.zeros((batch, heads, 0, d), np.float32)
    out_ids, done, first_logits = [[] for _ in range(batch)], [False] * batch, None
    for _ in range(max_new):
        outs = run(s["decoder_model_merged"], feeds)
        logits = outs[0][:, -1]
        first_logits = logits.copy() if first_logits is None else first_logits
        nxt = logits.argmax(-1)
        for b in range(batch):
            if done[b]:
                nxt[b] = pad_id
            else:
                out_ids[b].append(int(nxt[b]))
                done[b] = int(nxt[b]) in eos_ids
        if all(done):
            break
        emb = run(s["embed_tokens"], {"input_ids": nxt[:, None].astype(np.int64)})[0]
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], 1)
        feeds = {"inputs_embeds": emb, "attention_mask": mask, "position_ids": feeds["position_ids"][:, -1:] + 1}
        for i in range(layers):
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = outs[1 + 2 * i], outs[2 + 2 * i]
    return out_ids, first_logits


def scatter(embeds, input_ids, token_id, features):
    """masked_scatter order: features fill the placeholder positions row by row."""
    out = embeds.copy()
    where = np.argwhere(input_ids == token_id)
    if len(where) != features.shape[0]:
        raise ValueError(f"{len(where)} image tokens but {features.shape[0]} feature rows")
    for k, (b, t) in enumerate(where):
        out[b, t] = features[k]
    return out


def bilinear(x, out_h, out_w):
    """torch interpolate(mode='bilinear', align_corners=False, antialias=False) for x[C,H,W]."""
    _, h, w = x.shape

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)
    y0, y1, ly = axis(h, out_h)
    x0, x1, lx = axis(w, out_w)
    top = x[:, y0][:, :, x0] * (1 - lx) + x[:, y0][:, :, x1] * lx
    bottom = x[:, y1][:, :, x0] * (1 - lx) + x[:, y1][:, :, x1] * lx
    return (top * (1 - ly)[None, :, None] + bottom * ly[None, :, None]).astype(np.float32)


def onevision_pack(features, image_size, multi, config):
    """LlavaOnevisionModel.pack_image_features for ONE image's crops [n_crops, N+1, D] (row N = image_newline)."""
    from transformers.image_processing_utils import select_best_resolution
    if multi:
        return features[0]
    n = features.shape[1] - 1
    crop = config.vision_config.image_size
    side = int(math.isqrt(n))
    newline, base = features[0, n], features[0, :n]
    gh, gw = (v // crop for v in select_best_resolution(list(image_size), config.image_grid_pinpoints))
    grid = features[1:1 + gh * gw, :n].reshape(gh, gw, side, side, -1)
    grid = grid.transpose(4, 0, 2, 1, 3).reshape(-1, gh * side, gw * side)
    oh, ow = image_size
    ch, cw = grid.shape[1:]
    if ow / oh > cw / ch:
        cut = (ch - int(round(oh * (cw / ow), 7))) // 2
        grid = grid[:, cut:ch - cut, :]
    else:
        cut = (cw - int(round(ow * (ch / oh), 7))) // 2
        grid = grid[:, :, cut:cw - cut]
    ch, cw = grid.shape[1:]
    max_patches = int(config.vision_aspect_ratio.replace("anyres_max_", "")) if "anyres_max_" in \
        str(getattr(config, "vision_aspect_ratio", "")) else 9
    ratio = math.sqrt(ch * cw / (max_patches * side ** 2))
    if ratio > 1.1:
        grid = bilinear(grid, int(ch // ratio), int(cw // ratio))
    dim = grid.shape[0]
    grid = np.concatenate([grid, np.broadcast_to(newline[:, None, None], (dim, grid.shape[1], 1))], axis=2)
    return np.concatenate([base, grid.reshape(dim, -1).T], 0)


def onevision_features(s, inputs, config):
    from transformers.image_processing_utils import select_best_resolution
    pixels, sizes = inputs["pixel_values"].numpy(), inputs["image_sizes"].numpy()
    features, k = [], 0
    for n in inputs["batch_num_images"].tolist():
        for _ in range(n):
            size = tuple(int(v) for v in sizes[k])
            crops = 1
            if n == 1:
                gh, gw = (v // config.vision_config.image_size
                          for v in select_best_resolution(list(size), config.image_grid_pinpoints))
                crops = 1 + gh * gw
            f = run(s["vision_encoder"], {"pixel_values": pixels[k, :crops].astype(np.float32)})[0]
            features.append(onevision_pack(f, size, n > 1, config))
            k += 1
    return np.concatenate(features, 0)


def instructblip_features(s, inputs):
    image = run(s["vision_encoder"], {"pixel_values": inputs["pixel_values"].numpy()})[0]
    features = run(s["qformer"], {"image_embeds": image, "qformer_input_ids": inputs["qformer_input_ids"].numpy(),
                                  "qformer_attention_mask": inputs["qformer_attention_mask"].numpy()})[0]
    return features.reshape(-1, features.shape[-1])


def onnx_case(s, kind, inputs, config, eos_ids, pad_id, max_new):
    features = instructblip_features(s, inputs) if kind == "instructblip" else onevision_features(s, inputs, config)
    ids = inputs["input_ids"].numpy()
    embeds = scatter(run(s["embed_tokens"], {"input_ids": ids})[0], ids, config.image_token_index, features)
    return greedy(s, embeds, inputs["attention_mask"].numpy(), config.text_config, eos_ids, pad_id, max_new)


def hf_case(model, inputs, eos_ids, max_new):
    import torch
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new, do_sample=False, num_beams=1)
    rows = []
    for row in out[:, inputs["input_ids"].shape[1]:].tolist():
        ids = []
        for t in row:
            ids.append(t)
            if t in eos_ids:
                break
        rows.append(ids)
    return rows


def hf_model(checkpoint, kind, copy, pattern, replacement):
    import export
    import granularity
    if copy is None:
        return export.load_model(checkpoint, kind)
    state = granularity.load_state_dict(checkpoint)
    _, select = granularity.split_copies(state, pattern, replacement)
    with tempfile.TemporaryDirectory() as scratch:
        return export.load_model(granularity.write_copy(checkpoint, select(copy), scratch), kind)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="exported expert directory")
    ap.add_argument("--reference", required=True, help="folder with reference.json and images/ (hf-reference)")
    ap.add_argument("--dtypes", default="", help="variants to load and run besides fp32, comma-separated, or all")
    ap.add_argument("--hf-checkpoint",
                    help="compare fp32 with HF generate on this checkpoint instead of reference.json")
    ap.add_argument("--granularity", type=int, help="with --hf-checkpoint: the MLP copy to load")
    ap.add_argument("--expert-key-pattern", default="mlp.{k}.")
    ap.add_argument("--expert-key-replacement", default="mlp.")
    a = ap.parse_args(argv)
    import torch
    from transformers import AutoConfig, GenerationConfig
    from transformers.utils import logging as hf_logging
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(a.model)
    kind = config.model_type
    generation = GenerationConfig.from_pretrained(a.model)
    eos = generation.eos_token_id
    eos_ids = eos if isinstance(eos, list) else [eos]
    pad_id = generation.pad_token_id if generation.pad_token_id is not None else eos_ids[0]
    graphs = ["vision_encoder", "embed_tokens", "decoder_model_merged"]
    if kind == "instructblip":
        graphs.append("qformer")
    with open(os.path.join(a.reference, "reference.json"), encoding="utf-8") as f:
        reference = json.load(f)
    processor = load_processor(a.model, kind)
    cases = [(c, case_inputs(processor, kind, a.reference, c)) for c in reference["cases"]]

    def rows(value):
        return value if isinstance(value[0], list) else [value]

    report = {"model": os.path.abspath(a.model), "kind": kind, "cases": [], "variants": {}}
    fp32 = sessions(a.model, graphs, "fp32")
    hf = hf_model(a.hf_checkpoint, kind, a.granularity, a.expert_key_pattern, a.expert_key_replacement) \
        if a.hf_checkpoint else None
    baseline, ok = {}, True
    for case, inputs in cases:
        tokens, first = onnx_case(fp32, kind, inputs, config, eos_ids, pad_id, case["maxNewTokens"])
        baseline[case["id"]] = first
        expected = hf_case(hf, inputs, eos_ids, case["maxNewTokens"]) if hf else rows(case["greedyNewTokenIds"])
        line = {"id": case["id"], "exact": case["exact"], "expected": expected, "fp32": tokens,
                "equal": tokens == expected}
        # HF runs on the very same inputs, so every case must match it; reference.json holds exact cases only
        ok = ok and (line["equal"] or (not case["exact"] and hf is None))
        report["cases"].append(line)
    vocab = config.text_config.vocab_size
    variants = DTYPES if a.dtypes == "all" else [d.strip() for d in a.dtypes.split(",") if d.strip()]
    for dtype in [d for d in variants if d != "fp32"]:
        entry = {"loads": False, "cases": {}}
        report["variants"][dtype] = entry
        try:
            s = sessions(a.model, graphs, dtype)
        except Exception as error:  # noqa: BLE001 - reported, not raised: the report names every broken variant
            entry["error"] = str(error).splitlines()[0]
            ok = False
            continue
        entry["loads"] = True
        for case, inputs in cases:
            tokens, first = onnx_case(s, kind, inputs, config, eos_ids, pad_id, case["maxNewTokens"])
            generated = all(len(r) > 0 and all(0 <= t < vocab for t in r) for r in tokens)
            ok = ok and generated
            entry["cases"][case["id"]] = {
                "tokens": tokens, "generated": generated,
                "firstStepLogitsMaxAbsDiff": round(float(np.abs(first - baseline[case["id"]]).max()), 5)}
    report["ok"] = ok
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
