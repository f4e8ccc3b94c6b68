"""Validation of the demo pack in torch: batched greedy decoding as the runtime does it (left-padded
prefill, then one token per step with the KV cache), scene class in captions, VQA accuracy per type, and
RSUniVLM's tasks (classification, grounding, referring, segmentation, change masks and captions)."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import tiny_llava as tl
from demo_data import IMAGE_SIZE, OBJECT_CLASSES, OBJECT_NOUNS, SCENE_CLASSES, SCENE_NAMES, Dataset, change_map, class_map, to_pixel_values
from demo_model import ConvVisionEncoder, ExpertDecoder, SceneHead
from demo_tasks import (CHANGED, EXPERT_PROMPTS, EXPERT_QUESTION_TYPES, GENERIC_PROMPTS, LABELS, MASK_BACKGROUND, TASK_PROMPTS,
                        Encoder, change_caption_task, classification_task, grounding_task, referring_task, render_template,
                        segmentation_task)


@torch.no_grad()
def generate(expert: ExpertDecoder, features: torch.Tensor, prompts: Sequence[str], enc: Encoder,
             max_new_tokens: int, images: int = 1) -> List[List[int]]:
    """Greedy tokens (without EOS) for each (features[i], prompts[i]); features[i] holds the image features of
    all ``images`` images of prompt i, in prompt order."""
    rows = [enc.prompt_ids(p, images) for p in prompts]
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


# ----------------------------------------------------------------------------------------------
# RSUniVLM's tasks: text parsed as libs/region-outputs parses it, metrics as libs/eval computes them
# ----------------------------------------------------------------------------------------------

BRACKET_GROUP = re.compile(r"\[([^\[\]]*)\]")
UNSIGNED_DECIMAL = re.compile(r"^(?:\d+(?:\.\d*)?|\.\d+)$")


def parse_boxes(text: str) -> List[Tuple[float, float, float, float]]:
    """libs/region-outputs parseBoxesText: every [...] group of at least four unsigned numbers, cut at four,
    values over 100 read as 100; [] when there is none."""
    boxes = []
    for group in BRACKET_GROUP.findall(text):
        parts = [p.strip() for p in group.split(",")]
        if len(parts) >= 4 and all(UNSIGNED_DECIMAL.match(p) for p in parts):
            boxes.append(tuple(min(float(p), 100.0) for p in parts[:4]))
    return boxes


def parse_mask(text: str, classes: Sequence[str]) -> Optional[np.ndarray]:
    """libs/region-outputs parseMaskText: the label grid (indices into ``classes``), or None when unparseable."""
    keys = {re.sub(r"\s+", " ", c.strip().lower()): i for i, c in enumerate(classes)}
    lines = [line for line in re.split(r"\r?\n", text) if line.strip()]
    rows: List[List[int]] = []
    for line in lines:
        row: List[int] = []
        for raw in line.split(","):
            cell = raw.strip()
            star = cell.rfind("*")
            if star < 0:
                return None
            key = re.sub(r"\s+", " ", cell[:star].strip().lower())
            count = cell[star + 1:].strip()
            if key not in keys or not count.isdigit() or int(count) == 0:
                return None
            row += [keys[key]] * int(count)
        if rows and len(row) != len(rows[0]):
            return None
        rows.append(row)
    return np.array(rows, dtype=np.int64) if rows else None


def resize_nearest(grid: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """libs/region-outputs resizeNearest: pixel (x, y) takes cell (floor(y * h / H), floor(x * w / W))."""
    rows = np.floor(np.arange(size) * grid.shape[0] / size).astype(np.int64)
    cols = np.floor(np.arange(size) * grid.shape[1] / size).astype(np.int64)
    return grid[np.ix_(rows, cols)]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """libs/eval boxIoU (continuous coordinates, no +1)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU-4 (one reference per hypothesis, brevity penalty, no smoothing), on space-separated tokens."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(0, len(h) - n + 1)
    if min(matches) == 0 or hyp_len == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    brevity = min(0.0, 1 - ref_len / hyp_len)
    return math.exp(log_precision + brevity)


def pixel_box(box: Sequence[float]) -> Tuple[float, ...]:
    return tuple(v * IMAGE_SIZE / 100.0 for v in box)


