"""Validation of the demo pack in torch: batched greedy decoding as the runtime does it (left-padded
prefill, then one token per step with the KV cache), scene class in captions, VQA accuracy per type."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

import tiny_llava as tl
from demo_data import SCENE_CLASSES, SCENE_NAMES, Dataset, to_pixel_values
from demo_model import ConvVisionEncoder, ExpertDecoder, SceneHead
from demo_tasks import EXPERT_PROMPTS, EXPERT_QUESTION_TYPES, GENERIC_PROMPTS, Encoder, render_template


@torch.no_grad()
def generate(expert: ExpertDecoder, features: torch.Tensor, prompts: Sequence[str], enc: Encoder,
             max_new_tokens: int) -> List[List[int]]:
    """Greedy tokens (without EOS) for each (features[i], prompts[i])."""
    rows = [enc.prompt_ids(p) for p in prompts]
    batch, length = len(rows), max(len(r) for r in rows)
    ids = torch.zeros(batch, length, dtype=torch.int64)
    mask = torch.zeros(batch, length, dtype=torch.int64)
    positions = torch.ones(batch, length, dtype=torch.int64)
    image_id = enc.tok.id(tl.IMAGE)
    embeds = []
    for b, r in enumerate(rows):
        pad = length - len(r)
        ids[b, pad:], mask[b, pad:] = torch.tensor(r), 1
        positions[b, pad:] = torch.arange(len(r))
        e = expert.embed_tokens(ids[b:b + 1]).clone()
        e[0, (ids[b] == image_id).nonzero().flatten()] = features[b]
        embeds.append(e)
    logits, past = expert.decoder(torch.cat(embeds), mask, positions, expert.decoder.empty_cache(batch))
    eos = enc.tok.id(tl.EOS)
    out: List[List[int]] = [[] for _ in rows]
    done = torch.zeros(batch, dtype=torch.bool)
    next_pos = torch.tensor([len(r) for r in rows])
    for _ in range(max_new_tokens):
        token = logits[:, -1].argmax(-1)
        for b in range(batch):
            if not done[b]:
                if int(token[b]) == eos:
                    done[b] = True
                else:
                    out[b].append(int(token[b]))
        if bool(done.all()):
            break
        mask = torch.cat((mask, torch.ones(batch, 1, dtype=torch.int64)), dim=1)
        logits, past = expert.decoder(expert.embed_tokens(token[:, None]), mask, next_pos[:, None], past)
        next_pos = next_pos + 1
    return out


def scene_in_caption(caption: str) -> Optional[str]:
    """The scene class named by the first sentence of a caption (the theme sentence), longest phrase first."""
    first = caption.split(" .")[0]
    for cls, name in sorted(SCENE_NAMES.items(), key=lambda kv: -len(kv[1])):
        if f" {name} " in f" {first} ":
            return cls
    return None


def count_close(answer: str, truth: str) -> bool:
    return answer.isdigit() and abs(int(answer) - int(truth)) <= 1


@torch.no_grad()
def evaluate(dataset: Dataset, indices: Sequence[int], encoder: ConvVisionEncoder, head: SceneHead,
             experts: Dict[str, ExpertDecoder], enc: Encoder, max_new_tokens: int, batch_size: int = 50) -> dict:
    """Scene class in the theme (or dense) caption and VQA accuracy per type, on ``indices``.

    Prompts carry the router's scene hint (the scene head's guess) as the mesh sends them, and the
    theme caption is also scored with an empty hint. A pack with one ``dense`` expert uses the generic prompts.
    """
    encoder.eval()
    dense = "dense" in experts
    hits: Dict[str, List[bool]] = {}

    def score(key: str, ok: bool) -> None:
        hits.setdefault(key, []).append(ok)

    for start in range(0, len(indices), batch_size):
        chunk = list(indices[start:start + batch_size])
        scenes = [dataset.scenes[i] for i in chunk]
        images = dataset.images[chunk]
        features = encoder(to_pixel_values(images))
        guesses = [int(i) for i in head(features).argmax(-1)]
        hints = [SCENE_NAMES[SCENE_CLASSES[g]] for g in guesses]
        for s, g in zip(scenes, guesses):
            score("router scene class", g == s.scene_class)
        theme = experts["dense"] if dense else experts["theme"]
        caption_template = GENERIC_PROMPTS["caption"] if dense else EXPERT_PROMPTS["theme"]["caption"]
        for label, hint_of in (("scene class in caption (router hint)", lambda i: hints[i]),
                               ("scene class in caption (empty hint)", lambda i: "")):
            prompts = [render_template(caption_template, scene=hint_of(i)) for i in range(len(chunk))]
            for s, tokens in zip(scenes, generate(theme, features, prompts, enc, max_new_tokens)):
                score(label, scene_in_caption(enc.tok.decode(tokens)) == SCENE_CLASSES[s.scene_class])
        rows, prompts, truths, owners = [], [], [], []
        for r, s in enumerate(scenes):
            for qa in s.vqa:
                owner = "dense" if dense else next(e for e, t in EXPERT_QUESTION_TYPES.items() if qa["type"] in t)
                template = GENERIC_PROMPTS["vqa"] if dense else EXPERT_PROMPTS[owner]["vqa"]
                rows.append(r)
                prompts.append(render_template(template, question=qa["question"], scene=hints[r]))
                truths.append(qa)
                owners.append(owner)
        for owner in sorted(set(owners)):
            sel = [k for k, o in enumerate(owners) if o == owner]
            answers = generate(experts[owner], features[[rows[k] for k in sel]], [prompts[k] for k in sel], enc, 8)
            for k, tokens in zip(sel, answers):
                answer, qa = enc.tok.decode(tokens), truths[k]
                score(f"vqa {qa['type']}", answer == qa["answer"])
                if qa["type"] == "count":
                    score("vqa count within 1", count_close(answer, qa["answer"]))
    report = {k: round(100.0 * sum(v) / len(v), 1) for k, v in hits.items()}
    types = [f"vqa {t}" for t in ("presence", "count", "comparison", "rural_urban", "area")]
    report["vqa average over types"] = round(sum(report[t] for t in types) / len(types), 1)
    report["images"] = len(indices)
    return report
