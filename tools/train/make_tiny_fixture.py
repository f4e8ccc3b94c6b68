#!/usr/bin/python3
"""Build the tiny random-weight LLaVA-style fixture (ONNX layout + goldens).

    /usr/bin/python3 tools/train/make_tiny_fixture.py --out models/fixtures/tiny-llava [--seed 0]

Writes config/tokenizer/preprocessor JSON, onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx,
three golden PNGs and golden.json (torch greedy reference for the runtime tests). Deterministic for a
given seed and torch version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import tiny_llava as tl  # noqa: E402

GOLDEN_MAX_NEW_TOKENS = 16
GOLDEN_PROMPTS = [
    "describe the image .",
    "how many buildings are there ?",
    "what is the theme of the scene and where are the trees ?",
]
MIN_TOP2_GAP = 1e-2
MIN_DISTINCT_TOKENS = 5


def build_goldens(model: tl.TinyLlava, tok: tl.WordTokenizer, out_dir: str, seed: int) -> dict:
    cfg = model.cfg
    cases = []
    for i, prompt in enumerate(GOLDEN_PROMPTS):
        png = tl.encode_png_rgb(tl.synthetic_aerial_image(i, seed, cfg.vision.image_size))
        image_name = f"golden-{i}.png"
        with open(os.path.join(out_dir, image_name), "wb") as f:
            f.write(png)
        pixel_values = tl.pixel_values_from_png(png, cfg)

        rendered = tl.render_prompt(prompt)
        ids = tl.expand_image_tokens(tok.encode(rendered), cfg.image_token_index, cfg.image_seq_length)
        if tok.unk_id in ids:
            raise ValueError(f"golden prompt has out-of-vocabulary words: {prompt!r}")
        result = tl.greedy_generate(model, torch.tensor([ids], dtype=torch.int64), pixel_values,
                                    GOLDEN_MAX_NEW_TOKENS)
        check_greedy(prompt, result)
        cases.append({
            "prompt": prompt,
            "image": image_name,
            "rendered_prompt": rendered,
            "input_ids": ids,
            "pixel_values": tl.f32_list(pixel_values),
            "first_step_logits": tl.f32_list(result.first_step_logits),
            "greedy_tokens": result.tokens,
            "greedy_text": tok.decode(result.tokens),
            "_min_gap": result.min_gap,
        })
    return {"seed": seed, "torch_version": torch.__version__, "max_new_tokens": GOLDEN_MAX_NEW_TOKENS,
            "cases": cases}


def check_greedy(prompt: str, r: tl.GreedyResult) -> None:
    problems = []
    if len(r.tokens) != GOLDEN_MAX_NEW_TOKENS:
        problems.append(f"stopped after {len(r.tokens)} tokens")
    if any(t < len(tl.SPECIAL_TOKENS) for t in r.tokens):
        problems.append(f"special token generated: {r.tokens}")
    if len(set(r.tokens)) < MIN_DISTINCT_TOKENS:
        problems.append(f"only {len(set(r.tokens))} distinct tokens: {r.tokens}")
    if r.min_gap <= MIN_TOP2_GAP:
        problems.append(f"near-tie on the greedy path (top1-top2 gap {r.min_gap:.2e})")
    if problems:
        raise SystemExit(f"golden for {prompt!r} unusable (try another seed or init scale): "
                         + "; ".join(problems))


def write_golden(path: str, golden: dict) -> None:
    """One case per line: readable header, diff-friendly, compact numbers."""
    cases = [{k: v for k, v in c.items() if not k.startswith("_")} for c in golden["cases"]]
    head = {k: v for k, v in golden.items() if k != "cases"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "cases": [')
    lines += [f"    {json.dumps(c, separators=(',', ':'))}" + ("," if i < len(cases) - 1 else "")
              for i, c in enumerate(cases)]
    lines += ["  ]", "}"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created if missing)")
    ap.add_argument("--seed", type=int, default=0, help="weight / image noise seed (default 0)")
    ap.add_argument("--opset", type=int, default=14, help="ONNX opset, 14..17 (default 14)")
    args = ap.parse_args()

    out = args.out
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    tok = tl.WordTokenizer.default()
    model = tl.build_model(len(tok), args.seed)
    cfg = model.cfg

    tl.write_json(os.path.join(out, "config.json"), cfg.to_hf_dict())
    tl.write_json(os.path.join(out, "generation_config.json"), tl.generation_config_dict(cfg))
    tl.write_json(os.path.join(out, "preprocessor_config.json"), tl.preprocessor_config_dict(cfg))
    tl.write_json(os.path.join(out, "tokenizer.json"), tok.tokenizer_json())
    tl.write_json(os.path.join(out, "tokenizer_config.json"), tok.tokenizer_config_json())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived python values
        tl.export_onnx(model, os.path.join(out, "onnx"), opset=args.opset)

    golden = build_goldens(model, tok, out, args.seed)
    write_golden(os.path.join(out, "golden.json"), golden)

    # summary
    total = 0
    print(f"wrote {out} (seed {args.seed}, torch {torch.__version__}, vocab {len(tok)})")
    for root, _, files in sorted(os.walk(out)):
        for name in sorted(files):
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            total += size
            print(f"  {os.path.relpath(path, out):34s} {size:>9,d} B")
    print(f"  {'total':34s} {total:>9,d} B")
    for c in golden["cases"]:
        print(f"  [{c['prompt']}] -> {c['greedy_text']!r} (min top1-top2 gap {c['_min_gap']:.3f})")
    print(f"  min top1-top2 gap over all cases: {min(c['_min_gap'] for c in golden['cases']):.4f}")


if __name__ == "__main__":
    main()
