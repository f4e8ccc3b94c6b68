"""Train the demo model pack (RS-MoE in miniature) on synthetic scenes and export it.

    /usr/bin/python3 tools/train/train_demo.py --out models/demo                      # two-stage (default)
    /usr/bin/python3 tools/train/train_demo.py --out /tmp/packs/one-stage --variant one-stage
    /usr/bin/python3 tools/train/train_demo.py --out /tmp/packs/dense --variant dense

Variants:
  two-stage  stage 1 trains the shared encoder, the connector and ONE dense decoder on all captions and
             questions; stage 2 freezes the encoder, starts every expert from the stage-1 decoder and tunes
             it on its aspect caption and its question types.
  one-stage  the encoder and the three experts trained together from scratch, each expert on its aspect only.
  dense      one decoder with the layers of the three experts together, trained on the full reference
             captions and all questions with one generic prompt.

Deterministic from --seed (same torch version and thread count). See tools/train/README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import demo_pack  # noqa: E402
from demo_data import OBJECT_CLASSES, QUESTION_TYPES, Dataset, check_disjoint, load_dataset, synthesize, to_pixel_values  # noqa: E402
from demo_eval import evaluate  # noqa: E402
from demo_model import GRID, AuxHeads, ConvVisionEncoder, DemoSizes, ExpertDecoder, QuestionClassifier, SceneHead  # noqa: E402
from demo_tasks import (EXPERTS, Encoder, Task, any_vqa_task, build_tokenizer, expert_caption_task,  # noqa: E402
                        expert_vqa_task, generic_caption_task, make_batch)

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


SCHEDULES = {
    "full": Schedule(images=16000, stage1_steps=800, dense_steps=550, stage2_steps=300, batch=32, eval_images=400),
    "quick": Schedule(images=600, stage1_steps=30, dense_steps=20, stage2_steps=10, batch=16, eval_images=40),
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
    logits = model(b.input_ids, features[b.rows], b.attention_mask, b.prefix_len)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), b.targets.reshape(-1), ignore_index=-100)


def aux_loss(features: torch.Tensor, scene_head: SceneHead, aux: AuxHeads, ds: Dataset, chosen: List[int]) -> torch.Tensor:
    labels = torch.tensor([ds.scenes[i].scene_class for i in chosen])
    counts = torch.tensor([ds.scenes[i].counts for i in chosen])
    return F.cross_entropy(scene_head(features), labels) + aux.loss(features, counts)


TaskMaker = Callable[[int, object, random.Random], List[Task]]


def train_joint(name: str, ds: Dataset, enc: Encoder, encoder: ConvVisionEncoder, scene_head: SceneHead,
                decoders: Dict[str, ExpertDecoder], tasks_for: Dict[str, TaskMaker], steps: int, batch: int,
                seed: int, peak_lr: float = 2e-3) -> None:
    """Encoder (+ scene and auxiliary heads) and decoders trained together; decoder d learns tasks_for[d]."""
    aux = AuxHeads(encoder.projector_out.out_features, len(OBJECT_CLASSES))
    params = [p for m in [encoder, scene_head, aux, *decoders.values()] for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=peak_lr, weight_decay=0.01)
    sampler, rng = Sampler(ds.indices("train"), seed), random.Random(seed + 1)
    for m in [encoder, scene_head, aux, *decoders.values()]:
        m.train()
    start, skipped = time.time(), 0
    for step in range(steps):
        chosen = sampler.take(batch)
        features = encoder(to_pixel_values(ds.images[chosen]))
        loss = aux_loss(features, scene_head, aux, ds, chosen)
        parts = {}
        for key, decoder in decoders.items():
            tasks = [t for row, i in enumerate(chosen) for t in tasks_for[key](row, ds.scenes[i], rng)]
            captions = [t for t in tasks if t.kind == "caption"]
            questions = [t for t in tasks if t.kind == "vqa"]
            parts[key] = lm_loss(decoder, features, captions, enc) + lm_loss(decoder, features, questions, enc)
            loss = loss + parts[key]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        skipped += not finite_step(opt, loss, params)
        if step % 50 == 0 or step == steps - 1:
            detail = " ".join(f"{k}={v.item():.3f}" for k, v in parts.items())
            log(f"{name} step {step + 1}/{steps} loss {loss.item():.3f} ({detail}) {time.time() - start:.0f}s"
                + (f", {skipped} non-finite steps skipped" if skipped else ""))


def train_expert(name: str, ds: Dataset, enc: Encoder, features: torch.Tensor, rows_of: Dict[int, int],
                 expert: ExpertDecoder, steps: int, batch: int, seed: int, peak_lr: float = 1e-3) -> None:
    """Stage 2: one expert on cached features of the frozen encoder; its aspect caption and its questions."""
    opt = torch.optim.AdamW(expert.parameters(), lr=peak_lr, weight_decay=0.01)
    sampler, rng = Sampler(ds.indices("train"), seed), random.Random(seed + 1)
    expert.train()
    start, skipped = time.time(), 0
    for step in range(steps):
        chosen = sampler.take(batch)
        feats = features[[rows_of[i] for i in chosen]]
        captions = [expert_caption_task(name, row, ds.scenes[i], rng) for row, i in enumerate(chosen)]
        questions = [expert_vqa_task(name, row, ds.scenes[i], rng) for row, i in enumerate(chosen) for _ in range(2)]
        loss = lm_loss(expert, feats, captions, enc) + lm_loss(expert, feats, questions, enc)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup=30)
        skipped += not finite_step(opt, loss, list(expert.parameters()))
        if step % 50 == 0 or step == steps - 1:
            log(f"stage 2 {name} step {step + 1}/{steps} loss {loss.item():.3f} {time.time() - start:.0f}s"
                + (f", {skipped} non-finite steps skipped" if skipped else ""))


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
    with the generic prompt) and two questions with the prompt of the expert owning their type."""
    pick = rng.randrange(len(EXPERTS) + 1)
    caption = generic_caption_task(row, scene, rng) if pick == len(EXPERTS) else expert_caption_task(EXPERTS[pick], row, scene, rng)
    return [caption] + [any_vqa_task(row, scene, rng, generic=False) for _ in range(2)]


