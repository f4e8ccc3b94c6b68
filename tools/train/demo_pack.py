"""Export of the demo pack: expert model directories, router model, pack.json, goldens and README."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

import tiny_llava as tl
import random

import numpy as np

from demo_dense import DENSE_SIDE
from demo_data import ASPECTS, QUESTION_TYPES, SCENE_CLASSES, SCENE_NAMES, Dataset, class_map, read_png, to_pixel_values
from demo_model import (GRID, IMAGE_SIZE, ConvVisionEncoder, MaskWriterDecoder, DemoSizes, ExportableVlm, ExpertDecoder,
                        QuestionClassifier, SceneClassifier, SceneHead, count_parameters)
from demo_tasks import (EXPERT_ASPECT, EXPERT_PROMPTS, EXPERT_QUESTION_TYPES, GENERIC_PROMPTS, GRANULARITY, LABELS,
                        MASK_CELL_SHARE, MASK_GRID, MAX_BOXES, TASK_PROMPTS, TWO_IMAGE_TASKS, Encoder,
                        change_caption_task, change_mask_grid, change_mask_task, classification_task, grounding_task,
                        referring_task, render_template, segmentation_task)

# The experts of finer granularity read the dense encoder (demo_dense) when the pack has one.
FINE_EXPERTS = ("region", "pixel")

PACK_NAME = "rsmoe-demo"
PACK_VERSION = "1.0.0"
GOLDEN_IMAGES = 2
EXPERT_DESCRIPTIONS = {
    "theme": "Scene type and land use of the whole image; answers rural/urban and area-coverage questions.",
    "object": "Objects in the image: their types, colours, counts and places; answers presence and count questions.",
    "relation": "Spatial relations between objects; answers comparison questions.",
    "dense": "One dense model for every aspect and every question type (the ablation baseline).",
    "region": "Region level: visual grounding (object phrase -> boxes) and referring (box -> what is there).",
    "pixel": "Pixel level: segmentation of the queried classes and change masks between two images, as mask text.",
}
IMAGE_LEVEL_DESCRIPTION = ("Image level: scene type and land use of the whole image (rural/urban and area-coverage "
                           "questions), scene classification and change captions between two images.")
QUESTION_TYPE_RULES = [
    {"type": "rural_urban", "pattern": "\\b(rural|urban)\\b"},
    {"type": "area", "pattern": "\\barea\\b"},
    {"type": "comparison", "pattern": "\\b(more|less|fewer|equal)\\b.*\\b(than|to)\\b"},
    {"type": "count", "pattern": "^how many\\b"},
    {"type": "presence", "pattern": "^(is|are) there\\b"},
]


@dataclass
class PackInputs:
    out: str
    variant: str
    seed: int
    data_seed: int
    dataset: Dataset
    tok: tl.WordTokenizer
    enc: Encoder
    encoder: ConvVisionEncoder
    scene_head: SceneHead
    question_classifier: QuestionClassifier
    experts: Dict[str, ExpertDecoder]
    sizes: DemoSizes
    max_new_tokens: int
    task_max_new_tokens: Dict[str, int]
    validation: dict
    disjoint: dict
    schedule: dict
    times: Dict[str, float]
    started: float
    fine_encoder: Optional[torch.nn.Module] = None  # the region and pixel experts' own encoder (demo_dense)
    fine_report: Optional[dict] = None

    def encoder_of(self, name: str) -> Tuple[torch.nn.Module, int]:
        """An expert's vision encoder and its tokens per image side."""
        if self.fine_encoder is not None and name in FINE_EXPERTS:
            return self.fine_encoder, DENSE_SIDE
        return self.encoder, GRID


def max_new_tokens(ds: Dataset, tok: tl.WordTokenizer, dense: bool) -> int:
    """Longest training caption the model writes (aspect captions, or full references for dense) + EOS + margin."""
    texts = [r for s in ds.scenes for r in s.references] if dense else [c for s in ds.scenes for c in s.captions.values()]
    return max(len(tok.encode(t)) for t in texts) + 9


