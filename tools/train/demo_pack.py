"""Export of the demo pack: expert model directories, router model, pack.json, goldens and README."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List

import torch

import tiny_llava as tl
from demo_data import ASPECTS, QUESTION_TYPES, SCENE_CLASSES, SCENE_NAMES, Dataset, read_png, to_pixel_values
from demo_model import (GRID, IMAGE_SIZE, ConvVisionEncoder, DemoSizes, ExportableVlm, ExpertDecoder, QuestionClassifier,
                        SceneClassifier, SceneHead, count_parameters)
from demo_tasks import (EXPERT_ASPECT, EXPERT_PROMPTS, EXPERT_QUESTION_TYPES, GENERIC_PROMPTS, Encoder,
                        render_template)

PACK_NAME = "rsmoe-demo"
PACK_VERSION = "1.0.0"
GOLDEN_IMAGES = 2
EXPERT_DESCRIPTIONS = {
    "theme": "Scene type and land use of the whole image; answers rural/urban and area-coverage questions.",
    "object": "Objects in the image: their types, colours, counts and places; answers presence and count questions.",
    "relation": "Spatial relations between objects; answers comparison questions.",
    "dense": "One dense model for every aspect and every question type (the ablation baseline).",
}
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
    validation: dict
    disjoint: dict
    schedule: dict
    times: Dict[str, float]
    started: float


def max_new_tokens(ds: Dataset, tok: tl.WordTokenizer, dense: bool) -> int:
    """Longest training caption the model writes (aspect captions, or full references for dense) + EOS + margin."""
    texts = [r for s in ds.scenes for r in s.references] if dense else [c for s in ds.scenes for c in s.captions.values()]
    return max(len(tok.encode(t)) for t in texts) + 9


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def export_expert(p: PackInputs, name: str, model_dir: str) -> ExportableVlm:
    model = ExportableVlm(p.encoder, p.experts[name], p.sizes.encoder_channels[-1]).eval()
    os.makedirs(model_dir, exist_ok=True)
    tl.export_onnx(model, os.path.join(model_dir, "onnx"))
    config = model.cfg.to_hf_dict()
    config["vision_config"] = {
        "model_type": "rsmoe_conv", "image_size": IMAGE_SIZE, "num_channels": 3, "grid": GRID,
        "channels": list(p.sizes.encoder_channels), "hidden_size": p.sizes.encoder_channels[-1],
    }
    config["rsmoe"] = {
        "expert": name, "aspects": [EXPERT_ASPECT[name]] if name in EXPERT_ASPECT else ASPECTS,
        "connector_layers": p.sizes.connector_layers,
        "connector": "the first decoder layer(s) attend to the whole prompt during prefill (prefix-LM), "
                     "so image positions are re-weighted by the instruction; later layers are causal",
    }
    tl.write_json(os.path.join(model_dir, "config.json"), config)
    tl.write_json(os.path.join(model_dir, "generation_config.json"), tl.generation_config_dict(model.cfg, p.max_new_tokens))
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


def golden_cases(p: PackInputs, models: Dict[str, ExportableVlm], golden_dir: str) -> List[dict]:
    """Torch's incremental greedy loop (tiny_llava.greedy_generate, what the runtime does) on held-out images."""
    os.makedirs(golden_dir, exist_ok=True)
    cases = []
    for k, index in enumerate(p.dataset.indices("test")[:GOLDEN_IMAGES]):
        scene = p.dataset.scenes[index]
        image = f"golden/golden-{k}.png"
        shutil.copyfile(os.path.join(p.dataset.root, "images", scene.filename), os.path.join(p.out, image))
        pixel_values = to_pixel_values(torch.from_numpy(read_png(os.path.join(p.out, image)))[None])
        with torch.no_grad():
            hint = SCENE_NAMES[SCENE_CLASSES[int(p.scene_head(p.encoder(pixel_values)).argmax(-1))]]
        for name, model in models.items():
            prompts = EXPERT_PROMPTS.get(name, GENERIC_PROMPTS)
            types = EXPERT_QUESTION_TYPES.get(name, QUESTION_TYPES)
            question = next(qa["question"] for qa in scene.vqa if qa["type"] in types)
            for task, prompt in (("caption", render_template(prompts["caption"], scene=hint)),
                                 ("vqa", render_template(prompts["vqa"], question=question, scene=hint))):
                rendered = tl.render_prompt(prompt)
                ids = tl.expand_image_tokens(p.tok.encode(rendered), p.tok.id(tl.IMAGE), GRID * GRID)
                result = tl.greedy_generate(model, torch.tensor([ids]), pixel_values, p.max_new_tokens)
                cases.append({"expert": name, "task": task, "image": image, "source": f"{scene.filename} (test split)",
                              "prompt": prompt, "rendered_prompt": rendered, "input_ids": ids,
                              "greedy_tokens": result.tokens, "greedy_text": p.tok.decode(result.tokens),
                              "min_top2_gap": round(result.min_gap, 4)})
    return cases


