"""Train the demo model pack (RS-MoE in miniature) on synthetic scenes and export it.

    /usr/bin/python3 tools/train/train_demo.py --out models/demo                      # two-stage (default)
    /usr/bin/python3 tools/train/train_demo.py --out /tmp/packs/one-stage --variant one-stage
    /usr/bin/python3 tools/train/train_demo.py --out /tmp/packs/dense --variant dense

Variants:
  two-stage  stage 1 trains the shared encoder, the connector and ONE dense decoder on all captions and
             questions (and RSUniVLM's short tasks: classification, change captions, grounding, referring),
             with auxiliary scene-graph and class-map losses on the encoder; stage 2 freezes the encoder,
             starts every expert from the stage-1 decoder and tunes it on its own tasks: theme (image level:
             its aspect caption and questions, classification, change captions), object, relation, region
             (grounding, referring) and pixel (segmentation and change masks).
  one-stage  the encoder and the three experts trained together from scratch, each expert on its aspect only.
  dense      one decoder with the layers of the three experts together, trained on the full reference
             captions and all questions with one generic prompt.

Deterministic from --seed (same torch version and thread count). See tools/train/README.md.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import demo_pack  # noqa: E402
import numpy as np  # noqa: E402

from demo_data import (OBJECT_CLASSES, QUESTION_TYPES, Dataset, attach_change_pairs, check_disjoint, class_map,  # noqa: E402
                       load_dataset, pair_image_indices, synthesize, synthesize_change_pairs, to_pixel_values)
from demo_dense import (DENSE_SIDE, BoxHeads, BoxWriterDecoder, DenseVisionEncoder, box_iou, colours_of,  # noqa: E402
                        detection_targets, head_boxes, number_token_ids, query_ids, region_fixed_channels, train_dense)
from demo_eval import evaluate, evaluate_tasks  # noqa: E402
from demo_model import (GRID, MASK_LABELS, AuxHeads, ConvVisionEncoder, DemoSizes, ExpertDecoder, MaskHeads,  # noqa: E402
                        QuestionClassifier, SceneHead)
from demo_tasks import (EXPERTS, MASK_GRID, mask_copy_tokens, PACK_EXPERTS, Encoder, Task, any_vqa_task, batch_features, box_text, build_tokenizer,  # noqa: E402
                        change_caption_task, change_mask_grid, change_mask_task, classification_task, fixed_channels,
                        grid_labels, grid_to_tokens, tokens_to_grid,
                        expert_caption_task, expert_vqa_task, generic_caption_task, grounding_task, make_batch,
                        referring_task, segmentation_task)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The lead's evaluation sets: `rsmoe synth --count 1000 --seed 9999`, plus fresh scenes; checked disjoint.
HELD_OUT_DATASETS = [(9999, 20000)]
DATA_SEED_OFFSET = 1000  # training data seed = DATA_SEED_OFFSET + --seed


@dataclass
class Schedule:
    images: int
    stage1_steps: int
    dense_steps: int  # the dense variant: about the decoder compute of stage 1 + stage 2 (its decoder is 3x deeper)
    stage2_steps: int
    batch: int
    eval_images: int
    pairs: Dict[str, int]  # change pairs per split (two-stage only)
    region_steps: int  # stage 2 of the region expert
    pixel_steps: int  # stage 2 of the pixel expert, its language model
    pixel_batch: int  # segmentation masks per pixel step (and half as many change masks)
    pair_batch: int  # change pairs per stage-1 / theme step
    fine_steps: int  # the region and pixel experts' encoder with its heads
    fine_batch: int  # images per step of it (and a quarter as many change pairs)


SCHEDULES = {
    "full": Schedule(images=16000, stage1_steps=800, dense_steps=550, stage2_steps=300, batch=32, eval_images=400,
                     pairs={"train": 3200, "val": 200, "test": 10}, region_steps=400, pixel_steps=150, pixel_batch=8,
                     pair_batch=8, fine_steps=1200, fine_batch=48),
    "quick": Schedule(images=600, stage1_steps=30, dense_steps=20, stage2_steps=10, batch=16, eval_images=40,
                      pairs={"train": 40, "val": 10, "test": 4}, region_steps=10, pixel_steps=10, pixel_batch=4,
                      pair_batch=4, fine_steps=20, fine_batch=16),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lr_at(step: int, total: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


class Sampler:
    """Epochs over the training images in a seeded order."""

    def __init__(self, indices: List[int], seed: int):
        self.indices, self.rng, self.order = indices, random.Random(seed), []

    def take(self, n: int) -> List[int]:
        if len(self.order) < n:
            order = list(self.indices)
            self.rng.shuffle(order)
            self.order += order
        out, self.order = self.order[:n], self.order[n:]
        return out


def finite_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params: List[torch.nn.Parameter]) -> bool:
    """Backward, clip to norm 1 and step, unless the loss or the gradient norm is not finite (then the step is
    skipped, as a loss scaler would, so one bad batch cannot turn every weight into NaN)."""
    opt.zero_grad()
    if not torch.isfinite(loss):
        return False
    loss.backward()
    if not torch.isfinite(torch.nn.utils.clip_grad_norm_(params, 1.0)):
        return False
    opt.step()
    return True


def check_finite(what: str, tensors: List[torch.Tensor]) -> None:
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise RuntimeError(f"{what} holds non-finite values")


def lm_loss(model: ExpertDecoder, features: torch.Tensor, tasks: List[Task], enc: Encoder) -> torch.Tensor:
    b = make_batch(tasks, enc)
    logits = model(b.input_ids, batch_features(features, b.rows), b.attention_mask, b.prefix_len)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), b.targets.reshape(-1), ignore_index=-100)


def task_loss(model: ExpertDecoder, features: torch.Tensor, tasks: List[Task], enc: Encoder) -> torch.Tensor:
    """Sum over the task kinds (in order of appearance) of each kind's mean token loss; one batch per kind, so
    that sequences of similar length are padded together and one- and two-image prompts never mix."""
    kinds = list(dict.fromkeys(t.kind for t in tasks))
    return sum(lm_loss(model, features, [t for t in tasks if t.kind == k], enc) for k in kinds)


def aux_loss(features: torch.Tensor, scene_head: SceneHead, aux: AuxHeads, ds: Dataset, chosen: List[int],
             class_maps: Optional[np.ndarray]) -> torch.Tensor:
    labels = torch.tensor([ds.scenes[i].scene_class for i in chosen])
    counts = torch.tensor([ds.scenes[i].counts for i in chosen])
    maps = None if class_maps is None else torch.from_numpy(class_maps[chosen])
    return F.cross_entropy(scene_head(features), labels) + aux.loss(features, counts, maps)


TaskMaker = Callable[[int, object, random.Random], List[Task]]
PairTaskMaker = Callable[[int, int, object, random.Random], List[Task]]


def train_joint(name: str, ds: Dataset, enc: Encoder, encoder: ConvVisionEncoder, scene_head: SceneHead,
                decoders: Dict[str, ExpertDecoder], tasks_for: Dict[str, TaskMaker], steps: int, batch: int,
                seed: int, peak_lr: float = 2e-3, class_maps: Optional[np.ndarray] = None,
                pair_tasks_for: Optional[Dict[str, PairTaskMaker]] = None, pair_batch: int = 0) -> None:
    """Encoder (+ scene and auxiliary heads) and decoders trained together; decoder d learns tasks_for[d] on each
    image and pair_tasks_for[d] on each of ``pair_batch`` change pairs per step. With ``class_maps`` (all scenes)
    the auxiliary heads also learn the class map under every image token."""
    aux = AuxHeads(encoder.projector_out.out_features, len(OBJECT_CLASSES), [16, MASK_GRID] if class_maps is not None else ())
    params = [p for m in [encoder, scene_head, aux, *decoders.values()] for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=0.01)
    sampler, rng = Sampler(ds.indices("train"), seed), random.Random(seed + 1)
    pair_sampler = Sampler(ds.pair_indices("train"), seed + 2) if pair_batch else None
    for m in [encoder, scene_head, aux, *decoders.values()]:
        m.train()
    start, skipped = time.time(), 0
    for step in range(steps):
        chosen = sampler.take(batch)
        pairs = pair_sampler.take(pair_batch) if pair_sampler else []
        pixels = ds.images[chosen]
        if pairs:
            pair_pixels = ds.pair_images[pairs]
            pixels = torch.cat((pixels, pair_pixels[:, 0], pair_pixels[:, 1]))
        features = encoder(to_pixel_values(pixels))
        loss = aux_loss(features[:batch], scene_head, aux, ds, chosen, class_maps)
        parts = {}
        for key, decoder in decoders.items():
            tasks = [t for row, i in enumerate(chosen) for t in tasks_for[key](row, ds.scenes[i], rng)]
            if pairs and pair_tasks_for:
                tasks += [t for j, k in enumerate(pairs)
                          for t in pair_tasks_for[key](batch + j, batch + len(pairs) + j, ds.pairs[k], rng)]
            parts[key] = task_loss(decoder, features, tasks, enc)
            loss = loss + parts[key]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        skipped += not finite_step(opt, loss, params)
        if step % 50 == 0 or step == steps - 1:
            detail = " ".join(f"{k}={v.item():.3f}" for k, v in parts.items())
            log(f"{name} step {step + 1}/{steps} loss {loss.item():.3f} ({detail}) {time.time() - start:.0f}s"
                + (f", {skipped} non-finite steps skipped" if skipped else ""))


@dataclass
class Stage2Data:
    """Cached features of the frozen encoder: the training images, then every training pair's before and after."""
    features: torch.Tensor
    rows_of: Dict[int, int]  # dataset image index -> feature row
    pair_rows: Dict[int, Tuple[int, int]]  # position in ds.pairs -> (before row, after row)
    class_maps: np.ndarray  # [N,H,W] of every dataset image (train rows used)
    change_grids: Dict[int, np.ndarray]  # position in ds.pairs -> change-mask grid
    # The pixel expert's mask heads on the training features (set before its language model is tuned):
    seg_cells: Optional[np.ndarray] = None  # [N_train,G,G] cell labels (0 others, c + 1 for OBJECT_CLASSES[c])
    change_cells: Optional[Dict[int, np.ndarray]] = None  # position in ds.pairs -> [G,G] changed cells