@torch.no_grad()
def evaluate_tasks(dataset: Dataset, indices: Sequence[int], pair_indices: Sequence[int], encoder: ConvVisionEncoder,
                   experts: Dict[str, ExpertDecoder], enc: Encoder, max_new: Dict[str, int], seed: int,
                   batch_size: int = 50, dense_encoder: Optional[torch.nn.Module] = None,
                   dense_enc: Optional[Encoder] = None) -> dict:
    """RSUniVLM's tasks on the val split, greedy as the runtime decodes: classification accuracy (theme), grounding
    Acc@0.5 and mean IoU of the first box, referring accuracy (region), segmentation mIoU and change-mask F1
    (pixel; masks resized to the image and scored at its pixels, an unparseable mask scoring as all background),
    change-caption BLEU-4 and exact match (theme). Queries are drawn with ``seed`` as in training. The region and pixel
    experts read ``dense_encoder``'s features (prompts expanded by ``dense_enc``) when given."""
    encoder.eval()
    denc = dense_enc or enc
    rng = random.Random(seed)
    report: Dict[str, float] = {}
    classes = LABELS["segmentation"]
    hits: Dict[str, List[float]] = {}
    seg_i, seg_u = np.zeros(len(classes)), np.zeros(len(classes))
    seg_ok: List[bool] = []
    for start in range(0, len(indices), batch_size):
        chunk = list(indices[start:start + batch_size])
        scenes = [dataset.scenes[i] for i in chunk]
        features = encoder(to_pixel_values(dataset.images[chunk]))
        fine = dense_encoder(to_pixel_values(dataset.images[chunk])) if dense_encoder is not None else features
        if "theme" in experts:
            tasks = [classification_task(r, s) for r, s in enumerate(scenes)]
            for t, out in zip(tasks, generate(experts["theme"], features, [t.prompt for t in tasks], enc, max_new["classification"])):
                hits.setdefault("classification accuracy", []).append(enc.tok.decode(out) == t.answer)
        if "region" in experts:
            queries = []
            for r, s in enumerate(scenes):
                t = grounding_task(r, s, rng)
                if t is None:
                    continue
                query = t.prompt[len("[VG] "):]
                matches = [j for j, o in enumerate(s.objects) if query_fits(query, o)]
                queries.append((t, [s.objects[j].box for j in matches]))
            outs = generate(experts["region"], fine[[t.row for t, _ in queries]], [t.prompt for t, _ in queries], denc,
                            max_new["grounding"])
            for (t, refs), out in zip(queries, outs):
                boxes = parse_boxes(denc.tok.decode(out))
                best = max((box_iou(pixel_box(boxes[0]), ref) for ref in refs), default=0.0) if boxes else 0.0
                hits.setdefault("grounding acc@0.5", []).append(best >= 0.5)
                hits.setdefault("grounding mean IoU", []).append(best)
                hits.setdefault("grounding parseable", []).append(bool(boxes))
            tasks = [t for t in (referring_task(r, s, rng) for r, s in enumerate(scenes)) if t is not None]
            outs = generate(experts["region"], fine[[t.row for t in tasks]], [t.prompt for t in tasks], denc, max_new["referring"])
            for t, out in zip(tasks, outs):
                answer = denc.tok.decode(out)
                hits.setdefault("referring exact", []).append(answer == t.answer)
                hits.setdefault("referring class", []).append(answer.split()[-1:] == t.answer.split()[-1:])
        if "pixel" in experts:
            tasks, targets = [], []
            for r, s in enumerate(scenes):
                full = class_map(s)
                t = segmentation_task(r, full, s, rng)
                query = [classes.index(c.strip()) for c in t.prompt[len("[SEG] "):].split(",")]
                truth = np.where(np.isin(full.astype(np.int64), query), full, 0)
                tasks.append(t)
                targets.append((query, truth))
            for t, (query, truth), out in zip(tasks, targets, generate(experts["pixel"], fine, [t.prompt for t in tasks], denc, max_new["segmentation"])):
                names = [MASK_BACKGROUND] + [classes[c] for c in query]
                grid = parse_mask(denc.tok.decode(out), names)
                seg_ok.append(grid is not None)
                pred = np.zeros_like(truth, dtype=np.int64) if grid is None else np.array([0] + query)[resize_nearest(grid)]
                for c in [0] + query:
                    seg_i[c] += np.sum((pred == c) & (truth == c))
                    seg_u[c] += np.sum((pred == c) | (truth == c))
    if "theme" in experts or "pixel" in experts:
        change = evaluate_change(dataset, pair_indices, encoder, experts, enc, max_new, batch_size, dense_encoder, dense_enc)
        report.update(change)
    for k, v in hits.items():
        report[k] = round(100.0 * sum(v) / len(v), 1)
    if seg_ok:
        present = seg_u > 0
        report["segmentation mIoU"] = round(100.0 * float(np.mean(seg_i[present] / seg_u[present])), 1)
        report["segmentation parseable"] = round(100.0 * sum(seg_ok) / len(seg_ok), 1)
        report["segmentation IoU per class"] = {classes[c]: round(100.0 * seg_i[c] / seg_u[c], 1) for c in range(len(classes)) if seg_u[c] > 0}
    report["task images"] = len(indices)
    report["change pairs"] = len(pair_indices)
    return report


