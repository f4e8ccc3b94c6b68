"""Models of the demo pack (RS-MoE in miniature).

* ``ConvVisionEncoder``: the shared vision encoder. A strided CNN over the 128x128 image (4x4 patchify
  stem, then 3x3 conv stages down to a 4x4 grid), learned grid positions, LayerNorm and the LLaVA
  projector (Linear-GELU-Linear): pixel_values [B,3,128,128] -> image_features [B,16,D].
* ``ExpertDecoder``: token embeddings + a Qwen2-like decoder (tiny_llava's layers, KV cache, RoPE, GQA).
  Its first ``connector_layers`` layers are the *instruction-aware connector*: in them the prompt is
  attended bidirectionally (prefix-LM attention, as in PaliGemma), so the 16 image positions are
  re-weighted by the instruction words that follow them; later layers and all generated tokens are
  causal. At inference the prompt is exactly the prefill call (empty past), which is how the exported
  graph recognises it; in training the prompt length is given per row.
* ``SceneHead`` / ``QuestionClassifier``: the router model (scene class from the shared encoder's pooled
  features; question type from a bag of token embeddings).
* ``AuxHeads``: training-only scene-graph heads (scene class, object presence, log counts, and the class map
  under every image token at the mask grids) that help the encoder learn to perceive and to localise in
  stage 1; never exported except the scene head.
* ``CellTracker`` (the pixel expert only): mask text is written cell by cell, so the decoder is told which
  cell it is at. The counts it has written so far (``label*count`` cells) add up to the index of the next
  cell; the tracker keeps each written count in one channel of layer 0's value cache, sums them at every
  step and adds learned row and column embeddings of that cell (for every mask grid) to the hidden state
  after the connector layer. It is part of the exported decoder graph: the standard inputs, outputs and
  KV-cache shapes, nothing for the runtime to know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import tiny_llava as tl
from demo_data import OBJECT_CLASSES, SCENE_CLASSES

IMAGE_SIZE = 128
GRID = 4  # image_features form a GRID x GRID token grid
FIRST_IMAGE_POSITION = 3  # "<bos> user :" precede the image tokens in the rendered chat prompt
# Counts live in embedding channel 0 as count / COUNT_SCALE (exact in float32, small next to the other channels).
COUNT_SCALE = 64.0


@dataclass
class DemoSizes:
    hidden_size: int = 128
    intermediate_size: int = 256
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    connector_layers: int = 1
    causal_layers: int = 2
    encoder_channels: Sequence[int] = (32, 64, 128)
    max_position_embeddings: int = 1024

    def text_config(self, vocab_size: int) -> tl.TextConfig:
        return tl.TextConfig(
            vocab_size=vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.connector_layers + self.causal_layers,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
            head_dim=self.hidden_size // self.num_attention_heads, max_position_embeddings=self.max_position_embeddings)


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class ConvVisionEncoder(nn.Module):
    """Strided CNN to a GRID x GRID grid. Each grid token also gets the detail under it: the 16x16 stage's
    features of its 4x4 positions, stacked (space-to-depth) and projected, so that region and pixel experts can
    read where things are inside a token, not only which things are there."""

    def __init__(self, hidden_size: int, channels: Sequence[int]):
        super().__init__()
        c1, c2, c3 = channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=4, bias=False), nn.BatchNorm2d(c1), nn.GELU(),  # 32x32
            conv_block(c1, c2, 2), conv_block(c2, c2, 1),  # 16x16
        )
        self.features = nn.Sequential(
            conv_block(c2, c3, 2), conv_block(c3, c3, 1),  # 8x8
            conv_block(c3, c3, 2),  # 4x4
        )
        self.detail = nn.Linear(c2 * (16 // GRID) ** 2, c3)
        self.position_embedding = nn.Parameter(torch.randn(1, GRID * GRID, c3) * 0.02)
        self.post_layernorm = nn.LayerNorm(c3)
        self.projector_in = nn.Linear(c3, hidden_size)
        self.projector_out = nn.Linear(hidden_size, hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        fine = self.stem(pixel_values)  # [B,C2,16,16]
        x = self.features(fine).flatten(2).transpose(1, 2)  # [B,16,C3]
        b, c, h, _ = fine.shape
        k = h // GRID
        # space-to-depth: token (i, j) gets the k x k fine positions under it, channels stacked
        detail = fine.reshape(b, c, GRID, k, GRID, k).permute(0, 2, 4, 1, 3, 5).reshape(b, GRID * GRID, c * k * k)
        x = self.post_layernorm(x + self.detail(detail) + self.position_embedding)
        return self.projector_out(F.gelu(self.projector_in(x)))


def connector_allowed(attention_mask: torch.Tensor, query_len: int,
                      prefix_len: Optional[torch.Tensor]) -> torch.Tensor:
    """Boolean [B,1,T,S] for the connector layers: causal, plus every prompt position sees the whole prompt.

    With ``prefix_len`` ([B], training) the first prefix_len[b] positions of row b are the prompt. Without
    it (inference), the prompt is the prefill call: all T positions when the past is empty, none otherwise.
    """
    causal = tl.attention_allowed(attention_mask, query_len)
    total = attention_mask.shape[1]
    q_pos = torch.arange(query_len, device=attention_mask.device) + (total - query_len)
    k_pos = torch.arange(total, device=attention_mask.device)
    if prefix_len is None:
        prefill = q_pos[:1] == 0  # [1], a graph value (not a Python bool) so the export keeps both cases
        return causal | prefill.view(1, 1, 1, 1)
    in_q = q_pos[None, :] < prefix_len[:, None]  # [B,T]
    in_k = k_pos[None, :] < prefix_len[:, None]  # [B,S]
    keys = attention_mask.to(torch.bool)[:, None, None, :]
    return causal | (in_q[:, None, :, None] & in_k[:, None, None, :] & keys)


def answer_positions(attention_mask: torch.Tensor, query_len: int, prefix_len: Optional[torch.Tensor],
                     dtype: torch.dtype):
    """For the ``query_len`` new positions: 1 where a position is an answer token ([1,1] at inference: every call
    after the prefill; [B,T] in training: past each row's prompt) and 1 where it is real (not padding) [B,T]."""
    total = attention_mask.shape[1]
    q_pos = torch.arange(query_len, device=attention_mask.device) + (total - query_len)
    if prefix_len is None:
        answer = (q_pos[:1] > 0).to(dtype).view(1, 1)
    else:
        answer = (q_pos[None, :] >= prefix_len[:, None]).to(dtype)
    return answer, attention_mask[:, total - query_len:].to(dtype)


class ConnectorDecoder(tl.TextDecoder):
    """tiny_llava's decoder whose first ``connector_layers`` layers use ``connector_allowed``."""

    def __init__(self, cfg: tl.TextConfig, connector_layers: int):
        super().__init__(cfg)
        self.connector_layers = connector_layers
        for layer in self.layers:
            layer.self_attn.__class__ = GroupedAttention  # same parameters, the faster forward

    def forward(self, inputs_embeds, attention_mask, position_ids, past, prefix_len=None):
        cos, sin = self.rotary(position_ids)
        query_len = inputs_embeds.shape[1]
        causal = tl.attention_allowed(attention_mask, query_len)
        connector = connector_allowed(attention_mask, query_len, prefix_len) & attention_mask.to(torch.bool)[:, None, None, :]
        x, presents = inputs_embeds, []
        for i, (layer, layer_past) in enumerate(zip(self.layers, past)):
            x, present = layer(x, cos, sin, connector if i < self.connector_layers else causal, layer_past)
            presents.append(present)
        return self.lm_head(self.norm(x)), presents


class GroupedAttention(tl.Attention):
    """tiny_llava's Attention (same weights and cache), computed per KV head without repeating keys and values,
    with the 1/sqrt(head_dim) scale applied to the queries: the same function, fewer copies over [B,H,T,S] (the
    pixel expert's mask answers make sequences of hundreds of tokens).

    ``head0`` [B,T,C], when given, replaces the first C value channels of KV head 0, and ``head1`` [B,T,head_dim]
    replaces KV head 1's values where ``head1_mask`` [B,T] is 1: the pixel expert's bookkeeping, so that it lives
    in the standard cache."""

    def forward(self, x, cos, sin, allowed, past, head0: Optional[torch.Tensor] = None,
                head1: Optional[torch.Tensor] = None, head1_mask: Optional[torch.Tensor] = None):
        b, t, _ = x.shape
        n_rep = self.n_heads // self.n_kv
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        if head0 is not None:
            first = torch.cat((head0, v[:, 0, :, head0.shape[-1]:]), dim=-1)
            second = torch.where(head1_mask.unsqueeze(-1) > 0, head1, v[:, 1])
            v = torch.cat((first.unsqueeze(1), second.unsqueeze(1), v[:, 2:]), dim=1)
        q = (q * cos + tl.rotate_half(q) * sin) * (1.0 / math.sqrt(self.head_dim))
        k = k * cos + tl.rotate_half(k) * sin
        k = torch.cat((past[0], k), dim=2)
        v = torch.cat((past[1], v), dim=2)
        # query head h uses KV head h // n_rep (tl.repeat_kv's order)
        scores = torch.matmul(q.reshape(b, self.n_kv, n_rep * t, self.head_dim), k.transpose(2, 3))
        scores = scores.view(b, self.n_kv, n_rep, t, -1).masked_fill(~allowed.unsqueeze(2), -1e9)
        probs = torch.softmax(scores, dim=-1).view(b, self.n_kv, n_rep * t, -1)
        out = torch.matmul(probs, v).view(b, self.n_heads, t, self.head_dim)
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(out), (k, v)


class FixedChannelEmbedding(nn.Module):
    """Token embeddings whose first channels are fixed values per token (``fixed`` [V,C]), the rest learned."""

    def __init__(self, vocab_size: int, hidden_size: int, fixed: torch.Tensor):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden_size - fixed.shape[1])
        self.register_buffer("fixed", fixed.to(torch.float32))

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat((self.fixed, self.embed.weight), dim=-1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.fixed[input_ids], self.embed(input_ids)), dim=-1)


