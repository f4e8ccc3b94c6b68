"""The region and pixel experts' own vision encoder, their dense heads and the region expert's box writer.

The caption experts share the 4x4-token encoder of stage 1, which knows *what* is in an image. Grounding a 7-pixel
car and writing a mask on a 24x24 grid need to know *where*, at a few pixels: trained on the stage-1 features, the
region expert's boxes and the pixel expert's masks missed their floors (tools/train/README.md). So the two experts
of finer granularity get their own encoder (pack.json: their own ``encoderId``, so the mesh computes these features
once per image for both), trained with their heads on dense targets before their language models are tuned:

* ``DenseVisionEncoder``: 128x128 RGB -> 8x8 tokens. Each token carries the 4x4 positions of a 32x32 feature map
  (4 px each) under it, the 2x2 of a 16x16 map, its 8x8-stage context and the image's mean, projected to the
  decoder's width: image_features [B,64,D].
* the pixel expert's ``MaskHeads`` (demo_model): per token, the label of each of the 3x3 mask cells under it, and
  per token pair (before, after) whether each cell changed;
* ``BoxHeads``: per token, at each of its 4x4 positions, whether an object's box centre lies there (and its class),
  the object's colour and its box as distances from the position.
* ``BoxWriterDecoder``: the region expert's decoder. In the prefill call layer 0 reads the grounding query's class
  and colour words from the prompt (fixed embedding channels), scores every position of the box heads for them and
  keeps the best box, in percent, in its value cache; at every later step it embeds the next coordinate to write
  and adds a learned, gated copy bias to that number's logit (a pointer, as in pointer-generator networks), so the
  language model writes ``[x1, y1, x2, y2]`` the heads found. The graph keeps the standard inputs, outputs and
  cache.
"""

from __future__ import annotations

import random
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import tiny_llava as tl
from demo_data import IMAGE_SIZE, OBJECT_CLASSES, OBJECT_NOUNS, Dataset, class_map, to_pixel_values
from demo_model import (BOOK_SCALE, FIRST_IMAGE_POSITION, MASK_LABELS, ConnectorDecoder, MaskHeads, answer_positions,
                        conv_block, connector_allowed)

DENSE_SIDE = 8  # the dense encoder's tokens form a DENSE_SIDE x DENSE_SIDE grid
DET_SUB = 4  # box-centre positions per token side
DET_SIDE = DENSE_SIDE * DET_SUB  # 32 positions per image side, 4 px each
DET_CELL = IMAGE_SIZE // DET_SIDE
NUM_CLASSES = 1 + len(OBJECT_CLASSES)  # 0 = no box centre here
NO_NUMBER = 101  # the box writer's "nothing to copy"


def space_to_depth(x: torch.Tensor, side: int) -> torch.Tensor:
    """[B,C,H,W] -> [B,side*side,C*k*k]: each of side x side tokens gets the k x k positions under it."""
    b, c, h, _ = x.shape
    k = h // side
    return x.reshape(b, c, side, k, side, k).permute(0, 2, 4, 1, 3, 5).reshape(b, side * side, c * k * k)