def query_fits(query: str, obj) -> bool:
    """Whether a grounding query ("[colour] class" with the class as its name or its noun) names an object."""
    cls = OBJECT_CLASSES[obj.cls]
    for noun in {cls, OBJECT_NOUNS[cls][0]}:
        if query == noun or query == f"{obj.colour} {noun}":
            return True
    return False


@torch.no_grad()
def evaluate_change(dataset: Dataset, pair_indices: Sequence[int], encoder: ConvVisionEncoder,
                    experts: Dict[str, ExpertDecoder], enc: Encoder, max_new: Dict[str, int], batch_size: int,
                    dense_encoder: Optional[torch.nn.Module] = None, dense_enc: Optional[Encoder] = None) -> dict:
    tp = fp = fn = 0
    parsed: List[bool] = []
    hyps, refs = [], []
    for start in range(0, len(pair_indices), batch_size):
        chunk = list(pair_indices[start:start + batch_size])
        images = dataset.pair_images[chunk]  # [B,2,3,H,W]
        before = encoder(to_pixel_values(images[:, 0]))
        after = encoder(to_pixel_values(images[:, 1]))
        features = torch.cat((before, after), dim=1)
        pairs = [dataset.pairs[k] for k in chunk]
        if "theme" in experts:
            tasks = [change_caption_task(r, -1, p) for r, p in enumerate(pairs)]
            outs = generate(experts["theme"], features, [t.prompt for t in tasks], enc, max_new["change_caption"], images=2)
            hyps += [enc.tok.decode(o) for o in outs]
            refs += [t.answer for t in tasks]
        if "pixel" in experts:
            prompt = TASK_PROMPTS["pixel"]["change_mask"]
            fine = features
            if dense_encoder is not None:
                fine = torch.cat((dense_encoder(to_pixel_values(images[:, 0])), dense_encoder(to_pixel_values(images[:, 1]))), dim=1)
            denc = dense_enc or enc
            outs = generate(experts["pixel"], fine, [prompt] * len(chunk), denc, max_new["change_mask"], images=2)
            for p, out in zip(pairs, outs):
                truth = change_map(p).astype(bool)
                grid = parse_mask(denc.tok.decode(out), [MASK_BACKGROUND, CHANGED])
                parsed.append(grid is not None)
                pred = np.zeros_like(truth) if grid is None else resize_nearest(grid).astype(bool)
                tp += int(np.sum(pred & truth))
                fp += int(np.sum(pred & ~truth))
                fn += int(np.sum(~pred & truth))
    out: Dict[str, float] = {}
    if hyps:
        out["change caption BLEU-4"] = round(100.0 * bleu4(hyps, refs), 1)
        out["change caption exact"] = round(100.0 * sum(h == r for h, r in zip(hyps, refs)) / len(hyps), 1)
    if parsed:
        out["change mask F1"] = round(100.0 * (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0), 1)
        out["change mask parseable"] = round(100.0 * sum(parsed) / len(parsed), 1)
    return out