# The pixel expert's label words: 0 = others (also "no label"), 1.. = OBJECT_CLASSES, then `changed`.
MASK_LABELS = 1 + len(OBJECT_CLASSES)
CHANGED_WORD = MASK_LABELS  # word id of `changed`
BOOK_SCALE = 64.0  # bookkeeping values are stored as value / BOOK_SCALE (exact in float32)


class MaskHeads(nn.Module):
    """The pixel expert's dense heads over the shared encoder's image features: per image token, the label of
    each of the k x k mask cells under it (k = grid / GRID; labels: others + the object classes), and for a token
    of the after image together with the same token of the before image, whether each cell changed."""

    def __init__(self, hidden_size: int, grid: int, width: int = 256, side: int = GRID):
        super().__init__()
        self.cells = (grid // side) ** 2
        self.segment = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width), nn.GELU(),
                                     nn.Linear(width, self.cells * MASK_LABELS))
        self.change = nn.Sequential(nn.LayerNorm(2 * hidden_size), nn.Linear(2 * hidden_size, width), nn.GELU(),
                                    nn.Linear(width, self.cells * 2))

    def segment_logits(self, features: torch.Tensor) -> torch.Tensor:
        """[...,D] -> [...,cells,MASK_LABELS]"""
        out = self.segment(features)
        return out.reshape(out.shape[:-1] + (self.cells, MASK_LABELS))

    def change_logits(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """[...,D] x2 -> [...,cells,2]"""
        out = self.change(torch.cat((before, after), dim=-1))
        return out.reshape(out.shape[:-1] + (self.cells, 2))


def pack_labels(labels: torch.Tensor) -> torch.Tensor:
    """[...,2n] labels < 16 -> [...,n] floats (l[2i] + 16 l[2i+1]) / 256, exact in float32 (an odd count is padded
    with a 0 label)."""
    if labels.shape[-1] % 2:
        labels = torch.cat((labels, torch.zeros_like(labels[..., :1])), dim=-1)
    return (labels[..., 0::2] + 16 * labels[..., 1::2]).to(torch.float32) / 256.0


def unpack_labels(packed: torch.Tensor) -> torch.Tensor:
    """pack_labels' inverse: [...,n] -> [...,2n] int64."""
    v = torch.round(packed * 256.0).to(torch.int64)
    low = torch.remainder(v, 16)
    high = torch.div(v, 16, rounding_mode="floor")
    return torch.stack((low, high), dim=-1).flatten(-2)


class MaskWriterDecoder(ConnectorDecoder):
    """The pixel expert's decoder: ConnectorDecoder plus a mask writer state.

    RSUniVLM's mask text names a label and a run length cell after cell, row after row. Free generation of it
    by a decoder this small does not converge in the CPU budget (tools/train/README.md), so the graph works out
    what the next cell is and hands it to the language model, which learns to write it:

    * embedding channels 0 and 1 are fixed: a cell-end token's count (`*<count>,` / `*<count>\\n`) and a token's
      label word id (object class words 1.., `changed`), over BOOK_SCALE;
    * in the prefill call, layer 0 keeps in KV head 0's value channels 0-2 the answer tokens' counts (0 in the
      prompt), the image-token markers (1 + position - FIRST_IMAGE_POSITION for the first two images' tokens) and
      the prompt's label word ids; and in KV head 1's values at image tokens the labels the mask heads give their
      cells (first image: segmentation; second image, when the prompt names `changed`: change against the same
      token of the first image), packed two per channel;
    * at every position it reads the cache: cells written so far (the sum of counts) give the row and column of the
      next cell; the queried classes (or change mode) come from the prompt's label words; the labels of the next
      cell's row come from the tokens of its row band; unqueried classes count as others. The word of the next
      cell's label, the length of its run in that row and whether the run ends the row are embedded, with the row
      and the column, and added to the hidden state after layer 0.

    The graph's inputs, outputs and cache are the standard ones; nothing for the runtime to know."""

    def __init__(self, cfg: tl.TextConfig, connector_layers: int, grid: int, side: int = GRID):
        super().__init__(cfg, connector_layers)
        assert cfg.num_key_value_heads >= 2 and cfg.head_dim * 2 >= (grid // side) ** 2 and grid % side == 0
        self.grid, self.side = grid, side
        self.heads = MaskHeads(cfg.hidden_size, grid, side=side)
        d = cfg.hidden_size
        self.word = nn.Embedding(MASK_LABELS + 1, d)
        self.run = nn.Embedding(grid + 1, d)
        self.rows = nn.Embedding(grid + 1, d)  # row `grid`: the mask is complete
        self.cols = nn.Embedding(grid, d)
        self.row_end = nn.Embedding(2, d)  # whether the next run ends its row
        for e in (self.word, self.run, self.rows, self.cols, self.row_end):
            nn.init.normal_(e.weight, std=0.02)
        # A gated copy bias on the token the writer works out (pointer-generator style): the label word at a
        # label position, the cell end `*<run>,` / `*<run>\n` after it, EOS once the mask is complete. Token ids
        # are set by ``set_copy_tokens`` (-1 = none: no bias).
        self.copy_scale = nn.Parameter(torch.tensor(8.0))
        self.copy_gate = nn.Linear(d, 1)
        nn.init.zeros_(self.copy_gate.weight)
        nn.init.constant_(self.copy_gate.bias, 3.0)
        self.register_buffer("label_token_ids", torch.full((MASK_LABELS + 1,), -1, dtype=torch.int64))
        self.register_buffer("end_token_ids", torch.full((2, grid + 1), -1, dtype=torch.int64))  # [ends row, run]
        self.register_buffer("eos_token_id", torch.tensor(-1, dtype=torch.int64))

    def set_copy_tokens(self, label_ids: Sequence[int], end_ids: Sequence[Sequence[int]], eos_id: int) -> None:
        """Token ids of the label words (others, the object classes, changed), of the cell ends ([0][n] = `*n,`,
        [1][n] = `*n\\n`) and of EOS."""
        with torch.no_grad():
            self.label_token_ids.copy_(torch.tensor(list(label_ids), dtype=torch.int64))
            self.end_token_ids.copy_(torch.tensor([list(r) for r in end_ids], dtype=torch.int64))
            self.eos_token_id.fill_(int(eos_id))

    def book(self, inputs_embeds, attention_mask, position_ids, prefix_len):
        """Layer 0's bookkeeping values for the new positions: head0 [B,T,3], head1 [B,T,hd], head1_mask [B,T]."""
        answer, real = answer_positions(attention_mask, inputs_embeds.shape[1], prefix_len, inputs_embeds.dtype)
        dtype = inputs_embeds.dtype
        prompt = (1 - answer) * real
        per_image = self.side * self.side
        marker = position_ids - (FIRST_IMAGE_POSITION - 1)  # 1.. on the image tokens
        first = ((marker >= 1) & (marker <= per_image)).to(dtype) * prompt
        # Positions after the first image are the second image's only in a change prompt, whose text (naming
        # `changed`) follows both images; a one-image prompt's text follows the first. Words are read from the
        # prompt's text only: image positions hold features, which could round to any word id.
        after_two = (marker > 2 * per_image).to(dtype) * prompt
        raw = torch.round(inputs_embeds[:, :, 1] * BOOK_SCALE)
        change_mode = ((raw * after_two) == CHANGED_WORD).to(dtype).amax(dim=1, keepdim=True)  # [B,1]
        second = ((marker > per_image) & (marker <= 2 * per_image)).to(dtype) * prompt * change_mode
        words = raw * (prompt - first - second)
        head0 = torch.stack((inputs_embeds[:, :, 0] * answer * real,
                             marker.to(dtype) * (first + second) / BOOK_SCALE,
                             words / BOOK_SCALE), dim=-1)
        # The heads run at every position, not at the first ones by index: a batch pads rows before their image
        # tokens (the runtime's padAt), so a row's images may sit anywhere. The first image's token k is always
        # per_image positions before the second image's token k, padded or not.
        x = inputs_embeds
        seg = self.heads.segment_logits(x).argmax(-1)  # [B,T,cells]
        before = torch.cat((torch.zeros_like(x[:, :per_image]), x[:, :-per_image]), dim=1)[:, :x.shape[1]]
        changed = self.heads.change_logits(before, x).argmax(-1)
        head1 = pack_labels(seg) * first.unsqueeze(-1) + pack_labels(changed) * second.unsqueeze(-1)
        hd = self.layers[0].self_attn.head_dim
        head1 = torch.cat((head1, torch.zeros_like(x[:, :, :hd - head1.shape[-1]])), dim=-1)
        return head0, head1, first + second * change_mode

    def state(self, values: torch.Tensor, query_len: int) -> torch.Tensor:
        """Embedding of the next cell's word, run length, row and column for the last ``query_len`` positions, from
        layer 0's value cache [B,kv,S,hd]."""
        g, k, side = self.grid, self.grid // self.side, self.side
        b, _, s, hd = values.shape
        written = torch.cumsum(values[:, 0, :, 0], dim=1)[:, s - query_len:]
        cells = torch.round(written * BOOK_SCALE).to(torch.int64)  # [B,T]
        cells = torch.maximum(cells, torch.zeros_like(cells))  # only an inconsistent cache could make it negative
        row = torch.minimum(torch.div(cells, g, rounding_mode="floor"), torch.tensor(g, dtype=torch.int64))
        col = torch.remainder(cells, g)
        in_row = torch.minimum(row, torch.tensor(g - 1, dtype=torch.int64))
        band, sub = torch.div(in_row, k, rounding_mode="floor"), torch.remainder(in_row, k)
        words = torch.round(values[:, 0, :, 2] * BOOK_SCALE).to(torch.int64)  # [B,S]
        named = (words.unsqueeze(-1) == torch.arange(MASK_LABELS + 1)).to(values.dtype).amax(dim=1)  # [B,L+1]
        queried = torch.cat((torch.zeros_like(named[:, :1]), named[:, 1:MASK_LABELS]), dim=1)  # others never "queried"
        change_mode = named[:, CHANGED_WORD:CHANGED_WORD + 1]  # [B,1]
        markers = torch.round(values[:, 0, :, 1] * BOOK_SCALE).to(torch.int64)  # [B,S]
        slots = 2 * side * side
        by_marker = (markers.unsqueeze(-1) == torch.arange(slots + 1)).to(values.dtype)  # [B,S,1+slots]
        tokens = torch.matmul(by_marker.transpose(1, 2), values[:, 1])  # [B,1+slots,hd]: packed labels per token
        offsets = torch.arange(side, dtype=torch.int64)
        seg_ids = 1 + band.unsqueeze(-1) * side + offsets  # [B,T,side]
        chg_ids = seg_ids + side * side
        t = query_len

        def row_labels(ids: torch.Tensor) -> torch.Tensor:
            packed = torch.gather(tokens, 1, ids.reshape(b, t * side, 1).expand(b, t * side, hd))
            labels = unpack_labels(packed[..., :(k * k + 1) // 2])[..., :k * k].reshape(b, t, side, k, k)  # [B,T,side,k rows,k cols]
            pick = sub.reshape(b, t, 1, 1, 1).expand(b, t, side, 1, k)
            # clamped: only an inconsistent cache (an export trace's random one) could hold other values
            return torch.clamp(torch.gather(labels, 3, pick).reshape(b, t, g), 0, MASK_LABELS - 1)  # [B,T,g]: the next cell's row

        seg = row_labels(seg_ids)
        seg = seg * torch.gather(queried, 1, seg.reshape(b, t * g)).reshape(b, t, g).to(torch.int64)
        chg = row_labels(chg_ids) * CHANGED_WORD
        labels = torch.where(change_mode.unsqueeze(-1) > 0, chg, seg)  # [B,T,g]
        word = torch.gather(labels, 2, col.unsqueeze(-1)).squeeze(-1)
        idx = torch.arange(g, dtype=torch.int64)
        starts = torch.cat((torch.zeros_like(labels[:, :, :1]), (labels[:, :, 1:] != labels[:, :, :-1]).to(torch.int64)), dim=-1)
        ahead = (starts > 0) & (idx > col.unsqueeze(-1))
        end = torch.where(ahead, idx, torch.full_like(labels, g)).amin(dim=-1)
        run = torch.where(row < g, end - col, torch.zeros_like(col))
        word = torch.where(row < g, word, torch.zeros_like(word))
        row_end = ((end == g) & (row < g)).to(torch.int64)
        label_token = self.label_token_ids[word]
        end_token = self.end_token_ids[row_end, run]
        return self.word(word) + self.run(run) + self.rows(row) + self.cols(col) + self.row_end(row_end), label_token, end_token, row >= g

    def forward(self, inputs_embeds, attention_mask, position_ids, past, prefix_len=None):
        cos, sin = self.rotary(position_ids)
        query_len = inputs_embeds.shape[1]
        causal = tl.attention_allowed(attention_mask, query_len)
        connector = connector_allowed(attention_mask, query_len, prefix_len) & attention_mask.to(torch.bool)[:, None, None, :]
        head0, head1, head1_mask = self.book(inputs_embeds, attention_mask, position_ids, prefix_len)
        layer = self.layers[0]
        h, present = layer.self_attn(layer.input_layernorm(inputs_embeds), cos, sin,
                                     connector if self.connector_layers > 0 else causal, past[0], head0, head1, head1_mask)
        x = inputs_embeds + h
        x = x + layer.mlp(layer.post_attention_layernorm(x))
        embedded, label_token, end_token, complete = self.state(present[1], query_len)
        x = x + embedded
        presents = [present]
        for i in range(1, len(self.layers)):
            x, present = self.layers[i](x, cos, sin, connector if i < self.connector_layers else causal, past[i])
            presents.append(present)
        # The next token is a label word after a cell end or the prompt, else the end of the label's cell.
        in_prompt = answer_positions(attention_mask, query_len, prefix_len, inputs_embeds.dtype)[0] < 0.5
        after_end = torch.round(inputs_embeds[:, :, 0] * BOOK_SCALE) > 0
        target = torch.where(after_end | in_prompt, label_token, end_token)
        target = torch.where(complete, self.eos_token_id.expand_as(target), target)
        vocab = torch.arange(self.lm_head.out_features, device=inputs_embeds.device)
        copy = (vocab == target.unsqueeze(-1)).to(inputs_embeds.dtype)
        h = self.norm(x)
        return self.lm_head(h) + copy * (self.copy_scale * torch.sigmoid(self.copy_gate(h))), presents


class ExpertDecoder(nn.Module):
    """One expert (or the stage-1 dense decoder): token embeddings + connector decoder. With ``mask_grid`` (the
    pixel expert) the embeddings carry bookkeeping channels and the decoder is a ``MaskWriterDecoder``."""

    def __init__(self, vocab_size: int, sizes: DemoSizes, mask_grid: int = 0, fixed_channels: Optional[torch.Tensor] = None,
                 side: int = GRID, writer: Optional[nn.Module] = None):
        super().__init__()
        self.text_config = sizes.text_config(vocab_size)
        if writer is not None:  # a decoder made elsewhere (demo_dense.BoxWriterDecoder) over fixed-channel embeddings
            assert fixed_channels is not None
            self.embed_tokens = FixedChannelEmbedding(vocab_size, sizes.hidden_size, fixed_channels)
            self.decoder = writer
        elif mask_grid:
            assert fixed_channels is not None
            self.embed_tokens = FixedChannelEmbedding(vocab_size, sizes.hidden_size, fixed_channels)
            self.decoder = MaskWriterDecoder(self.text_config, sizes.connector_layers, mask_grid, side)
        else:
            self.embed_tokens = nn.Embedding(vocab_size, sizes.hidden_size)
            self.decoder = ConnectorDecoder(self.text_config, sizes.connector_layers)

    @classmethod
    def mask_writer_from(cls, dense: "ExpertDecoder", sizes: DemoSizes, mask_grid: int,
                         fixed_channels: torch.Tensor, side: int = GRID, writer: Optional[nn.Module] = None) -> "ExpertDecoder":
        """A pixel (or, with ``writer``, region) expert starting from a plain decoder's weights (its first embedding
        channels become fixed)."""
        out = cls(dense.text_config.vocab_size, sizes, mask_grid, fixed_channels, side, writer)
        with torch.no_grad():
            out.embed_tokens.embed.weight.copy_(dense.embed_tokens.weight[:, fixed_channels.shape[1]:])
        missing, unexpected = out.decoder.load_state_dict(dense.decoder.state_dict(), strict=False)
        new = ("heads.", "word.", "run.", "rows.", "cols.", "row_end.", "number.", "slot.", "copy_scale", "copy_gate.", "number_ids",
               "label_token_ids", "end_token_ids", "eos_token_id")
        assert not unexpected and all(k.startswith(new) for k in missing), (missing, unexpected)
        return out

    def embed(self, input_ids: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image features at the image-token positions (right after "<bos> user :")."""
        embeds = self.embed_tokens(input_ids)
        n = image_features.shape[1]
        assert bool((input_ids[:, FIRST_IMAGE_POSITION:FIRST_IMAGE_POSITION + n] == tl.SPECIAL_TOKENS.index(tl.IMAGE)).all())
        return torch.cat((embeds[:, :FIRST_IMAGE_POSITION], image_features, embeds[:, FIRST_IMAGE_POSITION + n:]), dim=1)

    def forward(self, input_ids, image_features, attention_mask, prefix_len):
        """Teacher-forced logits [B,T,V] for right-padded rows (positions 0..T-1)."""
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0).expand(input_ids.shape[0], -1)
        logits, _ = self.decoder(self.embed(input_ids, image_features), attention_mask, positions,
                                 self.decoder.empty_cache(input_ids.shape[0]), prefix_len)
        return logits


class ExportableVlm(nn.Module):
    """The attributes tiny_llava's ``export_onnx`` and ``greedy_generate`` use (cfg, vision, embed_tokens,
    decoder, merge_image_features) over a shared encoder and one expert."""

    def __init__(self, encoder: nn.Module, expert: ExpertDecoder, encoder_channels: int, side: int = GRID):
        super().__init__()
        vision = tl.VisionConfig(image_size=IMAGE_SIZE, patch_size=IMAGE_SIZE // side, hidden_size=encoder_channels)
        self.cfg = tl.LlavaConfig(text=expert.text_config, vision=vision)
        self.vision = encoder
        self.embed_tokens = expert.embed_tokens
        self.decoder = expert.decoder

    merge_image_features = tl.TinyLlava.merge_image_features


class SceneHead(nn.Module):
    """Scene logits from the mean of the shared encoder's image features."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size)
        self.out = nn.Linear(hidden_size, len(SCENE_CLASSES))

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(image_features.mean(dim=1)))


class SceneClassifier(nn.Module):
    """Exported router graph: pixel_values [B,3,128,128] -> scene_logits [B,12] (shared encoder + head)."""

    def __init__(self, encoder: ConvVisionEncoder, head: SceneHead):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, pixel_values):
        return self.head(self.encoder(pixel_values))


class AuxHeads(nn.Module):
    """Stage-1 training signal from the scene graphs: presence logits and log(1 + count) per object class, and
    (``dense_grids``) each image token's share of every class (background included) in each cell under it, at
    each mask grid, so that the shared encoder keeps where things are."""

    def __init__(self, hidden_size: int, num_objects: int, dense_grids: Sequence[int] = ()):
        super().__init__()
        self.presence = nn.Linear(GRID * GRID * hidden_size, num_objects)
        self.log_count = nn.Linear(GRID * GRID * hidden_size, num_objects)
        self.dense_grids = list(dense_grids)
        self.dense = nn.ModuleList(nn.Linear(hidden_size, (g // GRID) ** 2 * (num_objects + 1)) for g in self.dense_grids)
        self.num_labels = num_objects + 1

    def loss(self, image_features: torch.Tensor, counts: torch.Tensor, class_maps: Optional[torch.Tensor] = None) -> torch.Tensor:
        flat = image_features.flatten(1)
        present = (counts > 0).to(torch.float32)
        loss = (F.binary_cross_entropy_with_logits(self.presence(flat), present)
                + F.smooth_l1_loss(self.log_count(flat), torch.log1p(counts.to(torch.float32))))
        if class_maps is not None:
            one_hot = F.one_hot(class_maps.to(torch.int64), self.num_labels).permute(0, 3, 1, 2).to(torch.float32)
            b = image_features.shape[0]
            for g, head in zip(self.dense_grids, self.dense):
                share = F.adaptive_avg_pool2d(one_hot, g)  # [B,K,g,g]; 128 / g pixels per cell
                k = g // GRID
                share = share.reshape(b, self.num_labels, GRID, k, GRID, k).permute(0, 2, 4, 3, 5, 1)
                logits = head(image_features).reshape(b, GRID, GRID, k, k, self.num_labels)
                loss = loss - (share * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        return loss


class QuestionClassifier(nn.Module):
    """Exported router graph: input_ids [B,T], attention_mask [B,T] -> question_type_logits [B,5].

    Mean of token embeddings over the unmasked positions, then a two-layer MLP.
    """

    def __init__(self, vocab_size: int, num_types: int, dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, num_types))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32).unsqueeze(-1)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.mlp(pooled)


def count_parameters(modules: List[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())
