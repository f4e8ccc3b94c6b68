"""Training data of the demo pack: synthetic scenes from ``rsmoe synth``, loaded into tensors.

The TypeScript generator (libs/synth) is the single source of the scenes: this module runs
``node bin/rsmoe.cjs synth`` into a cache directory (once per seed and count), then reads
``scene_graphs.jsonl`` (aspect captions, five reference captions, VQA pairs, objects with their polygons,
split) and the PNG images. Change pairs come from libs/synth's ``generateChangePair`` through
``synth_change_pairs.cjs`` (one pair per chosen image index, with the changed objects' polygons).
Polygons are rasterised exactly as libs/synth paints them (``scanPolygon``: pixel centres, even-odd).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

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
# Singular and plural nouns of the object classes, as libs/synth/src/scene-describer.ts (NOUNS) writes them.
OBJECT_NOUNS: Dict[str, Tuple[str, str]] = {
    c: (c.replace("_", " "), c.replace("_", " ") + "s") for c in OBJECT_CLASSES
}
IMAGE_SIZE = 128


@dataclass
class SceneObject:
    cls: int  # index in OBJECT_CLASSES
    colour: str
    box: Tuple[int, int, int, int]  # pixels, x2/y2 exclusive
    polygon: List[Tuple[float, float]]


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
    objects: List[SceneObject]  # in painting order (later ones drawn over earlier ones)


@dataclass
class ChangePair:
    index: int  # the dataset image whose seed and class made the pair (its split is the pair's)
    kind: str  # added | removed | none
    caption: str
    changed: List[List[Tuple[float, float]]]  # polygons of the added / removed objects


@dataclass
class Dataset:
    root: str
    seed: int
    scenes: List[Scene]
    images: torch.Tensor  # uint8 [N,3,H,W]
    pairs: List[ChangePair]
    pair_images: torch.Tensor  # uint8 [P,2,3,H,W]: before, after

    def indices(self, split: str) -> List[int]:
        return [s.index for s in self.scenes if s.split == split]

    def pair_indices(self, split: str) -> List[int]:
        """Positions in ``pairs`` of the change pairs of a split."""
        return [k for k, p in enumerate(self.pairs) if self.scenes[p.index].split == split]


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


def pair_image_indices(splits: Sequence[str], per_split: Dict[str, int]) -> List[int]:
    """Image indices that get a change pair: the first ``per_split[split]`` images of each split (``splits[i]``:
    the split of image i), in index order."""
    taken = {name: 0 for name in per_split}
    out = []
    for i in range(len(splits)):
        name = splits[i]
        if taken.get(name, 0) < per_split.get(name, 0):
            taken[name] += 1
            out.append(i)
    return out


def synthesize_change_pairs(repo: str, out_dir: str, seed: int, indices: Sequence[int]) -> None:
    """Runs tools/train/synth_change_pairs.cjs unless ``out_dir`` already holds these pairs."""
    done = os.path.join(out_dir, ".complete")
    stamp = f"{seed} {len(indices)} {sum(indices)}\n"
    if os.path.exists(done) and open(done, encoding="utf-8").read() == stamp:
        return
    print(f"[data] generating {len(indices)} change pairs with seed {seed} into {out_dir}", flush=True)
    os.makedirs(out_dir, exist_ok=True)
    index_file = os.path.join(out_dir, "indices.txt")
    with open(index_file, "w", encoding="utf-8") as f:
        f.write("\n".join(str(i) for i in indices) + "\n")
    subprocess.run(["node", os.path.join(repo, "tools", "train", "synth_change_pairs.cjs"), "--out", out_dir,
                    "--seed", str(seed), "--indices", index_file], check=True, stdout=subprocess.DEVNULL)
    with open(done, "w", encoding="utf-8") as f:
        f.write(stamp)


def load_change_pairs(pairs_dir: str) -> Tuple[List[ChangePair], torch.Tensor]:
    pairs: List[ChangePair] = []
    images = []
    with open(os.path.join(pairs_dir, "change_pairs.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            pairs.append(ChangePair(index=r["index"], kind=r["kind"], caption=r["caption"],
                                    changed=[[tuple(p) for p in o["polygon"]] for o in r["changed"]]))
            images.append(np.stack([read_png(os.path.join(pairs_dir, f"{r['index']}_{side}.png")) for side in ("before", "after")]))
    return pairs, torch.from_numpy(np.stack(images))


def attach_change_pairs(ds: "Dataset", pairs_dir: str) -> None:
    ds.pairs, ds.pair_images = load_change_pairs(pairs_dir)


def load_dataset(root: str, seed: int, pairs_dir: str = "") -> Dataset:
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
            objects = [SceneObject(cls=OBJECT_CLASSES.index(o["class"]), colour=o["colour"], box=tuple(o["box"]),
                                   polygon=[tuple(p) for p in o["polygon"]]) for o in g["objects"]]
            scenes.append(Scene(index=len(scenes), filename=g["filename"], split=g["split"], seed=g["seed"],
                                scene_class=scene_class, captions=g["captions"], references=g["references"],
                                vqa=g["vqa"], counts=counts, objects=objects))
    images = np.stack([read_png(os.path.join(root, "images", s.filename)) for s in scenes])
    pairs, pair_images = load_change_pairs(pairs_dir) if pairs_dir else ([], torch.zeros(0, 2, 3, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.uint8))
    return Dataset(root=root, seed=seed, scenes=scenes, images=torch.from_numpy(images), pairs=pairs, pair_images=pair_images)


def scan_polygon(polygon: Sequence[Tuple[float, float]], width: int = IMAGE_SIZE, height: int = IMAGE_SIZE) -> List[Tuple[int, int, int]]:
    """libs/synth/src/geometry.ts ``scanPolygon``: spans (y, x0, x1), x1 inclusive, of the pixels whose centre is
    inside the polygon (even-odd rule), clipped to the image."""
    p = np.asarray(polygon, dtype=np.float64)
    y0, y1 = max(0, math.floor(p[:, 1].min())), min(height, math.ceil(p[:, 1].max()))
    if y1 <= y0:
        return []
    sy = np.arange(y0, y1) + 0.5
    xi, yi = p[:, 0], p[:, 1]
    xj, yj = np.roll(xi, 1), np.roll(yi, 1)
    crosses = (yi[None, :] > sy[:, None]) != (yj[None, :] > sy[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = xi[None, :] + (sy[:, None] - yi[None, :]) * (xj - xi)[None, :] / (yj - yi)[None, :]
    spans = []
    for r in range(len(sy)):
        v = np.sort(xs[r][crosses[r]])
        for k in range(0, len(v) - 1, 2):
            a, b = max(0, math.ceil(v[k] - 0.5)), min(width - 1, math.ceil(v[k + 1] - 0.5) - 1)
            if b >= a:
                spans.append((y0 + r, a, b))
    return spans


def fill_polygon(target: np.ndarray, polygon: Sequence[Tuple[float, float]], value: int) -> None:
    for y, a, b in scan_polygon(polygon, target.shape[1], target.shape[0]):
        target[y, a:b + 1] = value


def class_map(scene: Scene) -> np.ndarray:
    """uint8 [H,W]: 1 + the OBJECT_CLASSES index of the topmost object at each pixel, 0 where there is none."""
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for o in scene.objects:
        fill_polygon(out, o.polygon, o.cls + 1)
    return out


def change_map(pair: ChangePair) -> np.ndarray:
    """uint8 [H,W]: 1 where an added or removed object lies, else 0."""
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for polygon in pair.changed:
        fill_polygon(out, polygon, 1)
    return out


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