# Stage-2 tasks of each expert, for the images and change pairs of one step: (chosen image indices, their feature
# rows, chosen pairs, rng) -> tasks with rows into Stage2Data.features.
def stage2_tasks(name: str, ds: Dataset, data: Stage2Data, chosen: List[int], pairs: List[int],
                 rng: random.Random, pixel_batch: int, box_heads: Optional[BoxHeads] = None,
                 colours: Tuple[str, ...] = ()) -> List[Task]:
    rows = [data.rows_of[i] for i in chosen]
    if name in EXPERTS:
        tasks = [expert_caption_task(name, r, ds.scenes[i], rng) for r, i in zip(rows, chosen)]
        tasks += [expert_vqa_task(name, r, ds.scenes[i], rng) for r, i in zip(rows, chosen) for _ in range(2)]
        if name == "theme":
            tasks += [classification_task(r, ds.scenes[i]) for r, i in zip(rows, chosen)]
            tasks += [change_caption_task(*data.pair_rows[k], ds.pairs[k]) for k in pairs]
        return tasks
    if name == "region":
        # Grounding answers are the box the writer's heads find (the language model learns to write it).
        grounding = [t for t in (grounding_task(r, ds.scenes[i], rng) for r, i in zip(rows, chosen)) if t is not None]
        if grounding:
            ids = [query_ids(t.prompt[len("[VG] "):], colours) for t in grounding]
            boxes = head_boxes(box_heads, data.features[[t.row for t in grounding]], [c for c, _ in ids], [c for _, c in ids])
            for t, box in zip(grounding, boxes):
                t.answer = box_text(box)
        return grounding + [t for t in (referring_task(r, ds.scenes[i], rng) for r, i in zip(rows, chosen)) if t is not None]
    if name == "pixel":
        return ([segmentation_task(r, data.class_maps[i], ds.scenes[i], rng, data.seg_cells[r])
                 for r, i in zip(rows[:pixel_batch], chosen)]
                + [change_mask_task(*data.pair_rows[k], data.change_cells[k]) for k in pairs])
    raise ValueError(f"no stage-2 tasks for expert {name}")


