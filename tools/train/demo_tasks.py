"""Prompts, vocabulary, training tasks and batches of the demo pack.

The prompt templates here are the ones pack.json gives the InstructionRouter, so the experts are trained
on exactly what the mesh sends them: the template with ``{question}`` / ``{scene}`` / ``{query}`` / ``{box}``
filled as libs/routing's ``renderPrompt`` does it (placeholder replaced, whitespace collapsed, trimmed),
wrapped by the chat template of tokenizer_config.json (``tiny_llava.render_prompt``; one image placeholder
per image, in one user turn, as libs/runtime's PromptEncoder renders a several-image request).

RSUniVLM's tasks (prompts start with the task tag):
* theme (granularity image): classification ``[CLS]`` -> a scene class name of SCENE_CLASSES; change
  captioning ``[CCD]`` (two images, before then after) -> libs/synth's change caption.
* region: grounding ``[VG] {query}`` (an object phrase: class, optionally with its colour) -> the boxes of the
  matching objects as ``[x1, y1, x2, y2]`` in integer percent, largest first, at most MAX_BOXES; referring
  ``[REF] {box}`` (an object's box in the same text form) -> its colour and class noun.
* pixel: segmentation ``[SEG] {query}`` (class names of OBJECT_CLASSES joined by ", ") and change masks (two
  images) -> RSUniVLM's mask text on a MASK_GRID x MASK_GRID grid: one line per row, cells ``label*count``
  joined by ", ", ``others`` for the background (and for the unqueried classes), ``changed`` for change.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import tiny_llava as tl
from demo_data import (IMAGE_SIZE, OBJECT_CLASSES, OBJECT_NOUNS, SCENE_CLASSES, SCENE_NAMES, ChangePair, Dataset, Scene,
                       change_map, class_map, texts_of)

HINT = " scene hint : {scene}"
EXPERT_PROMPTS: Dict[str, Dict[str, str]] = {
    "theme": {
        "caption": "describe the scene theme of the image ." + HINT,
        "vqa": "answer the question about the scene theme : {question}" + HINT,
    },
    "object": {
        "caption": "describe the objects in the image and how many there are ." + HINT,
        "vqa": "answer the question about the objects : {question}" + HINT,
    },
    "relation": {
        "caption": "describe the spatial relations between the objects ." + HINT,
        "vqa": "answer the question about the spatial relations : {question}" + HINT,
    },
}
GENERIC_PROMPTS: Dict[str, str] = {
    "caption": "describe the image in detail ." + HINT,
    "vqa": "answer the question : {question}" + HINT,
}
EXPERT_ASPECT = {"theme": "theme", "object": "objects", "relation": "relations"}
EXPERT_QUESTION_TYPES = {"theme": ["rural_urban", "area"], "object": ["presence", "count"], "relation": ["comparison"]}
# The RS-MoE caption experts (aspects, question types); stage 1 and the ablation variants are about them.
EXPERTS = list(EXPERT_PROMPTS)

# RSUniVLM's tasks: the templates the mesh fills, per expert and task key of pack.json's `prompts`.
TASK_PROMPTS: Dict[str, Dict[str, str]] = {
    "theme": {
        "classification": "[CLS] what is the scene class of the image ?",
        "change_caption": "[CCD] describe the changes between the two images .",
    },
    "region": {
        "grounding": "[VG] {query}",
        "referring": "[REF] {box}",
    },
    "pixel": {
        "segmentation": "[SEG] {query}",
        "change_mask": "[SEG] segment the changed areas between the two images .",
    },
}
GRANULARITY = {"theme": "image", "region": "region", "pixel": "pixel"}
TWO_IMAGE_TASKS = ("change_caption", "change_mask")
# Experts of the two-stage pack: the caption experts, then the region and pixel experts.
PACK_EXPERTS = EXPERTS + ["region", "pixel"]
MASK_BACKGROUND = "others"
CHANGED = "changed"
# pack.json's `labels`: what a classification answer and a segmentation mask may name.
LABELS = {"classification": list(SCENE_CLASSES), "segmentation": [MASK_BACKGROUND] + list(OBJECT_CLASSES)}
# Mask text grid of segmentation and change masks: MASK_GRID x MASK_GRID cells over the image (see
# tools/train/README.md for the measurement behind 24: finer grids score higher, but their answers pass the
# runtime's 512 new tokens).
MASK_GRID = 24
# A cell takes the label of the queried class covering most of it when that share is at least this much of the
# cell (else `others`): below one half, so that thin roads and small objects survive the grid.
MASK_CELL_SHARE = 0.35
# Grounding answers list at most this many boxes (largest first: the first box is the one scored).
MAX_BOXES = 3
# Share of training prompts whose {scene} is left empty, so that a pack without a router model works.
HINT_DROPOUT = 0.25
# Counts in answers and captions go up to ~100; every number up to this is a vocabulary word.
MAX_NUMBER_WORD = 200


PLACEHOLDERS = re.compile(r"\{(question|scene|query|box)\}")


def render_template(template: str, question: str = "", scene: str = "", query: str = "", box: str = "") -> str:
    """libs/routing renderPrompt: fill placeholders, collapse whitespace, trim."""
    values = {"question": question, "scene": scene, "query": query, "box": box}
    filled = PLACEHOLDERS.sub(lambda m: values[m.group(1)], template)
    return re.sub(r"\s+", " ", filled).strip()


def build_tokenizer(dataset: Dataset) -> tl.WordTokenizer:
    """Specials, chat words, then every word of the training split, the prompts, labels, box and mask text and the
    numbers, sorted, then the line break (a non-special added token: mask rows are lines)."""
    words = set(tl.BASE_WORDS)
    train = [s for s in dataset.scenes if s.split == "train"]
    texts = list(texts_of(train))
    texts += [t for p in EXPERT_PROMPTS.values() for t in p.values()] + list(GENERIC_PROMPTS.values())
    texts += [t for p in TASK_PROMPTS.values() for t in p.values()]
    texts += list(SCENE_NAMES.values()) + LABELS["classification"] + LABELS["segmentation"] + [CHANGED]
    texts += [p.caption for p in dataset.pairs if dataset.scenes[p.index].split == "train"]
    texts += [f"{c} {n}" for c in {o.colour for s in train for o in s.objects} for n, _ in OBJECT_NOUNS.values()]
    texts += ["[0, 0, 100, 100], [0, 0, 100, 100]", "others*1, others*1"]
    for text in texts:
        words.update(tl.WHITESPACE_SPLIT.findall(PLACEHOLDERS.sub("", text).lower()))
    words.update(str(n) for n in range(MAX_NUMBER_WORD + 1))
    cell_ends = [f"*{n}{end}" for end in (",", tl.NEWLINE) for n in range(1, MASK_GRID + 1)]
    return tl.WordTokenizer(tl.SPECIAL_TOKENS + sorted(words - set(tl.SPECIAL_TOKENS)) + [tl.NEWLINE] + cell_ends)


@dataclass
class Task:
    row: int  # row of the image in the batch's feature tensor (the first image of a two-image task)
    prompt: str  # rendered pack prompt (template filled)
    answer: str
    kind: str  # caption | vqa | classification | change_caption | grounding | referring | segmentation | change_mask
    row2: int = -1  # row of the second (after) image of a two-image task

    @property
    def images(self) -> int:
        return 1 if self.row2 < 0 else 2


class Encoder:
    """Prompt -> input ids (chat template, image tokens expanded), cached: prompts repeat a lot."""

    def __init__(self, tok: tl.WordTokenizer, image_seq_length: int):
        self.tok, self.image_seq_length = tok, image_seq_length
        self._cache: Dict[Tuple[str, int], List[int]] = {}

    def prompt_ids(self, prompt: str, images: int = 1) -> List[int]:
        ids = self._cache.get((prompt, images))
        if ids is None:
            ids = tl.expand_image_tokens(self.tok.encode(tl.render_prompt(prompt, images)), self.tok.id(tl.IMAGE),
                                         self.image_seq_length)
            self._cache[(prompt, images)] = ids
        return ids

    def answer_ids(self, answer: str) -> List[int]:
        """The answer's tokens and EOS; mask text as the pixel expert writes it (``mask_text_ids``)."""
        ids = mask_text_ids(self.tok, answer) if "*" in answer else self.tok.encode(answer)
        return ids + [self.tok.id(tl.EOS)]