# libs/runtime's GenerationLimits (and libs/contracts' generation params) allow at most 512 new tokens.
RUNTIME_MAX_NEW_TOKENS = 512


def task_max_new_tokens(ds: Dataset, enc: Encoder, seed: int, samples: int = 1500) -> Dict[str, int]:
    """Most tokens (EOS included) an answer of each of RSUniVLM's tasks takes on training data (masks: the longest
    of ``samples`` drawn segmentation queries and of every training pair), with a margin."""
    rng = random.Random(seed)
    train = ds.indices("train")
    scenes = [ds.scenes[i] for i in rng.sample(train, min(samples, len(train)))]
    longest = {
        "classification": max(len(enc.answer_ids(c)) for c in LABELS["classification"]),
        "grounding": max(len(enc.answer_ids(t.answer)) for t in (grounding_task(0, s, rng) for s in scenes) if t),
        "referring": max(len(enc.answer_ids(t.answer)) for t in (referring_task(0, s, rng) for s in scenes) if t),
        "segmentation": max(len(enc.answer_ids(segmentation_task(0, class_map(s), s, rng).answer)) for s in scenes),
    }
    pairs = [ds.pairs[k] for k in ds.pair_indices("train")]
    longest["change_caption"] = max(len(enc.answer_ids(p.caption)) for p in pairs)
    longest["change_mask"] = max(len(enc.answer_ids(change_mask_task(0, 1, change_mask_grid(p)).answer)) for p in pairs)
    return {k: min(RUNTIME_MAX_NEW_TOKENS, v + max(8, v // 4)) for k, v in longest.items()}


def expert_max_new_tokens(p: "PackInputs", name: str) -> int:
    """generation maxNewTokens of an expert: the longest answer of its tasks."""
    tasks = {"theme": ["classification", "change_caption"], "region": ["grounding", "referring"],
             "pixel": ["segmentation", "change_mask"]}.get(name, [])
    own = [p.task_max_new_tokens[t] for t in tasks if t in p.task_max_new_tokens]
    if name in ("region", "pixel"):
        return max(own)
    return max([p.max_new_tokens] + own)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def expert_aspects(name: str) -> List[str]:
    if name in EXPERT_ASPECT:
        return [EXPERT_ASPECT[name]]
    return [] if name in GRANULARITY else ASPECTS


def export_expert(p: PackInputs, name: str, model_dir: str) -> ExportableVlm:
    encoder, side = p.encoder_of(name)
    model = ExportableVlm(encoder, p.experts[name], p.sizes.hidden_size if side != GRID else p.sizes.encoder_channels[-1], side).eval()
    os.makedirs(model_dir, exist_ok=True)
    tl.export_onnx(model, os.path.join(model_dir, "onnx"))
    config = model.cfg.to_hf_dict()
    config["vision_config"] = {
        "model_type": "rsmoe_conv" if side == GRID else "rsmoe_dense_conv", "image_size": IMAGE_SIZE, "num_channels": 3, "grid": side,
        "channels": list(p.sizes.encoder_channels), "hidden_size": p.sizes.encoder_channels[-1],
    }
    config["rsmoe"] = {
        "expert": name, "aspects": expert_aspects(name),
        "connector_layers": p.sizes.connector_layers,
        "connector": "the first decoder layer(s) attend to the whole prompt during prefill (prefix-LM), "
                     "so image positions are re-weighted by the instruction; later layers are causal",
    }
    if name in GRANULARITY:
        config["rsmoe"]["granularity"] = GRANULARITY[name]
    if isinstance(p.experts[name].decoder, MaskWriterDecoder):
        config["rsmoe"]["mask_grid"] = MASK_GRID
        config["rsmoe"]["mask_writer"] = (
            "embedding channels 0 and 1 are fixed: a token's count value and its label word id (object classes 1-13, "
            "changed 14), over 64. In the prefill call layer 0 stores in KV head 0's value channels 0-2 the answer "
            "counts, the image-token markers and the prompt's label word ids, and in KV head 1's values at image tokens "
            "the cell labels of the mask heads (segmentation; change against the first image's token when the prompt "
            "names `changed`), two per channel over 256. After layer 0 it adds embeddings of the next cell's label word "
            "(unqueried classes: others), run length, row and column, read from that cache")
    tl.write_json(os.path.join(model_dir, "config.json"), config)
    tl.write_json(os.path.join(model_dir, "generation_config.json"), tl.generation_config_dict(model.cfg, expert_max_new_tokens(p, name)))
    tl.write_json(os.path.join(model_dir, "preprocessor_config.json"), tl.preprocessor_config_dict(model.cfg))
    tl.write_json(os.path.join(model_dir, "tokenizer.json"), p.tok.tokenizer_json())
    tl.write_json(os.path.join(model_dir, "tokenizer_config.json"), tl.WordTokenizer.tokenizer_config_json())
    return model


def export_router(p: PackInputs, router_dir: str) -> None:
    os.makedirs(router_dir, exist_ok=True)
    common = dict(opset_version=14, do_constant_folding=True, export_params=True)
    with torch.no_grad():
        torch.onnx.export(SceneClassifier(p.encoder, p.scene_head).eval(), (torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE),),
                          os.path.join(router_dir, "scene_classifier.onnx"), input_names=["pixel_values"],
                          output_names=["scene_logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "scene_logits": {0: "batch"}}, **common)
        torch.onnx.export(p.question_classifier, (torch.ones(2, 7, dtype=torch.int64), torch.ones(2, 7, dtype=torch.int64)),
                          os.path.join(router_dir, "question_classifier.onnx"),
                          input_names=["input_ids", "attention_mask"], output_names=["question_type_logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "question_type_logits": {0: "batch"}}, **common)
    tl.write_json(os.path.join(router_dir, "tokenizer.json"), p.tok.tokenizer_json())
    tl.write_json(os.path.join(router_dir, "router.json"), {
        "scene_classifier": {
            "file": "scene_classifier.onnx",
            "inputs": {"pixel_values": {"type": "float32", "shape": ["batch", 3, IMAGE_SIZE, IMAGE_SIZE]}},
            "outputs": {"scene_logits": {"type": "float32", "shape": ["batch", len(SCENE_CLASSES)]}},
            "preprocessing": "preprocessor_config.json of this directory (the experts' own): RGB, resized to 128x128, x / 255, then (x - 0.5) / 0.5, channels first",
            "labels": SCENE_CLASSES,
            "scene_hints": [SCENE_NAMES[c] for c in SCENE_CLASSES],
            "note": "argmax over scene_logits; scene_hints[argmax] fills {scene} in the pack's prompt templates. "
                    "The graph holds the shared vision encoder (same weights as onnx/vision_encoder.onnx of every expert) "
                    "and a LayerNorm + Linear head on the mean of its 16 image features.",
        },
        "question_classifier": {
            "file": "question_classifier.onnx",
            "tokenizer": "tokenizer.json",
            "inputs": {"input_ids": {"type": "int64", "shape": ["batch", "seq"]},
                       "attention_mask": {"type": "int64", "shape": ["batch", "seq"]}},
            "outputs": {"question_type_logits": {"type": "float32", "shape": ["batch", len(QUESTION_TYPES)]}},
            "preprocessing": "the question alone (no chat template), encoded with tokenizer.json without special tokens; "
                             "right-pad with 0 and attention_mask 0; unknown words become <unk>",
            "labels": QUESTION_TYPES,
        },
    })


@torch.no_grad()
def greedy(model: ExportableVlm, ids: List[int], pixel_values: torch.Tensor, max_new_tokens: int) -> tl.GreedyResult:
    """tiny_llava.greedy_generate for a prompt with one or more images: the images' features, in prompt order, fill
    its image positions (each image is encoded on its own, as the runtime does)."""
    features = torch.cat([model.vision(pixel_values[i:i + 1]) for i in range(pixel_values.shape[0])], dim=1)
    embeds = model.merge_image_features(torch.tensor([ids]), features)
    mask = torch.ones(1, len(ids), dtype=torch.int64)
    positions = torch.arange(len(ids), dtype=torch.int64).unsqueeze(0)
    logits, past = model.decoder(embeds, mask, positions, model.decoder.empty_cache(1))
    step_logits = logits[0, -1]
    first = step_logits.clone()
    tokens, gaps = [], []
    while True:
        gaps.append(tl.top2_gap(step_logits))
        token = int(torch.argmax(step_logits))
        tokens.append(token)
        if len(tokens) == max_new_tokens or token == model.cfg.eos_token_id:
            break
        mask = torch.cat((mask, torch.ones(1, 1, dtype=torch.int64)), dim=1)
        positions = positions[:, -1:] + 1
        logits, past = model.decoder(model.embed_tokens(torch.tensor([[token]])), mask, positions, past)
        step_logits = logits[0, -1]
    return tl.GreedyResult(tokens=tokens, first_step_logits=first, min_gap=min(gaps))


# Goldens of RSUniVLM's tasks are kept only where greedy decoding has no near-tie (onnxruntime and torch differ in
# the last float bits); up to this many held-out candidates are tried per case.
GOLDEN_MIN_GAP = 0.01
GOLDEN_CANDIDATES = 8


def golden_cases(p: PackInputs, models: Dict[str, ExportableVlm], golden_dir: str) -> List[dict]:
    """Torch's incremental greedy loop (what the runtime does) on held-out images (test split): every expert's
    caption and vqa prompts on the first GOLDEN_IMAGES test images, and each of RSUniVLM's tasks of an expert on
    the first test image (or change pair) whose greedy path has no near-tie."""
    os.makedirs(golden_dir, exist_ok=True)
    test = p.dataset.indices("test")
    saved: Dict[str, str] = {}

    def image_file(name: str, source: str) -> str:
        if name not in saved:
            shutil.copyfile(source, os.path.join(p.out, name))
            saved[name] = name
        return name

    def pixels(files: List[str]) -> torch.Tensor:
        return torch.cat([to_pixel_values(torch.from_numpy(read_png(os.path.join(p.out, f)))[None]) for f in files])

    def case(name: str, task: str, files: List[str], source: str, prompt: str, max_new: int) -> dict:
        rendered = tl.render_prompt(prompt, len(files))
        ids = tl.expand_image_tokens(p.tok.encode(rendered), p.tok.id(tl.IMAGE), p.encoder_of(name)[1] ** 2)
        result = greedy(models[name], ids, pixels(files), max_new)
        out = {"expert": name, "task": task, "image": files[0], "images": files, "source": source, "prompt": prompt,
               "rendered_prompt": rendered, "input_ids": ids, "max_new_tokens": max_new, "greedy_tokens": result.tokens,
               "greedy_text": p.tok.decode(result.tokens), "min_top2_gap": round(result.min_gap, 4)}
        return out

    def test_image(k: int) -> List[str]:
        scene = p.dataset.scenes[test[k]]
        return [image_file(f"golden/golden-{k}.png", os.path.join(p.dataset.root, "images", scene.filename))]

    cases = []
    for k, index in enumerate(test[:GOLDEN_IMAGES]):
        scene = p.dataset.scenes[index]
        files = test_image(k)
        with torch.no_grad():
            hint = SCENE_NAMES[SCENE_CLASSES[int(p.scene_head(p.encoder(pixels(files))).argmax(-1))]]
        for name in models:
            prompts = EXPERT_PROMPTS.get(name, GENERIC_PROMPTS)
            if name in TASK_PROMPTS and name not in EXPERT_PROMPTS:
                continue
            types = EXPERT_QUESTION_TYPES.get(name, QUESTION_TYPES)
            question = next(qa["question"] for qa in scene.vqa if qa["type"] in types)
            for task, prompt in (("caption", render_template(prompts["caption"], scene=hint)),
                                 ("vqa", render_template(prompts["vqa"], question=question, scene=hint))):
                cases.append(case(name, task, files, f"{scene.filename} (test split)", prompt, p.max_new_tokens))
    rng = random.Random(p.seed + 7)
    test_pairs = p.dataset.pair_indices("test")
    for name in models:
        for task in TASK_PROMPTS.get(name, {}):
            best = None
            for k in range(GOLDEN_CANDIDATES):
                if task in TWO_IMAGE_TASKS:
                    if k >= len(test_pairs):
                        break
                    pair = p.dataset.pairs[test_pairs[k]]
                    root = os.path.join(p.dataset.root, "demo_change_pairs")
                    files = [image_file(f"golden/pair-{k}-{side}.png", os.path.join(root, f"{pair.index}_{side}.png"))
                             for side in ("before", "after")]
                    source = f"change pair of image {pair.index} (test split)"
                    prompt = TASK_PROMPTS[name][task]
                else:
                    if k >= len(test):
                        break
                    scene = p.dataset.scenes[test[k]]
                    source = f"{scene.filename} (test split)"
                    if task in ("grounding", "referring"):
                        made = (grounding_task if task == "grounding" else referring_task)(0, scene, rng)
                        if made is None:
                            continue
                        prompt = made.prompt
                    elif task == "segmentation":
                        prompt = segmentation_task(0, class_map(scene), scene, rng).prompt
                    else:
                        prompt = TASK_PROMPTS[name][task]
                    files = None
                found = case(name, task, files or test_image(k), source, prompt, p.task_max_new_tokens[task])
                if best is None or found["min_top2_gap"] > best["min_top2_gap"]:
                    best = found
                if found["min_top2_gap"] >= GOLDEN_MIN_GAP:
                    break
            if best is not None:
                cases.append(best)
    used = {f for c in cases for f in c["images"]}
    for name in saved:
        if name not in used:
            os.remove(os.path.join(p.out, name))
    return cases


def encoder_id_of(p: PackInputs, name: str) -> str:
    if p.fine_encoder is not None and name in FINE_EXPERTS:
        return f"{PACK_NAME}@{PACK_VERSION}/dense-conv-encoder-{p.variant}"
    return f"{PACK_NAME}@{PACK_VERSION}/shared-conv-encoder-{p.variant}"


def manifest(p: PackInputs, generic: bool = False) -> dict:
    experts = []
    for name in p.experts:
        if name == "dense" or (generic and name in EXPERT_PROMPTS):
            prompts = dict(GENERIC_PROMPTS)
        else:
            prompts = dict(EXPERT_PROMPTS.get(name, {}))
        prompts.update(TASK_PROMPTS.get(name, {}))
        entry = {
            "id": name,
            "description": IMAGE_LEVEL_DESCRIPTION if name == "theme" and p.variant == "two-stage" else EXPERT_DESCRIPTIONS[name],
            "model": name,
            "encoderId": encoder_id_of(p, name),
        }
        if name in GRANULARITY:
            entry["granularity"] = GRANULARITY[name]
        entry.update({
            "aspects": expert_aspects(name),
            "questionTypes": EXPERT_QUESTION_TYPES.get(name, [] if name in GRANULARITY else QUESTION_TYPES),
            "prompts": prompts,
            "generation": {"maxNewTokens": expert_max_new_tokens(p, name), "numBeams": 1, "doSample": False},
        })
        experts.append(entry)
    what = {"two-stage": "two-stage RS-MoE", "one-stage": "one-stage (experts from scratch)", "dense": "dense baseline"}[p.variant]
    out = {
        "name": PACK_NAME if p.variant == "two-stage" else f"{PACK_NAME}-{p.variant}",
        "version": PACK_VERSION,
        "description": f"Demo pack ({what}) trained by tools/train/train_demo.py on synthetic scenes of libs/synth"
                       + (" — every expert given the one generic prompt (router ablation)." if generic else "."),
        "experts": experts,
        "router": {"model": "router", "questionTypeRules": QUESTION_TYPE_RULES},
        "fusion": {"caption": "ordered-dedup", "vqa": "priority", "order": list(p.experts)},
    }
    if any(name in GRANULARITY for name in p.experts) and p.variant == "two-stage":
        out["labels"] = {k: list(v) for k, v in LABELS.items()}
    return out


def write_pack(p: PackInputs) -> None:
    if os.path.isdir(p.out):
        shutil.rmtree(p.out)
    os.makedirs(p.out)
    models = {name: export_expert(p, name, os.path.join(p.out, name)) for name in p.experts}
    # Experts that declare one encoderId must hold byte-identical encoders (the mesh shares their features).
    by_id: Dict[str, set] = {}
    for name in p.experts:
        by_id.setdefault(encoder_id_of(p, name), set()).add(sha256(os.path.join(p.out, name, "onnx", "vision_encoder.onnx")))
    if any(len(files) != 1 for files in by_id.values()):
        raise RuntimeError("experts with one encoderId hold different vision_encoder.onnx files")
    export_router(p, os.path.join(p.out, "router"))
    # The scene classifier preprocesses images exactly as the experts' shared encoder does.
    tl.write_json(os.path.join(p.out, "router", "preprocessor_config.json"), tl.preprocessor_config_dict(models[next(iter(p.experts))].cfg))
    tl.write_json(os.path.join(p.out, "pack.json"), manifest(p))
    if p.variant == "two-stage":
        tl.write_json(os.path.join(p.out, "pack.generic.json"), manifest(p, generic=True))
    cases = golden_cases(p, models, os.path.join(p.out, "golden"))
    tl.write_json(os.path.join(p.out, "golden.json"), {"max_new_tokens": p.max_new_tokens, "cases": cases}, compact=True)
    write_readme(p, models)


def run_parity_spec(repo: str, pack_dir: str) -> None:
    """The TypeScript runtime must produce the goldens' greedy tokens (test/parity/demo-pack.spec.ts)."""
    env = dict(os.environ, DEMO_PACK_DIR=os.path.abspath(pack_dir))
    subprocess.run(["npx", "vitest", "run", "test/parity/demo-pack.spec.ts"], cwd=repo, env=env, check=True)


def write_readme(p: PackInputs, models: Dict[str, ExportableVlm]) -> None:
    ds, sizes = p.dataset, p.sizes
    mb = dir_size(p.out) / 1e6
    enc_params = count_parameters([p.encoder])
    lines = [
        f"# {manifest(p)['name']} — the demo model pack",
        "",
        "RS-MoE in miniature, trained on CPU from nothing but the synthetic scenes of `libs/synth`. Made by",
        "`tools/train/train_demo.py` (see `tools/train/README.md`); do not edit by hand:",
        "",
        "```sh",
        f"npm run train:demo    # /usr/bin/python3 tools/train/train_demo.py --out models/demo --seed {p.seed}"
        if p.variant == "two-stage" else f"/usr/bin/python3 tools/train/train_demo.py --out <dir> --variant {p.variant} --seed {p.seed}",
        "```",
        "",
        "## What",
        "",
        f"* `pack.json`: experts {', '.join(f'`{n}`' for n in p.experts)}, all with `encoderId` "
        f"`{manifest(p)['experts'][0]['encoderId']}` (their `onnx/vision_encoder.onnx` files are byte-identical, so the mesh computes image features once per image), router model `router/`, fusion `ordered-dedup` / `priority`.",
    ]
    if p.variant == "two-stage":
        lines.append("* `pack.generic.json`: the same experts, every one given the one generic prompt "
                     f"(`{GENERIC_PROMPTS['caption']}` / `{GENERIC_PROMPTS['vqa']}`): the ablation without the "
                     "Instruction Router's tailored prompts. Load it with `loadPackManifest('models/demo/pack.generic.json')`.")
    lines += [
        "* Each expert directory is in the LLaVA-family ONNX layout (config, generation/preprocessor config, tokenizer, "
        "`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`, `onnx/decoder_model_merged.onnx` with KV cache).",
        f"* Shared vision encoder: strided CNN (4x4 patchify stem, conv stages {list(sizes.encoder_channels)}) over the "
        f"128x128 RGB image to a 4x4 grid, learned positions, LayerNorm, LLaVA projector: `image_features[B,16,{sizes.hidden_size}]` "
        f"({enc_params:,} parameters).",
        f"* Experts: token embeddings + a Qwen2-like decoder (hidden {sizes.hidden_size}, "
        f"{sizes.num_attention_heads} heads / {sizes.num_key_value_heads} KV heads, SwiGLU {sizes.intermediate_size}, RoPE). "
        f"Its first {sizes.connector_layers} layer is the **instruction-aware connector**: during the prefill it attends "
        "bidirectionally over the whole prompt (prefix-LM attention), so the 16 image positions are re-weighted by the "
        "instruction words after them before the causal layers read them. It is a decoder layer, not a Q-Former: "
        "the shared encoder stays instruction-independent.",
    ]
    learns = {
        "theme": "image level: its aspect caption, rural/urban and area questions, `[CLS]` scene classification, "
                 "`[CCD]` change captions of two images",
        "object": "its aspect caption, presence and count questions",
        "relation": "its aspect caption, comparison questions",
        "region": "`[VG]` grounding (an object phrase: class name or noun, optionally with its colour -> the boxes "
                  f"of every matching object, largest first, at most {MAX_BOXES}, as `[x1, y1, x2, y2]` integer "
                  "percents) and `[REF]` referring (a box -> `<colour> <noun>` of the object)",
        "pixel": f"`[SEG]` segmentation of the queried classes and change masks of two images (labels `changed` / "
                 f"`others`), as {MASK_GRID}x{MASK_GRID} mask text; its decoder tracks the mask cell it writes (see below)",
    }
    for name in p.experts:
        lines.append(f"  * `{name}`{' (granularity ' + GRANULARITY[name] + ')' if name in GRANULARITY else ''}: "
                     f"{models[name].cfg.text.num_hidden_layers} layers, "
                     f"{count_parameters([p.experts[name]]):,} parameters (embeddings and lm_head included), "
                     f"{dir_size(os.path.join(p.out, name)) / 1e6:.1f} MB on disk"
                     + (f"; learns {learns[name]}." if name in learns and p.variant == "two-stage" else "."))
    if p.variant == "two-stage":
        lines += [
            "* RSUniVLM's tasks: prompts start with the task tag; pack.json's `prompts` (the mesh fills `{query}` / `{box}`):",
            "",
            "  | expert | task | template |",
            "  | --- | --- | --- |",
        ]
        lines += [f"  | {e} | {t} | `{tpl}` |" for e, ts in TASK_PROMPTS.items() for t, tpl in ts.items()]
        lines += [
            "",
            "  Two-image tasks (`change_caption`, `change_mask`) take the before image, then the after image, as two "
            "image parts of one user turn (`USER: <image> <image> {prompt} ASSISTANT:`, each image's 16 features in "
            "order). pack.json's `labels`: `classification` = the 12 synth scene classes, `segmentation` = `others` "
            "and the 13 synth object classes.",
            f"* Mask text: {MASK_GRID}x{MASK_GRID} grid, one line per row, cells `label*count` joined by `, ` (as "
            f"libs/region-outputs encodeMaskText writes it). A cell is labelled with the queried class covering most of it when that covers at least {MASK_CELL_SHARE:.0%} "
            "of the cell, else `others`; class maps are the objects' polygons rasterised as libs/synth paints them "
            "(the topmost object wins). The pixel expert's decoder keeps the counts it has written and the image-token "
            "positions in two channels of layer 0's value cache, and after layer 0 adds embeddings of the row and "
            "column of the cell it writes next and the image tokens (of both images) of that cell's row band "
            "(config.json `rsmoe.cell_tracker`); the graph's inputs, outputs and cache are the standard ones.",
        ]
    lines += [
        "* `router/`: `scene_classifier.onnx` (pixel_values -> scene_logits over the 12 synth scene classes) and "
        "`question_classifier.onnx` (input_ids, attention_mask -> question_type_logits over presence, count, comparison, "
        "rural_urban, area); `router.json` gives inputs, outputs, labels and preprocessing.",
        "* `golden.json` + `golden/`: torch greedy tokens for held-out images and change pairs (test split), every "
        "expert and task (one- and two-image prompts); `test/parity/demo-pack.spec.ts` checks that onnxruntime-node "
        "gives the same tokens.",
        f"* Size on disk: {mb:.1f} MB in all.",
        "",
        "## How it was made",
        "",
        f"* Data: `rsmoe synth --count {ds.scenes.__len__()} --seed {p.data_seed}` (128x128 PNG, 12 scene classes), "
        f"cached under `.cache/train-data/`; training uses the train split only ({len(ds.indices('train'))} images), "
        f"validation below uses {p.validation['images']} images of its val split, goldens its test split.",
        f"* Held out: image seeds are `imageSeed(dataset seed, index)`; none of the {len(ds.scenes)} training-set image "
        "seeds equals an image seed of `rsmoe synth --seed 9999` (checked for its first 20,000 images, which include "
        "the evaluation set `--count 1000 --seed 9999`). Fresh scenes of other seeds share an image seed with the "
        "training set only by a 32-bit hash collision.",
        f"* Variant `{p.variant}`, schedule {p.schedule}.",
    ]
    if p.variant == "two-stage":
        lines += [
            "* Stage 1: encoder, connector and one dense decoder on all data — per image one caption (an aspect caption "
            "with its expert's prompt, or a full reference caption with the generic prompt) and two questions with the "
            "prompt of the expert owning their type, every other image one of classification / grounding / referring, "
            "and change captions of a few change pairs per step — plus auxiliary losses on the encoder (scene class, "
            "object presence, log counts, and each image token's class shares in the cells under it at the mask grids). "
            "Scene hints in prompts are the true scene phrase, left empty 25% of the time.",
            "* Stage 2: encoder frozen (its features computed once); each expert starts from the stage-1 decoder and "
            "is tuned on its own tasks with its own prompts: theme, object and relation on their aspect caption and "
            "question types (theme also on classification and change captions), region on grounding and referring, "
            "pixel (the stage-1 decoder plus the cell tracker) on segmentation and change masks.",
            f"* Change pairs: libs/synth `generateChangePair` for the first {p.schedule['pairs']} images of each split "
            "(tools/train/synth_change_pairs.cjs; the same pair `rsmoe synth` writes for those images, with the changed "
            "objects' polygons).",
        ]
    lines += [
        "* Timings (2 CPU threads): " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in p.times.items())
        + f"; total {(time.time() - p.started) / 60:.1f} min.",
        "",
        "## Validation (torch greedy, held-out val split)",
        "",
        "Prompts carry the router's scene hint (the scene classifier's guess), as the mesh sends them. "
        "Scene class in caption: the theme sentence names the right scene class. VQA: exact answer match, "
        "answered by the expert that owns the question type.",
        "",
        "| metric | % |",
        "| --- | --- |",
    ]
    skip = {"images", "task images", "change pairs", "segmentation IoU per class"}
    lines += [f"| {k} | {v} |" for k, v in p.validation.items() if k not in skip]
    if "task images" in p.validation:
        per_class = p.validation.get("segmentation IoU per class", {})
        lines += [
            "",
            f"RSUniVLM's tasks: {p.validation['task images']} val images and {p.validation['change pairs']} val change "
            "pairs, one query per image drawn as in training; greedy; boxes and masks read as libs/region-outputs reads "
            "them and scored as libs/eval scores them: grounding Acc@0.5 = the first box against every box the query "
            "fits (IoU >= 0.5); segmentation mIoU = per class (`others` included) summed intersections over summed "
            "unions at the image's pixels, classes with an empty union left out; an unparseable mask counts as all "
            "`others`; change-mask F1 of the changed pixels over the set; change captions against the one reference.",
        ]
        if per_class:
            lines += ["", "Segmentation IoU per class (%): " + ", ".join(f"{k} {v}" for k, v in per_class.items()) + "."]
    lines.append("")
    with open(os.path.join(p.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