def train_expert(name: str, ds: Dataset, enc: Encoder, data: Stage2Data, expert: ExpertDecoder, steps: int,
                 batch: int, pair_batch: int, seed: int, pixel_batch: int = 0, peak_lr: float = 1e-3,
                 colours: Tuple[str, ...] = ()) -> None:
    """Stage 2: one expert on cached features of the frozen encoder, on its own tasks (``stage2_tasks``). A writer's
    heads (trained before) stay frozen."""
    heads = getattr(expert.decoder, "heads", None)
    if heads is not None:
        heads.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in expert.parameters() if p.requires_grad], lr=peak_lr, weight_decay=0.01)
    sampler, rng = Sampler(ds.indices("train"), seed), random.Random(seed + 1)
    pair_sampler = Sampler(sorted(data.pair_rows), seed + 2) if pair_batch else None
    expert.train()
    start, skipped = time.time(), 0
    for step in range(steps):
        chosen = sampler.take(batch)
        pairs = pair_sampler.take(pair_batch) if pair_sampler else []
        loss = task_loss(expert, data.features, stage2_tasks(name, ds, data, chosen, pairs, rng, pixel_batch, heads, colours), enc)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup=30)
        skipped += not finite_step(opt, loss, [p for p in expert.parameters() if p.requires_grad])
        if step % 50 == 0 or step == steps - 1:
            log(f"stage 2 {name} step {step + 1}/{steps} loss {loss.item():.3f} {time.time() - start:.0f}s"
                + (f", {skipped} non-finite steps skipped" if skipped else ""))


