"""Tiny LLaVA-style vision-language model: definitions, ONNX export and goldens.

The model mirrors the structure of LLaVA-family models (LLaVA-OneVision, RS-MoE experts):

* a vision tower (patch-embedding conv + learned positions + LayerNorm) followed by a
  two-layer MLP projector ("connector") that maps patch features to the text hidden size;
* a token embedding table;
* a Qwen2-like decoder: RMSNorm, rotary position embeddings driven by ``position_ids``,
  grouped-query attention with a KV cache, SwiGLU MLP, final RMSNorm and an untied lm_head.

It is exported in the LLaVA-family ONNX layout used by Optimum / transformers.js exports:

    onnx/vision_encoder.onnx        pixel_values[B,3,H,W]      -> image_features[B,N,D]
    onnx/embed_tokens.onnx          input_ids[B,T]             -> inputs_embeds[B,T,D]
    onnx/decoder_model_merged.onnx  inputs_embeds, attention_mask, position_ids,
                                    past_key_values.{i}.key/value -> logits, present.{i}.key/value

plus the Hugging Face style JSON files (config, generation config, preprocessor config,
tokenizer). Everything here is deterministic for a given seed and torch version.

Run with Debian's ``/usr/bin/python3`` (torch 1.13, onnx 1.12). Torch 1.13 has no
``scaled_dot_product_attention``, so attention is written by hand.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

PAD, BOS, EOS, UNK, IMAGE = "<pad>", "<bos>", "<eos>", "<unk>", "<image>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE]  # ids 0..4, in this order
# A line break as a token of its own (mask text has one line per row). The Whitespace pre-tokenizer drops
# whitespace, so it is an added token, matched in the raw text; not special, so decoding keeps it.
NEWLINE = "\n"
# Decode-only tokens that end a cell of RSUniVLM's mask text: `*<count>,` (more cells follow in the row) and
# `*<count>\n` (the row ends). The pre-tokenizer never produces them from text; a model writes them, and the
# WordPiece decoder joins them like any token (`building *3, others *5\n others ...`).
CELL_END = re.compile(r"\*[0-9]+[,\n]")

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image> "
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
    " ASSISTANT:{% endif %}{% endfor %}"
)


@dataclass
class TextConfig:
    vocab_size: int
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 16
    max_position_embeddings: int = 256
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6

    def to_hf_dict(self) -> dict:
        return {"model_type": "qwen2", **asdict(self)}


@dataclass
class VisionConfig:
    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 48
    num_channels: int = 3

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_hf_dict(self) -> dict:
        return asdict(self)


@dataclass
class LlavaConfig:
    text: TextConfig
    vision: VisionConfig = field(default_factory=VisionConfig)
    image_token_index: int = 4
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2

    @property
    def image_seq_length(self) -> int:
        return self.vision.num_patches

    def to_hf_dict(self) -> dict:
        return {
            "model_type": "llava",
            "architectures": ["LlavaForConditionalGeneration"],
            "image_token_index": self.image_token_index,
            "image_seq_length": self.image_seq_length,
            "pad_token_id": self.pad_token_id,
            "text_config": self.text.to_hf_dict(),
            "vision_config": self.vision.to_hf_dict(),
        }


def generation_config_dict(cfg: LlavaConfig, max_new_tokens: int = 24) -> dict:
    return {
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
    }


def preprocessor_config_dict(cfg: LlavaConfig) -> dict:
    size = cfg.vision.image_size
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"height": size, "width": size},
        "resample": 2,
        "do_center_crop": False,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_convert_rgb": True,
    }


# ----------------------------------------------------------------------------------------------
# Tokenizer: word-level, expressed as a WordPiece model without "##" pieces
# ----------------------------------------------------------------------------------------------

# Tokens after the specials: chat roles and punctuation, then remote-sensing caption/prompt words.
BASE_WORDS = ["user", "assistant", ":", ".", ",", "?"]
RS_WORDS = [
    # prompt / grammar words
    "describe", "the", "image", "what", "how", "many", "is", "are", "there", "a", "an", "of",
    "in", "on", "with", "and", "scene", "theme", "objects", "relations", "spatial", "answer",
    "question", "yes", "no", "this", "it", "where", "which", "type", "can", "you", "see",
    "count", "main", "located", "at", "from", "some", "few", "several", "small", "large",
    "picture", "shows", "area",
    # scene classes
    "residential", "farmland", "forest", "river", "beach", "airport", "parking", "lot",
    "industrial", "meadow", "harbor", "desert", "lake", "mountain", "bridge", "stadium",
    "school", "park", "commercial", "urban", "rural", "highway", "railway", "station",
    "port", "golf", "course", "baseball", "field", "fields", "tennis", "court", "pond",
    "island", "wetland", "grassland", "bare", "land", "dense", "sparse",
    # objects
    "buildings", "building", "trees", "tree", "cars", "car", "planes", "plane", "boats",
    "boat", "roads", "road", "runway", "houses", "house", "ships", "ship", "storage",
    "tanks", "vehicles", "water", "grass", "crops", "roofs", "pool", "sand",
    # colours
    "red", "green", "blue", "white", "gray", "brown", "yellow", "dark", "light",
    # numbers
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    # spatial words
    "near", "next", "to", "left", "right", "top", "bottom", "center", "between", "along",
    "surrounded", "by", "above", "below", "middle", "corner", "side", "across", "around",
    "far",
]

# HF "Whitespace" pre-tokenizer pattern.
WHITESPACE_SPLIT = re.compile(r"\w+|[^\w\s]+")


class WordTokenizer:
    """Word-level tokenizer matching an HF ``tokenizer.json`` with

    added tokens (specials, and ``NEWLINE`` when the vocabulary has it; matched in the raw text, never
    normalised) -> Lowercase normaliser -> Whitespace pre-tokenizer (``\\w+|[^\\w\\s]+``) -> WordPiece with whole
    words only (any word not in the vocabulary becomes ``<unk>``) -> WordPiece decoder (tokens joined by
    single spaces, so a line break decodes as `` \\n ``).
    """

    def __init__(self, tokens: Sequence[str]):
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if list(tokens).count(t) > 1})
            raise ValueError(f"duplicate vocabulary entries: {dupes}")
        if list(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError("vocabulary must start with the special tokens")
        for t in tokens[len(SPECIAL_TOKENS):]:
            if t == NEWLINE or CELL_END.fullmatch(t):
                continue
            if t.startswith("##") or t != t.lower() or WHITESPACE_SPLIT.fullmatch(t) is None:
                raise ValueError(f"not a whole lowercase pre-token: {t!r}")
        self.tokens = list(tokens)
        self.vocab = {t: i for i, t in enumerate(self.tokens)}
        self.unk_id = self.vocab[UNK]
        self.added = SPECIAL_TOKENS + ([NEWLINE] if NEWLINE in self.vocab else [])
        self._added = re.compile("|".join(re.escape(t) for t in self.added))

    @classmethod
    def default(cls) -> "WordTokenizer":
        return cls(SPECIAL_TOKENS + BASE_WORDS + RS_WORDS)

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self.vocab[token]

    def encode(self, text: str) -> List[int]:
        ids: List[int] = []
        pos = 0
        for m in self._added.finditer(text):
            ids.extend(self._encode_plain(text[pos:m.start()]))
            ids.append(self.vocab[m.group(0)])
            pos = m.end()
        ids.extend(self._encode_plain(text[pos:]))
        return ids

    def _encode_plain(self, text: str) -> List[int]:
        return [self.vocab.get(w, self.unk_id) for w in WHITESPACE_SPLIT.findall(text.lower())]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tokens[i] for i in ids)

    def tokenizer_json(self) -> dict:
        added = [
            {
                "id": self.vocab[t],
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": t in SPECIAL_TOKENS,
            }
            for t in self.added
        ]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": None,
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
            "model": {
                "type": "WordPiece",
                "unk_token": UNK,
                "continuing_subword_prefix": "##",
                "max_input_chars_per_word": 100,
                "vocab": dict(self.vocab),
            },
        }

    @staticmethod
    def tokenizer_config_json(model_max_length: int = 256) -> dict:
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": PAD,
            "unk_token": UNK,
            "model_max_length": model_max_length,
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
        }


def render_prompt(prompt: str, images: int = 1) -> str:
    """``CHAT_TEMPLATE`` rendered for one user turn holding ``images`` images, then ``prompt``."""
    return f"{BOS}USER: " + f"{IMAGE} " * images + f"{prompt} ASSISTANT:"


def expand_image_tokens(ids: Sequence[int], image_token_index: int, image_seq_length: int) -> List[int]:
    out: List[int] = []
    for i in ids:
        out.extend([i] * image_seq_length if i == image_token_index else [i])
    return out


# ----------------------------------------------------------------------------------------------
# Images: tiny PNG codec (8-bit RGB) and CLIP-style preprocessing
# ----------------------------------------------------------------------------------------------


def encode_png_rgb(pixels: Sequence[Sequence[Tuple[int, int, int]]]) -> bytes:
    """Encode rows of (r, g, b) bytes as an 8-bit RGB PNG (filter 0 on every row)."""
    height, width = len(pixels), len(pixels[0])
    raw = bytearray()
    for row in pixels:
        assert len(row) == width
        raw.append(0)
        for r, g, b in row:
            raw.extend((r, g, b))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def decode_png_rgb(data: bytes) -> Tuple[int, int, bytes]:
    """Decode a non-interlaced 8-bit RGB PNG into (width, height, row-major RGB bytes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.extend(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, color, _, _, interlace = header
    if (depth, color, interlace) != (8, 2, 0):
        raise ValueError("only non-interlaced 8-bit RGB PNGs are supported")
    raw, bpp, stride = zlib.decompress(bytes(idat)), 3, width * 3
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
            elif ftype != 0:
                raise ValueError(f"bad PNG filter {ftype}")
        out.extend(line)
        prev = line
    return width, height, bytes(out)


def pixel_values_from_png(data: bytes, cfg: LlavaConfig) -> torch.Tensor:
    """PNG bytes -> float32 [1,3,H,W] tensor: x/255, then (x - mean) / std (mean = std = 0.5).

    No resize: the image must already be ``image_size`` square (as the golden images are).
    """
    width, height, rgb = decode_png_rgb(data)
    size = cfg.vision.image_size
    if (width, height) != (size, size):
        raise ValueError(f"expected a {size}x{size} image, got {width}x{height}")
    x = torch.tensor(list(rgb), dtype=torch.float64).reshape(height, width, 3).permute(2, 0, 1)
    x = (x / 255.0 - 0.5) / 0.5
    return x.to(torch.float32).unsqueeze(0).contiguous()


def synthetic_aerial_image(kind: int, seed: int, size: int = 32) -> List[List[Tuple[int, int, int]]]:
    """Deterministic aerial-looking test pattern with noise.

    kind 0: residential block (gray road cross, red/gray roofs, green lawns)
    kind 1: farmland (green/yellow field strips cut by a diagonal blue river)
    kind 2: forest and beach (dark green canopy, sand band, blue water on the right)
    """
    import random

    rng = random.Random(seed * 7919 + kind)

    def clamp(v: float) -> int:
        return max(0, min(255, int(round(v))))

    img = []
    for y in range(size):
        row = []
        for x in range(size):
            if kind == 0:
                if 14 <= y <= 17 or 20 <= x <= 22:
                    base = (120, 120, 125)  # asphalt
                elif (x // 5 + y // 6) % 3 == 0:
                    base = (170, 60, 50)  # red roofs
                elif (x // 5 + y // 6) % 3 == 1:
                    base = (200, 200, 195)  # light roofs
                else:
                    base = (70, 140, 60)  # lawns
            elif kind == 1:
                if abs((x + y) - 30) <= 2:
                    base = (40, 80, 170)  # river
                elif (x // 8) % 2 == 0:
                    base = (90, 160, 60)  # green crop
                else:
                    base = (200, 180, 90)  # ripe crop
            else:
                if x >= 24:
                    base = (30, 90, 160)  # sea
                elif x >= 19:
                    base = (225, 205, 150)  # sand
                else:
                    base = (30, 90, 40) if (x * 3 + y * 5) % 7 else (50, 120, 50)  # canopy
            noise = rng.gauss(0.0, 10.0)
            row.append(tuple(clamp(c + noise + rng.gauss(0.0, 4.0)) for c in base))
        img.append(row)
    return img


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


class VisionEncoder(nn.Module):
    """Vision tower + projector: pixel_values [B,3,H,W] -> image_features [B,N,text_hidden]."""

    def __init__(self, cfg: LlavaConfig):
        super().__init__()
        v, d = cfg.vision, cfg.text.hidden_size
        self.patch_embed = nn.Conv2d(v.num_channels, v.hidden_size, v.patch_size, stride=v.patch_size)
        self.position_embedding = nn.Parameter(torch.randn(1, v.num_patches, v.hidden_size) * 0.02)
        self.post_layernorm = nn.LayerNorm(v.hidden_size)
        # LLaVA's multi-modal projector: Linear -> GELU -> Linear
        self.projector_in = nn.Linear(v.hidden_size, d)
        self.projector_out = nn.Linear(d, d)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values)  # [B, Cv, H/p, W/p]
        x = x.flatten(2).transpose(1, 2)  # [B, N, Cv]
        x = self.post_layernorm(x + self.position_embedding)
        return self.projector_out(F.gelu(self.projector_in(x)))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """position_ids [B,T] -> cos, sin [B,1,T,head_dim]."""
        freqs = position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq  # [B,T,hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, kvH, T, hd] -> [B, kvH * n_rep, T, hd] (each KV head serves n_rep query heads)."""
    if n_rep == 1:
        return x
    b, h, t, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


KVCache = Tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        d = cfg.hidden_size
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=True)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, allowed, past: KVCache) -> Tuple[torch.Tensor, KVCache]:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # The cache holds rotated keys, before repeat_kv.
        k = torch.cat((past[0], k), dim=2)
        v = torch.cat((past[1], v), dim=2)
        n_rep = self.n_heads // self.n_kv
        scores = torch.matmul(q, repeat_kv(k, n_rep).transpose(2, 3)) / math.sqrt(self.head_dim)
        # masked_fill (not an additive -inf mask): fully masked rows give a uniform softmax, never NaN.
        scores = scores.masked_fill(~allowed, -1e9)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, repeat_kv(v, n_rep))
        out = out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        return self.o_proj(out), (k, v)


class SwiGLU(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, cos, sin, allowed, past: KVCache) -> Tuple[torch.Tensor, KVCache]:
        h, present = self.self_attn(self.input_layernorm(x), cos, sin, allowed, past)
        x = x + h
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


def attention_allowed(attention_mask: torch.Tensor, query_len: int) -> torch.Tensor:
    """Boolean [B,1,T,S]: key j is visible from query i iff mask[b,j] == 1 and j <= past + i.

    ``attention_mask`` is [B, S] with S = past + T (T = number of new query positions).
    """
    total = attention_mask.shape[1]
    past = total - query_len
    q_pos = torch.arange(query_len, device=attention_mask.device) + past  # [T]
    k_pos = torch.arange(total, device=attention_mask.device)  # [S]
    causal = k_pos.unsqueeze(0) <= q_pos.unsqueeze(1)  # [T,S]
    keys = attention_mask.to(torch.bool)[:, None, None, :]  # [B,1,1,S]
    return keys & causal[None, None, :, :]


class TextDecoder(nn.Module):
    """Qwen2-like decoder with an explicit KV cache (one forward for prefill and decode)."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.rotary = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=True)

    def empty_cache(self, batch: int) -> List[KVCache]:
        shape = (batch, self.cfg.num_key_value_heads, 0, self.cfg.head_dim)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.layers]

    def forward(self, inputs_embeds, attention_mask, position_ids, past: Sequence[KVCache]):
        cos, sin = self.rotary(position_ids)
        allowed = attention_allowed(attention_mask, inputs_embeds.shape[1])
        x, presents = inputs_embeds, []
        for layer, layer_past in zip(self.layers, past):
            x, present = layer(x, cos, sin, allowed, layer_past)
            presents.append(present)
        return self.lm_head(self.norm(x)), presents


class TinyLlava(nn.Module):
    def __init__(self, cfg: LlavaConfig):
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.embed_tokens = nn.Embedding(cfg.text.vocab_size, cfg.text.hidden_size)
        self.decoder = TextDecoder(cfg.text)

    def merge_image_features(self, input_ids: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """Embed ``input_ids`` and put image features at the image-token positions, in order."""
        embeds = self.embed_tokens(input_ids).clone()
        for b in range(input_ids.shape[0]):
            positions = (input_ids[b] == self.cfg.image_token_index).nonzero().flatten()
            if positions.numel() != image_features.shape[1]:
                raise ValueError(f"{positions.numel()} image tokens for {image_features.shape[1]} features")
            embeds[b, positions] = image_features[b]
        return embeds


def init_tiny_weights(model: TinyLlava, *, layer_scale: float = 2.0, lm_head_std: float = 0.7,
                      feature_scale: float = 4.0, special_logit_bias: float = -6.0) -> None:
    """Rescale the default init so a random model gives varied, well-separated greedy output.

    * decoder linear layers are scaled up so attention/MLP actually mix context;
    * lm_head gets std ``lm_head_std`` (logits std ~ lm_head_std * sqrt(hidden));
    * the projector output is scaled so image features are comparable to token embeddings;
    * special tokens (pad, bos, eos, unk, image) get a negative logit bias so greedy decoding
      rarely picks them (EOS stays possible, just unlikely).
    """
    with torch.no_grad():
        for layer in model.decoder.layers:
            for lin in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                        layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                lin.weight.mul_(layer_scale)
        model.decoder.lm_head.weight.normal_(0.0, lm_head_std)
        model.decoder.lm_head.bias.zero_()
        model.decoder.lm_head.bias[: len(SPECIAL_TOKENS)] = special_logit_bias
        model.vision.projector_out.weight.mul_(feature_scale)


def set_deterministic(seed: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def build_model(vocab_size: int, seed: int, **init_kwargs) -> TinyLlava:
    set_deterministic(seed)
    cfg = LlavaConfig(text=TextConfig(vocab_size=vocab_size))
    model = TinyLlava(cfg)
    init_tiny_weights(model, **init_kwargs)
    return model.eval()


# ----------------------------------------------------------------------------------------------
# ONNX export
# ----------------------------------------------------------------------------------------------


class _EmbedExport(nn.Module):
    def __init__(self, model: TinyLlava):
        super().__init__()
        self.embed_tokens = model.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


class _DecoderExport(nn.Module):
    """Flat-argument wrapper: (embeds, mask, position_ids, k0, v0, k1, v1, ...) -> (logits, k0, v0, ...)."""

    def __init__(self, model: TinyLlava):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, inputs_embeds, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, presents = self.decoder(inputs_embeds, attention_mask, position_ids, past)
        return (logits, *[t for kv in presents for t in kv])


def decoder_io_names(num_layers: int) -> Tuple[List[str], List[str]]:
    inputs = ["inputs_embeds", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(num_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs, outputs


def export_onnx(model: TinyLlava, onnx_dir: str, opset: int = 14) -> Dict[str, str]:
    """Export the three graphs; returns {name: path}. Traces with batch 2 and a non-empty past."""
    import onnx

    os.makedirs(onnx_dir, exist_ok=True)
    cfg = model.cfg
    t = cfg.text
    paths = {
        "vision_encoder": os.path.join(onnx_dir, "vision_encoder.onnx"),
        "embed_tokens": os.path.join(onnx_dir, "embed_tokens.onnx"),
        "decoder_model_merged": os.path.join(onnx_dir, "decoder_model_merged.onnx"),
    }
    common = dict(opset_version=opset, do_constant_folding=True, export_params=True)
    batch, seq, past_len = 2, 5, 3
    size = cfg.vision.image_size

    with torch.no_grad():
        torch.onnx.export(
            model.vision, (torch.zeros(batch, cfg.vision.num_channels, size, size),),
            paths["vision_encoder"], input_names=["pixel_values"], output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "batch"}, "image_features": {0: "batch"}}, **common)

        torch.onnx.export(
            _EmbedExport(model), (torch.ones(batch, seq, dtype=torch.int64),),
            paths["embed_tokens"], input_names=["input_ids"], output_names=["inputs_embeds"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "inputs_embeds": {0: "batch", 1: "seq"}},
            **common)

        in_names, out_names = decoder_io_names(t.num_hidden_layers)
        past_flat = [torch.randn(batch, t.num_key_value_heads, past_len, t.head_dim)
                     for _ in range(2 * t.num_hidden_layers)]
        args = (
            torch.randn(batch, seq, t.hidden_size),
            torch.ones(batch, past_len + seq, dtype=torch.int64),
            torch.arange(past_len, past_len + seq, dtype=torch.int64).repeat(batch, 1),
            *past_flat,
        )
        dyn = {
            "inputs_embeds": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "total_seq"},
            "position_ids": {0: "batch", 1: "seq"},
            "logits": {0: "batch", 1: "seq"},
        }
        for name in in_names[3:]:
            dyn[name] = {0: "batch", 2: "past_seq"}
        for name in out_names[1:]:
            dyn[name] = {0: "batch", 2: "total_seq"}
        torch.onnx.export(_DecoderExport(model), args, paths["decoder_model_merged"],
                          input_names=in_names, output_names=out_names, dynamic_axes=dyn, **common)

    # The tracer's shape inference loses the (static) patch count; state it in the graph output.
    _set_output_shape(paths["vision_encoder"], "image_features", ["batch", cfg.image_seq_length, t.hidden_size])
    for path in paths.values():
        onnx.checker.check_model(onnx.load(path))
    return paths


def _set_output_shape(path: str, output: str, dims: Sequence) -> None:
    import onnx

    model = onnx.load(path)
    (value,) = [o for o in model.graph.output if o.name == output]
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, int):
            dim.dim_value = d
        else:
            dim.dim_param = d
    onnx.save(model, path)


# ----------------------------------------------------------------------------------------------
# Goldens: the real incremental greedy loop (exactly what a runtime does with the ONNX graphs)
# ----------------------------------------------------------------------------------------------


@dataclass
class GreedyResult:
    tokens: List[int]
    first_step_logits: torch.Tensor  # [V], logits at the last prompt position of the prefill
    min_gap: float  # smallest top1 - top2 logit gap along the path


def top2_gap(logits: torch.Tensor) -> float:
    top = torch.topk(logits.to(torch.float64), 2).values
    return float(top[0] - top[1])


@torch.no_grad()
def greedy_generate(model: TinyLlava, input_ids: torch.Tensor, pixel_values: torch.Tensor,
                    max_new_tokens: int, stop_at_eos: bool = True) -> GreedyResult:
    """Batch-1 greedy decoding: prefill with an empty past, then one token per step feeding
    present -> past, attention_mask grown by one and position ids continuing."""
    assert input_ids.shape[0] == 1
    features = model.vision(pixel_values)
    embeds = model.merge_image_features(input_ids, features)
    prompt_len = input_ids.shape[1]
    mask = torch.ones(1, prompt_len, dtype=torch.int64)
    positions = torch.arange(prompt_len, dtype=torch.int64).unsqueeze(0)
    logits, past = model.decoder(embeds, mask, positions, model.decoder.empty_cache(1))
    step_logits = logits[0, -1]
    first = step_logits.clone()
    tokens, gaps = [], []
    while True:
        gaps.append(top2_gap(step_logits))
        token = int(torch.argmax(step_logits))
        tokens.append(token)
        if len(tokens) == max_new_tokens or (stop_at_eos and token == model.cfg.eos_token_id):
            break
        embeds = model.embed_tokens(torch.tensor([[token]], dtype=torch.int64))
        mask = torch.cat((mask, torch.ones(1, 1, dtype=torch.int64)), dim=1)
        positions = positions[:, -1:] + 1
        logits, past = model.decoder(embeds, mask, positions, past)
        step_logits = logits[0, -1]
    return GreedyResult(tokens=tokens, first_step_logits=first, min_gap=min(gaps))


def f32_list(t: torch.Tensor) -> List[float]:
    """Float32 values as the shortest decimal that round-trips to the same float32."""
    import numpy as np

    values = t.detach().to(torch.float32).flatten().numpy()
    return [float(np.format_float_positional(v, unique=True, trim="-")) for v in values]


def write_json(path: str, obj, compact: bool = False) -> None:
    with open(path, "w", encoding="utf-8") as f:
        if compact:
            json.dump(obj, f, separators=(",", ":"), ensure_ascii=False)
        else:
            json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
