"""Training data of the demo pack: synthetic scenes from ``rsmoe synth``, loaded into tensors.

The TypeScript generator (libs/synth) is the single source of the scenes: this module runs
``node bin/rsmoe.cjs synth`` into a cache directory (once per seed and count), then reads
``scene_graphs.jsonl`` (aspect captions, five reference captions, VQA pairs, objects, split) and the
PNG images.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

import numpy as np
import torch
from PIL import Image

# Scene classes and the phrases the captions use for them, as in libs/synth/src/scene-describer.ts
# (SCENE_NAMES); `load_dataset` checks every theme caption against them.
SCENE_NAMES: Dict[str, str] = {
    "dense_residential": "dense residential area",
    "sparse_residential": "sparse residential area",
    "farmland": "farmland",
    "forest": "forest",
    "river": "river",
    "lake": "lake",
    "beach": "beach",
    "parking_lot": "parking lot",
    "airport": "airport",
    "industrial": "industrial area",
    "meadow": "meadow",
    "bare_land": "bare land",
}
SCENE_CLASSES: List[str] = list(SCENE_NAMES)
# Object classes of libs/synth/src/scene.types.ts (OBJECT_CLASSES).
OBJECT_CLASSES: List[str] = [
    "sea", "lake", "river", "runway", "road", "field", "pond", "building", "storage_tank", "airplane",
    "boat", "tree", "car",
]
QUESTION_TYPES: List[str] = ["presence", "count", "comparison", "rural_urban", "area"]
ASPECTS: List[str] = ["theme", "objects", "relations"]


@dataclass
class Scene:
    index: int
    filename: str
    split: str
    seed: int
    scene_class: int
    captions: Dict[str, str]  # theme / objects / relations
    references: List[str]
    vqa: List[dict]  # {question, answer, type}
    counts: List[int]  # objects per OBJECT_CLASSES entry


@dataclass
class Dataset:
    root: str
    seed: int
    scenes: List[Scene]
    images: torch.Tensor  # uint8 [N,3,H,W]

    def indices(self, split: str) -> List[int]:
        return [s.index for s in self.scenes if s.split == split]


def image_seed(seed: int, index: int) -> int:
    """``imageSeed`` of libs/synth/src/dataset-writer.ts (murmur3 finaliser of the dataset seed and index)."""
    m = 0xFFFFFFFF
    h = ((seed * 0x9E3779B1) & m) ^ (((index + 1) * 0x85EBCA6B) & m)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h


def synthesize(repo: str, out_dir: str, count: int, seed: int) -> None:
    """Runs the TypeScript generator unless ``out_dir`` already holds a complete dataset."""
    done = os.path.join(out_dir, "scene_graphs.jsonl")
    if os.path.exists(done) and os.path.exists(os.path.join(out_dir, ".complete")):
        return
    print(f"[data] generating {count} scenes with seed {seed} into {out_dir}", flush=True)
    subprocess.run(
        ["node", os.path.join(repo, "bin", "rsmoe.cjs"), "synth", "--out", out_dir, "--count", str(count),
         "--seed", str(seed), "--force"],
        check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out_dir, ".complete"), "w", encoding="utf-8") as f:
        f.write(f"{count} {seed}\n")


def load_dataset(root: str, seed: int) -> Dataset:
    scenes: List[Scene] = []
    with open(os.path.join(root, "scene_graphs.jsonl"), encoding="utf-8") as f:
        for line in f:
            g = json.loads(line)
            counts = [0] * len(OBJECT_CLASSES)
            for o in g["objects"]:
                counts[OBJECT_CLASSES.index(o["class"])] += 1
            scene_class = SCENE_CLASSES.index(g["scene_class"])
            if SCENE_NAMES[g["scene_class"]] not in g["captions"]["theme"]:
                raise ValueError(f"theme caption of {g['filename']} does not name its scene class")
            if g["seed"] != image_seed(seed, g["id"]):
                raise ValueError(f"image {g['id']}: seed {g['seed']} is not imageSeed({seed}, {g['id']})")
            scenes.append(Scene(index=len(scenes), filename=g["filename"], split=g["split"], seed=g["seed"],
                                scene_class=scene_class, captions=g["captions"], references=g["references"],
                                vqa=g["vqa"], counts=counts))
    images = np.stack([read_png(os.path.join(root, "images", s.filename)) for s in scenes])
    return Dataset(root=root, seed=seed, scenes=scenes, images=torch.from_numpy(images))


def read_png(path: str) -> np.ndarray:
    """uint8 [3,H,W] RGB."""
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")).transpose(2, 0, 1))


def to_pixel_values(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32, x/255 then (x - 0.5) / 0.5: the preprocessor_config.json of the pack."""
    return (images.to(torch.float32) / 255.0 - 0.5) / 0.5


def texts_of(scenes: Iterable[Scene]) -> Iterable[str]:
    for s in scenes:
        yield from s.captions.values()
        yield from s.references
        for qa in s.vqa:
            yield qa["question"]
            yield qa["answer"]


def check_disjoint(train_seed: int, train_count: int, held_out: Sequence[tuple]) -> Dict[str, int]:
    """Asserts that no training image seed equals an image seed of a held-out dataset (seed, count)."""
    train = {image_seed(train_seed, i) for i in range(train_count)}
    report = {}
    for seed, count in held_out:
        overlap = train & {image_seed(seed, i) for i in range(count)}
        if overlap:
            raise ValueError(f"training images share {len(overlap)} image seeds with held-out dataset seed {seed}")
        report[f"seed {seed} x {count}"] = 0
    return report