class DenseVisionEncoder(nn.Module):
    def __init__(self, hidden_size: int, channels: Sequence[int] = (32, 64, 128)):
        super().__init__()
        c1, c2, c3 = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c1, 4, stride=4, bias=False), nn.BatchNorm2d(c1), nn.GELU(),
                                  conv_block(c1, c1, 1), conv_block(c1, c1, 1))  # 32x32
        self.mid = nn.Sequential(conv_block(c1, c2, 2), conv_block(c2, c2, 1))  # 16x16
        self.context = nn.Sequential(conv_block(c2, c3, 2), conv_block(c3, c3, 1), conv_block(c3, c3, 1))  # 8x8
        self.fine = nn.Linear(c1 * (DET_SIDE // DENSE_SIDE) ** 2, hidden_size)
        self.middle = nn.Linear(c2 * 4, hidden_size)
        self.local = nn.Linear(c3, hidden_size)
        self.whole = nn.Linear(c3, hidden_size)
        self.position_embedding = nn.Parameter(torch.randn(1, DENSE_SIDE * DENSE_SIDE, hidden_size) * 0.02)
        self.post_layernorm = nn.LayerNorm(hidden_size)
        self.projector_in = nn.Linear(hidden_size, hidden_size)
        self.projector_out = nn.Linear(hidden_size, hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        f1 = self.stem(pixel_values)
        f2 = self.mid(f1)
        f3 = self.context(f2)
        x = (self.fine(space_to_depth(f1, DENSE_SIDE)) + self.middle(space_to_depth(f2, DENSE_SIDE))
             + self.local(f3.flatten(2).transpose(1, 2)) + self.whole(f3.mean(dim=(2, 3))).unsqueeze(1)
             + self.position_embedding)
        x = self.post_layernorm(x)
        return self.projector_out(F.gelu(self.projector_in(x)))


class BoxHeads(nn.Module):
    """Per token, at each of its DET_SUB x DET_SUB positions: box-centre class logits (0 = none), colour logits, and
    the box as (left, top, right, bottom) distances from the position's centre over the image size."""

    def __init__(self, hidden_size: int, num_colours: int, width: int = 256):
        super().__init__()
        self.num_colours = num_colours
        self.per_position = NUM_CLASSES + num_colours + 4
        self.net = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width), nn.GELU(),
                                 nn.Linear(width, DET_SUB * DET_SUB * self.per_position))

    def forward(self, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(tokens)
        out = out.reshape(out.shape[:-1] + (DET_SUB * DET_SUB, self.per_position))
        return out[..., :NUM_CLASSES], out[..., NUM_CLASSES:NUM_CLASSES + self.num_colours], out[..., -4:]

    def best_box(self, tokens: torch.Tensor, valid: torch.Tensor, token_index: torch.Tensor, cls: torch.Tensor,
                 colour: torch.Tensor) -> torch.Tensor:
        """The box of the best-scoring centre for a query: tokens [B,P,D] (``valid`` [B,P] marks the image tokens,
        ``token_index`` [B,P] their index 0..63), ``cls`` [B] the queried class (1.. OBJECT_CLASSES), ``colour`` [B]
        (0 = any, else 1 + index of the colour) -> [B,4] integer percent (float tensor) x1, y1, x2, y2."""
        cls_logits, colour_logits, box = self(tokens)
        b, p = tokens.shape[:2]
        per = DET_SUB * DET_SUB
        score = torch.gather(F.log_softmax(cls_logits, -1), 3,
                             cls.to(torch.int64).view(b, 1, 1, 1).expand(b, p, per, 1)).squeeze(-1)
        colour_index = torch.clamp(colour.to(torch.int64) - 1, min=0)
        colour_score = torch.gather(F.log_softmax(colour_logits, -1), 3,
                                    colour_index.view(b, 1, 1, 1).expand(b, p, per, 1)).squeeze(-1)
        score = score + colour_score * (colour > 0).to(score.dtype).view(b, 1, 1)
        score = torch.where(valid.unsqueeze(-1) > 0, score, torch.full_like(score, -1e9))
        best = score.reshape(b, p * per).argmax(-1)  # [B]
        position = torch.div(best, per, rounding_mode="floor")
        sub = torch.remainder(best, per)
        token = torch.gather(token_index.to(torch.int64), 1, position.unsqueeze(1)).squeeze(1)
        x = (torch.remainder(token, DENSE_SIDE) * DET_SUB + torch.remainder(sub, DET_SUB)) * DET_CELL + DET_CELL / 2
        y = (torch.div(token, DENSE_SIDE, rounding_mode="floor") * DET_SUB + torch.div(sub, DET_SUB, rounding_mode="floor")) * DET_CELL + DET_CELL / 2
        d = torch.gather(box.reshape(b, p * per, 4), 1, best.view(b, 1, 1).expand(b, 1, 4)).squeeze(1) * IMAGE_SIZE
        corners = torch.stack((x - d[:, 0], y - d[:, 1], x + d[:, 2], y + d[:, 3]), dim=-1)
        return torch.clamp(torch.round(corners * (100.0 / IMAGE_SIZE)), 0.0, 100.0)


class BoxWriterDecoder(ConnectorDecoder):
    """The region expert's decoder (see the module docstring). Fixed embedding channels: 0 = 1 for the number words
    0-100, 1 = class id of a class word (1..), 2 = colour id of a colour word (1..), all over BOOK_SCALE. Layer 0's KV
    head 0 values: channel 0 the answer's number words, channels 1-4 the chosen box and 5 the queried class (kept at
    the first image token)."""

    def __init__(self, cfg: tl.TextConfig, connector_layers: int, num_colours: int, number_ids: torch.Tensor):
        super().__init__(cfg, connector_layers)
        d = cfg.hidden_size
        self.heads = BoxHeads(d, num_colours)
        self.number = nn.Embedding(NO_NUMBER + 1, d)
        self.slot = nn.Embedding(6, d)  # coordinates written 0..4; 5 = not a grounding prompt
        for e in (self.number, self.slot):
            nn.init.normal_(e.weight, std=0.02)
        self.copy_scale = nn.Parameter(torch.tensor(8.0))
        self.copy_gate = nn.Linear(d, 1)  # when to copy (a number's position) rather than write punctuation
        self.register_buffer("number_ids", torch.cat((number_ids.to(torch.int64), torch.tensor([-1]))))

    def book(self, inputs_embeds, attention_mask, position_ids, prefix_len):
        answer, real = answer_positions(attention_mask, inputs_embeds.shape[1], prefix_len, inputs_embeds.dtype)
        dtype = inputs_embeds.dtype
        prompt = (1 - answer) * real
        per_image = DENSE_SIDE * DENSE_SIDE
        marker = position_ids - (FIRST_IMAGE_POSITION - 1)
        image = ((marker >= 1) & (marker <= per_image)).to(dtype) * prompt
        text = prompt - image  # query words are read from the prompt's text only (image positions hold features)
        cls = (torch.round(inputs_embeds[:, :, 1] * BOOK_SCALE) * text).amax(dim=1)  # [B]
        colour = (torch.round(inputs_embeds[:, :, 2] * BOOK_SCALE) * text).amax(dim=1)
        # Every position, not the first image's by index: a batch pads rows before their image tokens.
        box = self.heads.best_box(inputs_embeds, image, marker - 1, cls, colour)  # [B,4]
        keep = ((marker == 1).to(dtype) * prompt).unsqueeze(-1)  # [B,T,1]
        return torch.cat((
            (inputs_embeds[:, :, 0] * answer * real).unsqueeze(-1),
            keep * box.unsqueeze(1) / BOOK_SCALE,
            keep * cls.view(-1, 1, 1) / BOOK_SCALE), dim=-1)

    def state(self, values: torch.Tensor, query_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
        s = values.shape[2]
        head = values[:, 0]  # [B,S,hd]
        written = torch.round(torch.cumsum(head[:, :, 0], dim=1)[:, s - query_len:] * BOOK_SCALE).to(torch.int64)  # [B,T]
        # clamped: only an inconsistent cache (an export trace's random one) could hold other values
        box = torch.clamp(torch.round(head[:, :, 1:5].sum(dim=1) * BOOK_SCALE).to(torch.int64), 0, 100)  # [B,4]
        grounding = torch.round(head[:, :, 5].sum(dim=1) * BOOK_SCALE) > 0  # [B]
        index = torch.clamp(written, 0, 4)
        numbers = torch.cat((box, torch.full_like(box[:, :1], NO_NUMBER)), dim=1)  # [B,5]
        nxt = torch.gather(numbers, 1, index)  # [B,T]
        nxt = torch.where(grounding.unsqueeze(1), nxt, torch.full_like(nxt, NO_NUMBER))
        slot = torch.where(grounding.unsqueeze(1), index, torch.full_like(index, 5))
        target = self.number_ids[nxt]  # [B,T]; -1 for nothing
        vocab = torch.arange(self.lm_head.out_features, device=values.device)
        copy = (vocab == target.unsqueeze(-1)).to(values.dtype)  # [B,T,V]
        return self.number(nxt) + self.slot(slot), copy

    def forward(self, inputs_embeds, attention_mask, position_ids, past, prefix_len=None):
        cos, sin = self.rotary(position_ids)
        query_len = inputs_embeds.shape[1]
        causal = tl.attention_allowed(attention_mask, query_len)
        connector = connector_allowed(attention_mask, query_len, prefix_len) & attention_mask.to(torch.bool)[:, None, None, :]
        head0 = self.book(inputs_embeds, attention_mask, position_ids, prefix_len)
        layer = self.layers[0]
        hd = layer.self_attn.head_dim
        zeros = torch.zeros_like(inputs_embeds[:, :, :hd])
        h, present = layer.self_attn(layer.input_layernorm(inputs_embeds), cos, sin,
                                     connector if self.connector_layers > 0 else causal, past[0], head0, zeros, zeros[:, :, 0])
        x = inputs_embeds + h
        x = x + layer.mlp(layer.post_attention_layernorm(x))
        embedded, copy = self.state(present[1], query_len)
        x = x + embedded
        presents = [present]
        for i in range(1, len(self.layers)):
            x, present = self.layers[i](x, cos, sin, connector if i < self.connector_layers else causal, past[i])
            presents.append(present)
        h = self.norm(x)
        return self.lm_head(h) + copy * (self.copy_scale * torch.sigmoid(self.copy_gate(h))), presents


# ----------------------------------------------------------------------------------------------
# Vocabulary channels of the region expert
# ----------------------------------------------------------------------------------------------


def colours_of(ds: Dataset) -> List[str]:
    return sorted({o.colour for s in ds.scenes if s.split == "train" for o in s.objects})


def query_words(colours: Sequence[str]) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Word -> class id (1..) for the class names and the last word of each noun; word -> colour id (1..) for the
    last word of each colour (``dark green`` -> ``green``)."""
    classes = {}
    for i, c in enumerate(OBJECT_CLASSES):
        classes[c] = i + 1
        classes[OBJECT_NOUNS[c][0].split()[-1]] = i + 1
    return classes, {c.split()[-1]: i + 1 for i, c in enumerate(colours)}


def query_ids(query: str, colours: Sequence[str]) -> Tuple[int, int]:
    """(class id, colour id) of a grounding query, as the box writer reads them from the prompt (the largest id
    among its words)."""
    classes, colour_ids = query_words(colours)
    words = query.lower().split()
    return max([classes.get(w, 0) for w in words] + [0]), max([colour_ids.get(w, 0) for w in words] + [0])


def region_fixed_channels(tok: tl.WordTokenizer, colours: Sequence[str]) -> torch.Tensor:
    classes, colour_ids = query_words(colours)
    numbers = {str(n) for n in range(101)}
    return torch.tensor([[1.0 if t in numbers else 0.0, float(classes.get(t, 0)), float(colour_ids.get(t, 0))]
                         for t in tok.tokens]) / BOOK_SCALE


def number_token_ids(tok: tl.WordTokenizer) -> torch.Tensor:
    return torch.tensor([tok.id(str(n)) for n in range(101)])


# ----------------------------------------------------------------------------------------------
# Dense targets and training
# ----------------------------------------------------------------------------------------------


def detection_targets(scene, colours: Sequence[str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[64,16] centre class (0 none), [64,16] colour index (-100 where no centre), [64,16,4] box distances (0 where no
    centre). An object's centre position is floor(centre / 4 px); of two objects on one position the larger wins."""
    cls = np.zeros((DET_SIDE, DET_SIDE), dtype=np.int64)
    col = np.full((DET_SIDE, DET_SIDE), -100, dtype=np.int64)
    box = np.zeros((DET_SIDE, DET_SIDE, 4), dtype=np.float32)
    area = np.zeros((DET_SIDE, DET_SIDE), dtype=np.float32)
    for o in scene.objects:
        x1, y1, x2, y2 = o.box
        px = min(DET_SIDE - 1, int(((x1 + x2) / 2) // DET_CELL))
        py = min(DET_SIDE - 1, int(((y1 + y2) / 2) // DET_CELL))
        a = (x2 - x1) * (y2 - y1)
        if a <= area[py, px]:
            continue
        area[py, px] = a
        cx, cy = px * DET_CELL + DET_CELL / 2, py * DET_CELL + DET_CELL / 2
        cls[py, px] = o.cls + 1
        col[py, px] = colours.index(o.colour)
        box[py, px] = np.array([cx - x1, cy - y1, x2 - cx, y2 - cy], dtype=np.float32) / IMAGE_SIZE

    def tokens(a: np.ndarray) -> np.ndarray:
        extra = a.shape[2:]
        t = a.reshape((DENSE_SIDE, DET_SUB, DENSE_SIDE, DET_SUB) + extra).swapaxes(1, 2)
        return t.reshape((DENSE_SIDE * DENSE_SIDE, DET_SUB * DET_SUB) + extra)
    return tokens(cls), tokens(col), tokens(box)


def train_dense(encoder: DenseVisionEncoder, mask_heads: MaskHeads, box_heads: BoxHeads, ds: Dataset,
                seg_targets: np.ndarray, change_targets: Dict[int, np.ndarray], det: Tuple[np.ndarray, np.ndarray, np.ndarray],
                steps: int, batch: int, pair_batch: int, seed: int, log) -> None:
    """Encoder and heads together on the training split: cell labels (``seg_targets`` [N,64,9], class-weighted
    cross-entropy), changed cells of change pairs (``change_targets``: position in ds.pairs -> [64,9]), and box
    centres, colours and boxes (``det``, arrays over all dataset images)."""
    from train_demo import Sampler, finite_step, lr_at
    train_idx = ds.indices("train")
    seg = torch.from_numpy(seg_targets)
    freq = torch.bincount(seg[train_idx].flatten(), minlength=MASK_LABELS).to(torch.float32)
    weight = torch.clamp((freq.max() / torch.clamp(freq, min=1.0)) ** 0.5, max=6.0)
    chg_all = torch.cat([torch.from_numpy(change_targets[k]).flatten() for k in change_targets])
    cf = torch.bincount(chg_all, minlength=2).to(torch.float32)
    change_weight = torch.clamp((cf.max() / torch.clamp(cf, min=1.0)) ** 0.5, max=6.0)
    det_cls, det_col, det_box = (torch.from_numpy(a) for a in det)
    cls_weight = torch.ones(NUM_CLASSES)
    cls_weight[0] = 0.05
    params = [p for m in (encoder, mask_heads, box_heads) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    sampler = Sampler(train_idx, seed)
    pair_sampler = Sampler(sorted(change_targets), seed + 1)
    for m in (encoder, mask_heads, box_heads):
        m.train()
    start, skipped = time.time(), 0
    # oneDNN convolutions: 5x faster here than the native ones stage 1 needs (see train_demo.main); a rare
    # non-finite gradient is skipped by finite_step.
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = True
    for step in range(steps):
        chosen = sampler.take(batch)
        pairs = pair_sampler.take(pair_batch)
        pair_pixels = ds.pair_images[pairs]
        pixels = torch.cat((ds.images[chosen], pair_pixels[:, 0], pair_pixels[:, 1]))
        features = encoder(to_pixel_values(pixels))
        f = features[:batch]
        seg_loss = F.cross_entropy(mask_heads.segment_logits(f).reshape(-1, MASK_LABELS), seg[chosen].reshape(-1), weight=weight)
        before, after = features[batch:batch + len(pairs)], features[batch + len(pairs):]
        change = mask_heads.change_logits(before, after).reshape(-1, 2)
        change_truth = torch.from_numpy(np.stack([change_targets[k] for k in pairs])).reshape(-1)
        change_loss = F.cross_entropy(change, change_truth, weight=change_weight)
        cls_logits, colour_logits, box = box_heads(f)
        centres = det_cls[chosen]
        det_loss = F.cross_entropy(cls_logits.reshape(-1, NUM_CLASSES), centres.reshape(-1), weight=cls_weight)
        positive = centres > 0
        if bool(positive.any()):
            det_loss = det_loss + F.cross_entropy(colour_logits[positive], det_col[chosen][positive])
            det_loss = det_loss + 20.0 * F.smooth_l1_loss(box[positive], det_box[chosen][positive], beta=0.02)
        loss = seg_loss + change_loss + det_loss
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, 2e-3, warmup=50)
        skipped += not finite_step(opt, loss, params)
        if step % 50 == 0 or step == steps - 1:
            log(f"dense encoder step {step + 1}/{steps} loss {loss.item():.3f} (cells {seg_loss.item():.3f} change "
                f"{change_loss.item():.3f} boxes {det_loss.item():.3f}) {time.time() - start:.0f}s"
                + (f", {skipped} non-finite steps skipped" if skipped else ""))
    torch.backends.mkldnn.enabled = mkldnn
    for m in (encoder, mask_heads, box_heads):
        m.eval()


@torch.no_grad()
def head_boxes(heads: BoxHeads, features: torch.Tensor, cls: Sequence[int], colour: Sequence[int]) -> np.ndarray:
    """best_box over whole image-feature rows [B,64,D]: what the box writer finds for each (class, colour)."""
    b, p = features.shape[:2]
    index = torch.arange(p).unsqueeze(0).expand(b, p)
    return heads.best_box(features, torch.ones(b, p), index, torch.tensor(list(cls)), torch.tensor(list(colour))).to(torch.int64).numpy()


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