def expert_tasks(expert: str) -> TaskMaker:
    return lambda row, scene, rng: [expert_caption_task(expert, row, scene, rng)] + [
        expert_vqa_task(expert, row, scene, rng) for _ in range(2)]


def dense_tasks(row, scene, rng):
    return [generic_caption_task(row, scene, rng)] + [any_vqa_task(row, scene, rng, generic=True) for _ in range(3)]


@torch.no_grad()
def encode_all(encoder: ConvVisionEncoder, ds: Dataset, indices: List[int]) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(to_pixel_values(ds.images[indices[i:i + 256]])) for i in range(0, len(indices), 256)])


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
    torch.manual_seed(args.seed)
    t0 = time.time()
    sched = SCHEDULES["quick" if args.quick else "full"]
    data_seed = DATA_SEED_OFFSET + args.seed
    disjoint = check_disjoint(data_seed, sched.images, HELD_OUT_DATASETS)
    root = os.path.join(args.cache, f"synth-seed{data_seed}-n{sched.images}")
    synthesize(REPO, root, sched.images, data_seed)
    ds = load_dataset(root, data_seed)
    tok = build_tokenizer(ds)
    enc = Encoder(tok, GRID * GRID)
    log(f"data: {len(ds.scenes)} scenes ({len(ds.indices('train'))} train), vocabulary {len(tok)} words")

    sizes = DemoSizes()
    encoder = ConvVisionEncoder(sizes.hidden_size, sizes.encoder_channels)
    scene_head = SceneHead(sizes.hidden_size)
    times: Dict[str, float] = {}
    if args.variant == "two-stage":
        dense = ExpertDecoder(len(tok), sizes)
        start = time.time()
        checkpoint = os.path.join(args.cache, f"stage1-seed{args.seed}-{'quick' if args.quick else 'full'}.pt")
        stage1 = torch.nn.ModuleDict({"encoder": encoder, "scene_head": scene_head, "dense": dense})
        if os.path.exists(checkpoint):
            stage1.load_state_dict(torch.load(checkpoint))
            log(f"stage 1: loaded {checkpoint} (delete it to train stage 1 again)")
        else:
            train_joint("stage 1", ds, enc, encoder, scene_head, {"dense": dense}, {"dense": caption_tasks_stage1},
                        sched.stage1_steps, sched.batch, args.seed)
            torch.save(stage1.state_dict(), checkpoint)
        times["stage 1"] = time.time() - start
        check_finite("the stage-1 model", list(stage1.state_dict().values()))
        start = time.time()
        train_idx = ds.indices("train")
        features = encode_all(encoder, ds, train_idx)
        check_finite("the stage-1 image features", [features])
        rows_of = {i: r for r, i in enumerate(train_idx)}
        experts = {}
        for k, name in enumerate(EXPERTS):
            experts[name] = copy.deepcopy(dense)
            train_expert(name, ds, enc, features, rows_of, experts[name], sched.stage2_steps, sched.batch, args.seed + 10 + k)
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
    for m in [encoder, scene_head, *experts.values()]:
        m.eval()

    start = time.time()
    question_classifier = train_question_classifier(ds, enc, args.seed)
    times["router question classifier"] = time.time() - start
    start = time.time()
    val = ds.indices("val")[:sched.eval_images]
    max_new = demo_pack.max_new_tokens(ds, tok, dense="dense" in experts)
    report = evaluate(ds, val, encoder, scene_head, experts, enc, max_new)
    times["validation"] = time.time() - start
    log("validation: " + json.dumps(report))

    start = time.time()
    demo_pack.write_pack(demo_pack.PackInputs(
        out=args.out, variant=args.variant, seed=args.seed, data_seed=data_seed, dataset=ds, tok=tok, enc=enc,
        encoder=encoder, scene_head=scene_head, question_classifier=question_classifier, experts=experts,
        sizes=sizes, max_new_tokens=max_new, validation=report, disjoint=disjoint, schedule=sched.__dict__,
        times=times, started=t0))
    times["export"] = time.time() - start
    log(f"wrote {args.out} in {time.time() - t0:.0f}s total")
    if not args.skip_parity:
        demo_pack.run_parity_spec(REPO, args.out)


if __name__ == "__main__":
    main()