@dataclass
class FineStage:
    """The region and pixel experts' encoder, its trained heads and its cached training features."""
    encoder: DenseVisionEncoder
    mask_heads: MaskHeads
    box_heads: BoxHeads
    colours: Tuple[str, ...]
    data: Stage2Data
    report: Dict[str, float]


def train_fine_stage(ds: Dataset, class_maps: np.ndarray, sizes: DemoSizes, sched: Schedule, seed: int) -> FineStage:
    """The dense encoder and its heads on dense targets (cells of the mask-text rule, changed cells, box centres),
    then its features of the training images and pairs, labelled by the mask heads for the pixel expert's language
    model; the heads' own scores on the val split go into the report."""
    torch.manual_seed(seed)
    colours = tuple(colours_of(ds))
    encoder = DenseVisionEncoder(sizes.hidden_size)
    mask_heads = MaskHeads(sizes.hidden_size, MASK_GRID, side=DENSE_SIDE)
    box_heads = BoxHeads(sizes.hidden_size, len(colours))
    used = ds.indices("train") + ds.indices("val")
    seg = np.zeros((len(ds.scenes), DENSE_SIDE ** 2, (MASK_GRID // DENSE_SIDE) ** 2), dtype=np.int64)
    det = [np.zeros((len(ds.scenes), DENSE_SIDE ** 2, 16), dtype=np.int64),
           np.full((len(ds.scenes), DENSE_SIDE ** 2, 16), -100, dtype=np.int64),
           np.zeros((len(ds.scenes), DENSE_SIDE ** 2, 16, 4), dtype=np.float32)]
    for i in used:
        seg[i] = grid_to_tokens(grid_labels(class_maps[i], MASK_LABELS, MASK_GRID), DENSE_SIDE)
        for a, t in zip(det, detection_targets(ds.scenes[i], colours)):
            a[i] = t
    change = {k: grid_to_tokens(change_mask_grid(ds.pairs[k]), DENSE_SIDE) for k in ds.pair_indices("train") + ds.pair_indices("val")}
    train_change = {k: change[k] for k in ds.pair_indices("train")}
    start = time.time()
    train_dense(encoder, mask_heads, box_heads, ds, seg, train_change, tuple(det), sched.fine_steps, sched.fine_batch,
                sched.fine_batch // 4, seed, log)
    log(f"dense encoder trained in {time.time() - start:.0f}s")
    report = fine_heads_report(ds, encoder, mask_heads, box_heads, colours, seg, change)
    log("dense heads on val: " + json.dumps(report))
    with torch.backends.mkldnn.flags(enabled=True):  # see train_dense
        data = stage2_data(encoder, ds, class_maps)
    with torch.no_grad():
        n = len(ds.indices("train"))
        cells = torch.cat([mask_heads.segment_logits(data.features[i:min(i + 512, n)]).argmax(-1) for i in range(0, n, 512)])
        pairs = sorted(data.pair_rows)
        before = data.features[[data.pair_rows[k][0] for k in pairs]]
        after = data.features[[data.pair_rows[k][1] for k in pairs]]
        changed = mask_heads.change_logits(before, after).argmax(-1)
    data.seg_cells = np.stack([tokens_to_grid(c, DENSE_SIDE) for c in cells.numpy()])
    data.change_cells = {k: tokens_to_grid(c, DENSE_SIDE) for k, c in zip(pairs, changed.numpy())}
    return FineStage(encoder, mask_heads, box_heads, colours, data, report)


@torch.no_grad()
def fine_heads_report(ds: Dataset, encoder: DenseVisionEncoder, mask_heads: MaskHeads, box_heads: BoxHeads,
                      colours: Tuple[str, ...], seg: np.ndarray, change: Dict[int, np.ndarray]) -> Dict[str, float]:
    """The heads alone on val: cell accuracy and cell-level mIoU (all classes), changed-cell F1, and the grounding
    Acc@0.5 of the box the writer would copy for each object's class (and colour)."""
    val = ds.indices("val")[:400]
    features = torch.cat([encoder(to_pixel_values(ds.images[val[i:i + 200]])) for i in range(0, len(val), 200)])
    pred = mask_heads.segment_logits(features).argmax(-1).numpy()
    truth = seg[val]
    inter = [np.sum((pred == c) & (truth == c)) for c in range(MASK_LABELS)]
    union = [np.sum((pred == c) | (truth == c)) for c in range(MASK_LABELS)]
    ious = [i / u for i, u in zip(inter, union) if u > 0]
    vp = ds.pair_indices("val")
    images = ds.pair_images[vp]
    changed = mask_heads.change_logits(encoder(to_pixel_values(images[:, 0])), encoder(to_pixel_values(images[:, 1]))).argmax(-1).numpy()
    ct = np.stack([change[k] for k in vp])
    tp, fp, fn = np.sum((changed == 1) & (ct == 1)), np.sum((changed == 1) & (ct == 0)), np.sum((changed == 0) & (ct == 1))
    rng = random.Random(5)
    rows, cls, col, refs = [], [], [], []
    for r, i in enumerate(val):
        t = grounding_task(r, ds.scenes[i], rng)
        if t is None:
            continue
        c, k = query_ids(t.prompt[len("[VG] "):], colours)
        rows.append(r)
        cls.append(c)
        col.append(k)
        refs.append([[v * 100.0 / 128 for v in o.box] for o in ds.scenes[i].objects
                     if o.cls + 1 == c and (k == 0 or colours[k - 1].split()[-1] == o.colour.split()[-1])])
    boxes = head_boxes(box_heads, features[rows], cls, col)
    hits = [max((box_iou(b, ref) for ref in rr), default=0.0) >= 0.5 for b, rr in zip(boxes, refs)]
    return {"cell accuracy": round(100.0 * float(np.mean(pred == truth)), 1), "cell mIoU": round(100.0 * float(np.mean(ious)), 1),
            "changed-cell F1": round(100.0 * 2 * tp / max(1, 2 * tp + fp + fn), 1),
            "head grounding acc@0.5": round(100.0 * sum(hits) / max(1, len(hits)), 1)}


def train_question_classifier(ds: Dataset, enc: Encoder, seed: int, steps: int = 300) -> QuestionClassifier:
    torch.manual_seed(seed)
    model = QuestionClassifier(len(enc.tok), len(QUESTION_TYPES))
    questions = [(qa["question"], QUESTION_TYPES.index(qa["type"])) for i in ds.indices("train") for qa in ds.scenes[i].vqa]
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        sample = rng.sample(questions, 64)
        ids = [enc.tok.encode(q) for q, _ in sample]
        length = max(len(i) for i in ids)
        x = torch.tensor([i + [0] * (length - len(i)) for i in ids])
        mask = torch.tensor([[1] * len(i) + [0] * (length - len(i)) for i in ids])
        loss = F.cross_entropy(model(x, mask), torch.tensor([t for _, t in sample]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def caption_tasks_stage1(row, scene, rng):
    """Stage 1 (dense decoder, all data): one caption (an aspect with its expert prompt, or a full reference
    with the generic prompt) and two questions with the prompt of the expert owning their type, and every
    other image one of RSUniVLM's short tasks (classification, grounding, referring)."""
    pick = rng.randrange(len(EXPERTS) + 1)
    caption = generic_caption_task(row, scene, rng) if pick == len(EXPERTS) else expert_caption_task(EXPERTS[pick], row, scene, rng)
    tasks = [caption] + [any_vqa_task(row, scene, rng, generic=False) for _ in range(2)]
    extra = rng.randrange(6)
    if extra == 0:
        tasks.append(classification_task(row, scene))
    elif extra == 1:
        tasks.append(grounding_task(row, scene, rng))
    elif extra == 2:
        tasks.append(referring_task(row, scene, rng))
    return [t for t in tasks if t is not None]


def pair_tasks_stage1(row, row2, pair, rng):
    return [change_caption_task(row, row2, pair)]


def expert_tasks(expert: str) -> TaskMaker:
    return lambda row, scene, rng: [expert_caption_task(expert, row, scene, rng)] + [
        expert_vqa_task(expert, row, scene, rng) for _ in range(2)]


def dense_tasks(row, scene, rng):
    return [generic_caption_task(row, scene, rng)] + [any_vqa_task(row, scene, rng, generic=True) for _ in range(3)]


@torch.no_grad()
def encode_all(encoder: ConvVisionEncoder, images: torch.Tensor) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(to_pixel_values(images[i:i + 256])) for i in range(0, len(images), 256)])


def stage2_data(encoder: ConvVisionEncoder, ds: Dataset, class_maps: np.ndarray) -> Stage2Data:
    train_idx = ds.indices("train")
    train_pairs = ds.pair_indices("train")
    pair_images = ds.pair_images[train_pairs]
    features = torch.cat((encode_all(encoder, ds.images[train_idx]), encode_all(encoder, pair_images[:, 0]),
                          encode_all(encoder, pair_images[:, 1])))
    n, p = len(train_idx), len(train_pairs)
    return Stage2Data(features=features, rows_of={i: r for r, i in enumerate(train_idx)},
                      pair_rows={k: (n + j, n + p + j) for j, k in enumerate(train_pairs)}, class_maps=class_maps,
                      change_grids={k: change_mask_grid(ds.pairs[k]) for k in train_pairs})


def stage1_key(tok, sizes: DemoSizes, sched: Schedule) -> str:
    """A fingerprint of what stage 1 depends on (vocabulary, sizes, its schedule, the code of its model and tasks), so
    that a cached stage 1 is only reused by runs that would train the same one."""
    import demo_model
    import demo_tasks
    code = [inspect.getsource(f) for f in (
        demo_model.ConvVisionEncoder, demo_model.AuxHeads, demo_model.ConnectorDecoder, demo_model.GroupedAttention,
        demo_model.SceneHead, demo_tasks.grounding_task, demo_tasks.referring_task, demo_tasks.object_phrase,
        demo_tasks.grounding_answer, demo_tasks.classification_task, demo_tasks.change_caption_task,
        demo_tasks.any_vqa_task, demo_tasks.expert_caption_task, demo_tasks.generic_caption_task,
        caption_tasks_stage1, pair_tasks_stage1, train_joint, aux_loss, task_loss)]
    stage1 = [sched.images, sched.stage1_steps, sched.batch, sched.pairs, sched.pair_batch]
    blob = json.dumps([tok.tokens, repr(sizes), stage1, GRID, MASK_GRID, code])
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="pack directory to write (models/demo for the shipped pack)")
    ap.add_argument("--variant", choices=["two-stage", "one-stage", "dense"], default="two-stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny data and few steps: checks the pipeline end to end")
    ap.add_argument("--cache", default=os.path.join(REPO, ".cache", "train-data"), help="synthetic data cache")
    ap.add_argument("--skip-parity", action="store_true", help="do not run the TypeScript parity spec at the end")
    args = ap.parse_args()

    torch.set_num_threads(2)
    # Debian's torch 1.13 with oneDNN (mkldnn) convolutions gives, at random, gradients of 1e14 or inf in the
    # encoder's convolutions (the same batch is fine when re-run): over half of the stage-1 steps once the
    # class-map losses were added. The native convolutions do not.
    torch.backends.mkldnn.enabled = False
    torch.manual_seed(args.seed)
    t0 = time.time()
    sched = SCHEDULES["quick" if args.quick else "full"]
    data_seed = DATA_SEED_OFFSET + args.seed
    disjoint = check_disjoint(data_seed, sched.images, HELD_OUT_DATASETS)
    root = os.path.join(args.cache, f"synth-seed{data_seed}-n{sched.images}")
    synthesize(REPO, root, sched.images, data_seed)
    ds = load_dataset(root, data_seed)
    if args.variant == "two-stage":
        pairs_dir = os.path.join(root, "demo_change_pairs")
        synthesize_change_pairs(REPO, pairs_dir, data_seed, pair_image_indices([s.split for s in ds.scenes], sched.pairs))
        attach_change_pairs(ds, pairs_dir)
    tok = build_tokenizer(ds)
    enc = Encoder(tok, GRID * GRID)
    fine_enc = Encoder(tok, DENSE_SIDE * DENSE_SIDE)  # prompts of the region and pixel experts (their own encoder)
    fine = None
    log(f"data: {len(ds.scenes)} scenes ({len(ds.indices('train'))} train), {len(ds.pairs)} change pairs "
        f"({len(ds.pair_indices('train'))} train), vocabulary {len(tok)} words")

    sizes = DemoSizes()
    encoder = ConvVisionEncoder(sizes.hidden_size, sizes.encoder_channels)
    scene_head = SceneHead(sizes.hidden_size)
    times: Dict[str, float] = {}
    if args.variant == "two-stage":
        dense = ExpertDecoder(len(tok), sizes)
        start = time.time()
        class_maps = np.stack([class_map(scene) for scene in ds.scenes])
        log(f"class maps of {len(ds.scenes)} scenes in {time.time() - start:.0f}s")
        # The checkpoint is keyed by what stage 1 depends on, so a changed vocabulary or model is never loaded.
        key = stage1_key(tok, sizes, sched)
        checkpoint = os.path.join(args.cache, f"stage1-seed{args.seed}-{'quick' if args.quick else 'full'}-{key}.pt")
        stage1 = torch.nn.ModuleDict({"encoder": encoder, "scene_head": scene_head, "dense": dense})
        if os.path.exists(checkpoint):
            stage1.load_state_dict(torch.load(checkpoint))
            log(f"stage 1: loaded {checkpoint} (delete it to train stage 1 again)")
        else:
            train_joint("stage 1", ds, enc, encoder, scene_head, {"dense": dense}, {"dense": caption_tasks_stage1},
                        sched.stage1_steps, sched.batch, args.seed, class_maps=class_maps,
                        pair_tasks_for={"dense": pair_tasks_stage1}, pair_batch=sched.pair_batch)
            torch.save(stage1.state_dict(), checkpoint)
        times["stage 1"] = time.time() - start
        check_finite("the stage-1 model", list(stage1.state_dict().values()))
        start = time.time()
        data = stage2_data(encoder, ds, class_maps)
        check_finite("the stage-1 image features", [data.features])
        t = time.time()
        fine = train_fine_stage(ds, class_maps, sizes, sched, args.seed + 20)
        times["stage 2 dense encoder"] = time.time() - t
        experts = {}
        for k, name in enumerate(PACK_EXPERTS):
            t = time.time()
            if name == "pixel":
                experts[name] = ExpertDecoder.mask_writer_from(dense, sizes, MASK_GRID, fixed_channels(tok), side=DENSE_SIDE)
                experts[name].decoder.heads.load_state_dict(fine.mask_heads.state_dict())
                experts[name].decoder.set_copy_tokens(*mask_copy_tokens(tok, MASK_GRID))
                train_expert(name, ds, fine_enc, fine.data, experts[name], sched.pixel_steps, sched.pixel_batch,
                             sched.pixel_batch // 2, args.seed + 10 + k, pixel_batch=sched.pixel_batch)
            elif name == "region":
                writer = BoxWriterDecoder(dense.text_config, sizes.connector_layers, len(fine.colours), number_token_ids(tok))
                experts[name] = ExpertDecoder.mask_writer_from(dense, sizes, 0, region_fixed_channels(tok, fine.colours), writer=writer)
                writer.heads.load_state_dict(fine.box_heads.state_dict())
                train_expert(name, ds, fine_enc, fine.data, experts[name], sched.region_steps, sched.batch, 0,
                             args.seed + 10 + k, colours=fine.colours)
            else:
                experts[name] = copy.deepcopy(dense)
                train_expert(name, ds, enc, data, experts[name], sched.stage2_steps, sched.batch,
                             sched.pair_batch if name == "theme" else 0, args.seed + 10 + k)
            times[f"stage 2 {name}"] = time.time() - t
        times["stage 2"] = time.time() - start
    elif args.variant == "one-stage":
        experts = {name: ExpertDecoder(len(tok), sizes) for name in EXPERTS}
        start = time.time()
        train_joint("one-stage", ds, enc, encoder, scene_head, experts, {n: expert_tasks(n) for n in EXPERTS},
                    sched.stage1_steps, sched.batch, args.seed)
        times["joint"] = time.time() - start
    else:
        dense_sizes = DemoSizes(causal_layers=len(EXPERTS) * (sizes.connector_layers + sizes.causal_layers) - sizes.connector_layers)
        experts = {"dense": ExpertDecoder(len(tok), dense_sizes)}
        start = time.time()
        train_joint("dense", ds, enc, encoder, scene_head, experts, {"dense": dense_tasks},
                    sched.dense_steps, sched.batch, args.seed)
        times["dense"] = time.time() - start
    for m in [encoder, scene_head, *experts.values()] + ([fine.encoder] if fine else []):
        m.eval()

    start = time.time()
    question_classifier = train_question_classifier(ds, enc, args.seed)
    times["router question classifier"] = time.time() - start
    start = time.time()
    val = ds.indices("val")[:sched.eval_images]
    max_new = demo_pack.max_new_tokens(ds, tok, dense="dense" in experts)
    task_max_new = demo_pack.task_max_new_tokens(ds, enc, args.seed) if args.variant == "two-stage" else {}
    report = evaluate(ds, val, encoder, scene_head, experts, enc, max_new)
    if args.variant == "two-stage":
        report.update(evaluate_tasks(ds, val, ds.pair_indices("val"), encoder, experts, enc, task_max_new, args.seed + 99,
                                     dense_encoder=fine.encoder, dense_enc=fine_enc))
        report["dense heads"] = fine.report
    times["validation"] = time.time() - start
    log("validation: " + json.dumps(report))

    start = time.time()
    demo_pack.write_pack(demo_pack.PackInputs(
        out=args.out, variant=args.variant, seed=args.seed, data_seed=data_seed, dataset=ds, tok=tok, enc=enc,
        encoder=encoder, scene_head=scene_head, question_classifier=question_classifier, experts=experts,
        sizes=sizes, max_new_tokens=max_new, task_max_new_tokens=task_max_new, validation=report, disjoint=disjoint,
        schedule=sched.__dict__,
        times=times, started=t0, fine_encoder=fine.encoder if fine else None, fine_report=fine.report if fine else None))
    times["export"] = time.time() - start
    log(f"wrote {args.out} in {time.time() - t0:.0f}s total")
    if not args.skip_parity:
        demo_pack.run_parity_spec(REPO, args.out)


if __name__ == "__main__":
    main()