def manifest(p: PackInputs, generic: bool = False) -> dict:
    encoder_id = f"{PACK_NAME}@{PACK_VERSION}/shared-conv-encoder-{p.variant}"
    experts = []
    for name in p.experts:
        prompts = GENERIC_PROMPTS if generic or name == "dense" else EXPERT_PROMPTS[name]
        experts.append({
            "id": name,
            "description": EXPERT_DESCRIPTIONS[name],
            "model": name,
            "encoderId": encoder_id,
            "aspects": [EXPERT_ASPECT[name]] if name in EXPERT_ASPECT else ASPECTS,
            "questionTypes": EXPERT_QUESTION_TYPES.get(name, QUESTION_TYPES),
            "prompts": dict(prompts),
            "generation": {"maxNewTokens": p.max_new_tokens, "numBeams": 1, "doSample": False},
        })
    what = {"two-stage": "two-stage RS-MoE", "one-stage": "one-stage (experts from scratch)", "dense": "dense baseline"}[p.variant]
    return {
        "name": PACK_NAME if p.variant == "two-stage" else f"{PACK_NAME}-{p.variant}",
        "version": PACK_VERSION,
        "description": f"Demo pack ({what}) trained by tools/train/train_demo.py on synthetic scenes of libs/synth"
                       + (" — every expert given the one generic prompt (router ablation)." if generic else "."),
        "experts": experts,
        "router": {"model": "router", "questionTypeRules": QUESTION_TYPE_RULES},
        "fusion": {"caption": "ordered-dedup", "vqa": "priority", "order": list(p.experts)},
    }


def write_pack(p: PackInputs) -> None:
    if os.path.isdir(p.out):
        shutil.rmtree(p.out)
    os.makedirs(p.out)
    models = {name: export_expert(p, name, os.path.join(p.out, name)) for name in p.experts}
    encoders = {sha256(os.path.join(p.out, name, "onnx", "vision_encoder.onnx")) for name in p.experts}
    if len(encoders) != 1:
        raise RuntimeError("the experts' vision_encoder.onnx files differ")
    export_router(p, os.path.join(p.out, "router"))
    # The scene classifier preprocesses images exactly as the experts' shared encoder does.
    tl.write_json(os.path.join(p.out, "router", "preprocessor_config.json"), tl.preprocessor_config_dict(next(iter(models.values())).cfg))
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
    for name in p.experts:
        lines.append(f"  * `{name}`: {models[name].cfg.text.num_hidden_layers} layers, "
                     f"{count_parameters([p.experts[name]]):,} parameters (embeddings and lm_head included), "
                     f"{dir_size(os.path.join(p.out, name)) / 1e6:.1f} MB on disk.")
    lines += [
        "* `router/`: `scene_classifier.onnx` (pixel_values -> scene_logits over the 12 synth scene classes) and "
        "`question_classifier.onnx` (input_ids, attention_mask -> question_type_logits over presence, count, comparison, "
        "rural_urban, area); `router.json` gives inputs, outputs, labels and preprocessing.",
        "* `golden.json` + `golden/`: torch greedy tokens for held-out images (test split), every expert, caption and vqa "
        "prompt; `test/parity/demo-pack.spec.ts` checks that onnxruntime-node gives the same tokens.",
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
            "prompt of the expert owning their type — plus auxiliary scene-graph losses on the encoder (scene class, "
            "object presence, log counts). Scene hints in prompts are the true scene phrase, left empty 25% of the time.",
            "* Stage 2: encoder frozen (its features computed once); each expert starts from the stage-1 decoder and "
            "is tuned on its aspect caption and its question types only, with its own prompts.",
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
    lines += [f"| {k} | {v} |" for k, v in p.validation.items() if k != "images"]
    lines.append("")
    with open(os.path.join(p.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