def mask_text_ids(tok: tl.WordTokenizer, text: str) -> List[int]:
    """Mask text -> tokens, cell by cell: the label's words, then one cell-end token `*<count>,` (more cells follow
    in the row) or `*<count>\\n` (the row ends)."""
    ids: List[int] = []
    for line in text.split("\n"):
        cells = line.split(", ")
        for k, cell in enumerate(cells):
            label, count = cell.rsplit("*", 1)
            ids += tok.encode(label)
            ids.append(tok.id(f"*{count}{',' if k + 1 < len(cells) else tl.NEWLINE}"))
    return ids


@dataclass
class Batch:
    rows: torch.Tensor  # [B] or [B,2] (two-image tasks) rows of the feature tensor
    input_ids: torch.Tensor  # [B,T] right-padded
    attention_mask: torch.Tensor  # [B,T]
    prefix_len: torch.Tensor  # [B] prompt lengths
    targets: torch.Tensor  # [B,T-1]: next token where it is an answer token, else -100


def make_batch(tasks: Sequence[Task], enc: Encoder) -> Batch:
    """Right-padded teacher-forcing batch; every task of a batch has the same number of images."""
    if len({t.images for t in tasks}) != 1:
        raise ValueError("a batch mixes one- and two-image tasks")
    seqs = [(enc.prompt_ids(t.prompt, t.images), enc.answer_ids(t.answer)) for t in tasks]
    length = max(len(p) + len(a) for p, a in seqs)
    ids = torch.zeros(len(tasks), length, dtype=torch.int64)
    mask = torch.zeros(len(tasks), length, dtype=torch.int64)
    targets = torch.full((len(tasks), length - 1), -100, dtype=torch.int64)
    for b, (p, a) in enumerate(seqs):
        full = p + a
        ids[b, :len(full)] = torch.tensor(full)
        mask[b, :len(full)] = 1
        targets[b, len(p) - 1:len(full) - 1] = torch.tensor(a)
    rows = torch.tensor([t.row for t in tasks]) if tasks[0].images == 1 else torch.tensor([[t.row, t.row2] for t in tasks])
    return Batch(rows=rows, input_ids=ids, attention_mask=mask, prefix_len=torch.tensor([len(p) for p, _ in seqs]),
                 targets=targets)


