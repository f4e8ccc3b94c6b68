"""Prompts, vocabulary and batches of the demo pack.

The prompt templates here are the ones pack.json gives the InstructionRouter, so the experts are trained
on exactly what the mesh sends them: the template with ``{question}`` / ``{scene}`` filled as
libs/routing's ``renderPrompt`` does it (placeholder replaced, whitespace collapsed, trimmed), wrapped by
the chat template of tokenizer_config.json (``tiny_llava.render_prompt``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

import tiny_llava as tl
from demo_data import SCENE_CLASSES, SCENE_NAMES, Dataset, Scene, texts_of

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
EXPERTS = list(EXPERT_PROMPTS)
# Share of training prompts whose {scene} is left empty, so that a pack without a router model works.
HINT_DROPOUT = 0.25
# Counts in answers and captions go up to ~100; every number up to this is a vocabulary word.
MAX_NUMBER_WORD = 200


def render_template(template: str, question: str = "", scene: str = "") -> str:
    """libs/routing renderPrompt: fill placeholders, collapse whitespace, trim."""
    filled = template.replace("{question}", question).replace("{scene}", scene)
    return re.sub(r"\s+", " ", filled).strip()


def build_tokenizer(dataset: Dataset) -> tl.WordTokenizer:
    """Specials, chat words, then every word of the training split, the prompts and the numbers, sorted."""
    words = set(tl.BASE_WORDS)
    texts = list(texts_of(s for s in dataset.scenes if s.split == "train"))
    texts += [t for p in EXPERT_PROMPTS.values() for t in p.values()] + list(GENERIC_PROMPTS.values())
    texts += list(SCENE_NAMES.values())
    for text in texts:
        words.update(tl.WHITESPACE_SPLIT.findall(text.replace("{question}", "").replace("{scene}", "").lower()))
    words.update(str(n) for n in range(MAX_NUMBER_WORD + 1))
    return tl.WordTokenizer(tl.SPECIAL_TOKENS + sorted(words - set(tl.SPECIAL_TOKENS)))


@dataclass
class Task:
    row: int  # row of the image in the batch's feature tensor
    prompt: str  # rendered pack prompt (template filled)
    answer: str
    kind: str  # caption | vqa


class Encoder:
    """Prompt -> input ids (chat template, image tokens expanded), cached: prompts repeat a lot."""

    def __init__(self, tok: tl.WordTokenizer, image_seq_length: int):
        self.tok, self.image_seq_length = tok, image_seq_length
        self._cache: Dict[str, List[int]] = {}

    def prompt_ids(self, prompt: str) -> List[int]:
        ids = self._cache.get(prompt)
        if ids is None:
            ids = tl.expand_image_tokens(self.tok.encode(tl.render_prompt(prompt)), self.tok.id(tl.IMAGE),
                                         self.image_seq_length)
            self._cache[prompt] = ids
        return ids

    def answer_ids(self, answer: str) -> List[int]:
        return self.tok.encode(answer) + [self.tok.id(tl.EOS)]


@dataclass
class Batch:
    rows: torch.Tensor  # [B] rows of the feature tensor
    input_ids: torch.Tensor  # [B,T] right-padded
    attention_mask: torch.Tensor  # [B,T]
    prefix_len: torch.Tensor  # [B] prompt lengths
    targets: torch.Tensor  # [B,T-1]: next token where it is an answer token, else -100


def make_batch(tasks: Sequence[Task], enc: Encoder) -> Batch:
    seqs = [(enc.prompt_ids(t.prompt), enc.answer_ids(t.answer)) for t in tasks]
    length = max(len(p) + len(a) for p, a in seqs)
    ids = torch.zeros(len(tasks), length, dtype=torch.int64)
    mask = torch.zeros(len(tasks), length, dtype=torch.int64)
    targets = torch.full((len(tasks), length - 1), -100, dtype=torch.int64)
    for b, (p, a) in enumerate(seqs):
        full = p + a
        ids[b, :len(full)] = torch.tensor(full)
        mask[b, :len(full)] = 1
        targets[b, len(p) - 1:len(full) - 1] = torch.tensor(a)
    return Batch(rows=torch.tensor([t.row for t in tasks]), input_ids=ids, attention_mask=mask,
                 prefix_len=torch.tensor([len(p) for p, _ in seqs]), targets=targets)


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