def batch_features(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Image features of a batch's rows: [B,N,D], or [B,2N,D] (before then after) for two-image rows."""
    return features[rows] if rows.dim() == 1 else torch.cat((features[rows[:, 0]], features[rows[:, 1]]), dim=1)


def scene_hint(scene: Scene, rng: random.Random) -> str:
    return "" if rng.random() < HINT_DROPOUT else SCENE_NAMES[SCENE_CLASSES[scene.scene_class]]


def expert_caption_task(expert: str, row: int, scene: Scene, rng: random.Random) -> Task:
    prompt = render_template(EXPERT_PROMPTS[expert]["caption"], scene=scene_hint(scene, rng))
    return Task(row, prompt, scene.captions[EXPERT_ASPECT[expert]], "caption")


def expert_vqa_task(expert: str, row: int, scene: Scene, rng: random.Random) -> Task:
    qa = rng.choice([qa for qa in scene.vqa if qa["type"] in EXPERT_QUESTION_TYPES[expert]])
    prompt = render_template(EXPERT_PROMPTS[expert]["vqa"], question=qa["question"], scene=scene_hint(scene, rng))
    return Task(row, prompt, qa["answer"], "vqa")


def owner_of(question_type: str) -> str:
    return next(e for e, types in EXPERT_QUESTION_TYPES.items() if question_type in types)


def any_vqa_task(row: int, scene: Scene, rng: random.Random, generic: bool) -> Task:
    """A random question of the scene, with the generic prompt or the prompt of the expert that owns its type."""
    qa = rng.choice(scene.vqa)
    template = GENERIC_PROMPTS["vqa"] if generic else EXPERT_PROMPTS[owner_of(qa["type"])]["vqa"]
    return Task(row, render_template(template, question=qa["question"], scene=scene_hint(scene, rng)), qa["answer"], "vqa")


def generic_caption_task(row: int, scene: Scene, rng: random.Random) -> Task:
    """A full reference caption (theme -> objects -> relations) with the generic caption prompt."""
    prompt = render_template(GENERIC_PROMPTS["caption"], scene=scene_hint(scene, rng))
    return Task(row, prompt, rng.choice(scene.references), "caption")


# ----------------------------------------------------------------------------------------------
# RSUniVLM's tasks
# ----------------------------------------------------------------------------------------------


def classification_task(row: int, scene: Scene) -> Task:
    return Task(row, TASK_PROMPTS["theme"]["classification"], SCENE_CLASSES[scene.scene_class], "classification")


def change_caption_task(row: int, row2: int, pair: ChangePair) -> Task:
    return Task(row, TASK_PROMPTS["theme"]["change_caption"], pair.caption, "change_caption", row2)


def percent_box(box: Sequence[float]) -> Tuple[int, int, int, int]:
    """A pixel box [x1, y1, x2, y2) as integer percent of the image width and height."""
    return tuple(int(round(100.0 * v / IMAGE_SIZE)) for v in box)  # type: ignore[return-value]


def box_text(box: Sequence[int]) -> str:
    """libs/region-outputs encodeBoxesText for one box (whole percents)."""
    return "[" + ", ".join(str(v) for v in box) + "]"


def object_phrase(scene: Scene, k: int, rng: random.Random) -> Tuple[str, List[int]]:
    """A grounding query for object k (its class, as the class name or its noun, optionally with its colour) and
    the indices of every object of the scene the query fits."""
    o = scene.objects[k]
    cls = OBJECT_CLASSES[o.cls]
    noun = rng.choice([cls, OBJECT_NOUNS[cls][0]])
    if rng.random() < 0.5:
        return f"{o.colour} {noun}", [j for j, p in enumerate(scene.objects) if p.cls == o.cls and p.colour == o.colour]
    return noun, [j for j, p in enumerate(scene.objects) if p.cls == o.cls]


def box_area(box: Sequence[float]) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


def grounding_answer(scene: Scene, matches: Sequence[int]) -> str:
    """The matching objects' boxes, largest first (ties: top, then left), at most MAX_BOXES."""
    order = sorted(matches, key=lambda j: (-box_area(scene.objects[j].box), scene.objects[j].box[1], scene.objects[j].box[0]))
    return ", ".join(box_text(percent_box(scene.objects[j].box)) for j in order[:MAX_BOXES])


def grounding_task(row: int, scene: Scene, rng: random.Random) -> Optional[Task]:
    """A query for a random object of the scene (objects drawn uniformly over their classes first, so that
    the many small objects do not crowd out the few large ones); None for a scene without objects."""
    classes = sorted({o.cls for o in scene.objects})
    if not classes:
        return None
    cls = rng.choice(classes)
    k = rng.choice([j for j, o in enumerate(scene.objects) if o.cls == cls])
    query, matches = object_phrase(scene, k, rng)
    return Task(row, render_template(TASK_PROMPTS["region"]["grounding"], query=query), grounding_answer(scene, matches), "grounding")


def referring_answer(scene: Scene, k: int) -> str:
    o = scene.objects[k]
    return f"{o.colour} {OBJECT_NOUNS[OBJECT_CLASSES[o.cls]][0]}"


def referring_task(row: int, scene: Scene, rng: random.Random) -> Optional[Task]:
    """The box of a random object of the scene (drawn as for grounding) and its description; None without objects."""
    classes = sorted({o.cls for o in scene.objects})
    if not classes:
        return None
    cls = rng.choice(classes)
    k = rng.choice([j for j, o in enumerate(scene.objects) if o.cls == cls])
    box = box_text(percent_box(scene.objects[k].box))
    return Task(row, render_template(TASK_PROMPTS["region"]["referring"], box=box), referring_answer(scene, k), "referring")


def grid_labels(label_map: np.ndarray, num_labels: int, g: int) -> np.ndarray:
    """[H,W] labels (0 = background) -> [g,g]: per cell the non-background label covering most of the cell when
    its share is at least MASK_CELL_SHARE, else 0. Pixel x belongs to cell floor(x * g / W), as
    libs/region-outputs resizeNearest maps a grid back onto the image."""
    cell = np.floor(np.arange(label_map.shape[0]) * g / label_map.shape[0]).astype(np.int64)
    counts = np.zeros((g * g, num_labels), dtype=np.int64)
    flat = (cell[:, None] * g + cell[None, :]).reshape(-1) * num_labels + label_map.astype(np.int64).reshape(-1)
    counts = np.bincount(flat, minlength=g * g * num_labels).reshape(g, g, num_labels)
    fg = counts[..., 1:]
    best = fg.argmax(-1) + 1
    share = fg.max(-1) / counts.sum(-1)
    return np.where(share >= MASK_CELL_SHARE, best, 0)


def mask_text(grid: np.ndarray, names: Sequence[str]) -> str:
    """libs/region-outputs encodeMaskText: rows of run-length cells ``label*count`` joined by ", ", one line per row."""
    lines = []
    for row in grid:
        cells, x = [], 0
        while x < len(row):
            y = x + 1
            while y < len(row) and row[y] == row[x]:
                y += 1
            cells.append(f"{names[row[x]]}*{y - x}")
            x = y
        lines.append(", ".join(cells))
    return "\n".join(lines)


def mask_word_ids() -> Dict[str, int]:
    """The pixel expert's label words and their ids (demo_model.MaskWriterDecoder): object classes 1.., `changed`."""
    words = {c: i + 1 for i, c in enumerate(OBJECT_CLASSES)}
    words[CHANGED] = len(OBJECT_CLASSES) + 1
    return words


def fixed_channels(tok: tl.WordTokenizer) -> torch.Tensor:
    """[V,2] fixed embedding channels of the pixel expert, over demo_model.BOOK_SCALE: the count of a cell-end
    token (`*<count>,` / `*<count>\\n`) and a token's label word id (0 for every other token)."""
    from demo_model import BOOK_SCALE
    words = mask_word_ids()
    return torch.tensor([[float(t[1:-1]) if tl.CELL_END.fullmatch(t) else 0.0, float(words.get(t, 0))]
                         for t in tok.tokens]) / BOOK_SCALE


def grid_to_tokens(grid: np.ndarray, tokens_per_side: int) -> np.ndarray:
    """[G,G] cell labels -> [tokens^2, k*k]: the cells under each image token (raster order of tokens and cells)."""
    g = grid.shape[0]
    k = g // tokens_per_side
    return grid.reshape(tokens_per_side, k, tokens_per_side, k).transpose(0, 2, 1, 3).reshape(tokens_per_side ** 2, k * k)


def tokens_to_grid(cells: np.ndarray, tokens_per_side: int) -> np.ndarray:
    """grid_to_tokens' inverse."""
    k = int(round(math.sqrt(cells.shape[-1])))
    return cells.reshape(tokens_per_side, tokens_per_side, k, k).transpose(0, 2, 1, 3).reshape(tokens_per_side * k, tokens_per_side * k)


def query_grid(labels: np.ndarray, query: Sequence[int]) -> np.ndarray:
    """Cell labels over all classes (0 others, c + 1 for OBJECT_CLASSES[c]) -> the grid of a query (label i + 1
    for query[i], 0 elsewhere)."""
    out = np.zeros_like(labels)
    for i, c in enumerate(query):
        out[labels == c + 1] = i + 1
    return out


def segmentation_query(scene: Scene, rng: random.Random, classes_present: Sequence[int]) -> List[int]:
    """1 to 3 queried classes (OBJECT_CLASSES indices): mostly classes in the image, sometimes one that is not."""
    n = rng.choice([1, 1, 2, 2, 3])
    present = list(classes_present)
    rng.shuffle(present)
    query = present[:n]
    if not query or rng.random() < 0.1:
        absent = [c for c in range(len(OBJECT_CLASSES)) if c not in present]
        if absent:
            query = query[:max(0, n - 1)] + [rng.choice(absent)]
    return query


def segmentation_target(full: np.ndarray, query: Sequence[int]) -> Tuple[np.ndarray, List[str]]:
    """The grid of a query: label i + 1 for query[i] (the topmost object's class counts, so an unqueried object
    drawn over a queried one is background), and the names of labels 0.. (others, then the queried classes)."""
    label_map = np.zeros_like(full)
    for i, c in enumerate(query):
        label_map[full == c + 1] = i + 1
    return grid_labels(label_map, len(query) + 1, MASK_GRID), [MASK_BACKGROUND] + [OBJECT_CLASSES[c] for c in query]


def segmentation_task(row: int, full: np.ndarray, scene: Scene, rng: random.Random,
                      cell_labels: Optional[np.ndarray] = None) -> Task:
    """A segmentation query of 1-3 classes (mostly classes in the image, by its class map ``full``) and its mask
    text: from the class map, or, with ``cell_labels`` ([G,G], 0 others, c + 1 for OBJECT_CLASSES[c]), from those
    cell labels (the pixel expert's own mask head: its language model learns to write what the head sees)."""
    present = sorted(int(c) - 1 for c in np.unique(full) if c > 0)
    query = segmentation_query(scene, rng, present)
    if cell_labels is None:
        grid, names = segmentation_target(full, query)
    else:
        grid, names = query_grid(cell_labels, query), [MASK_BACKGROUND] + [OBJECT_CLASSES[c] for c in query]
    prompt = render_template(TASK_PROMPTS["pixel"]["segmentation"], query=", ".join(OBJECT_CLASSES[c] for c in query))
    return Task(row, prompt, mask_text(grid, names), "segmentation")


def change_mask_grid(pair: ChangePair) -> np.ndarray:
    return grid_labels(change_map(pair), 2, MASK_GRID)


def change_mask_task(row: int, row2: int, grid: np.ndarray) -> Task:
    return Task(row, TASK_PROMPTS["pixel"]["change_mask"], mask_text(grid, [MASK_BACKGROUND, CHANGED]), "change_mask", row2)


def mask_copy_tokens(tok: tl.WordTokenizer, grid: int) -> Tuple[List[int], List[List[int]], int]:
    """The pixel expert's copy targets (demo_model.MaskWriterDecoder.set_copy_tokens): label word ids (others, the
    object classes, changed), cell-end ids by (ends the row, run) and EOS."""
    labels = [tok.id(MASK_BACKGROUND)] + [tok.id(c) for c in OBJECT_CLASSES] + [tok.id(CHANGED)]
    ends = [[-1] + [tok.id(f"*{n}{end}") for n in range(1, grid + 1)] for end in (",", tl.NEWLINE)]
    return labels, ends, tok.id(tl.EOS)
