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
* ``AuxHeads``: training-only scene-graph heads (scene class, object presence, log counts) that help
  the encoder learn to perceive in stage 1; never exported except the scene head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

import tiny_llava as tl
from demo_data import SCENE_CLASSES

IMAGE_SIZE = 128
GRID = 4  # image_features form a GRID x GRID token grid
FIRST_IMAGE_POSITION = 3  # "<bos> user :" precede the image tokens in the rendered chat prompt


@dataclass
class DemoSizes:
    hidden_size: int = 128
    intermediate_size: int = 256
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    connector_layers: int = 1
    causal_layers: int = 2
    encoder_channels: Sequence[int] = (32, 64, 128)

    def text_config(self, vocab_size: int) -> tl.TextConfig:
        return tl.TextConfig(
            vocab_size=vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.connector_layers + self.causal_layers,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
            head_dim=self.hidden_size // self.num_attention_heads, max_position_embeddings=256)


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class ConvVisionEncoder(nn.Module):
    def __init__(self, hidden_size: int, channels: Sequence[int]):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=4, bias=False), nn.BatchNorm2d(c1), nn.GELU(),  # 32x32
            conv_block(c1, c2, 2), conv_block(c2, c2, 1),  # 16x16
            conv_block(c2, c3, 2), conv_block(c3, c3, 1),  # 8x8
            conv_block(c3, c3, 2),  # 4x4
        )
        self.position_embedding = nn.Parameter(torch.randn(1, GRID * GRID, c3) * 0.02)
        self.post_layernorm = nn.LayerNorm(c3)
        self.projector_in = nn.Linear(c3, hidden_size)
        self.projector_out = nn.Linear(hidden_size, hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.features(pixel_values).flatten(2).transpose(1, 2)  # [B,16,C]
        x = self.post_layernorm(x + self.position_embedding)
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


class ConnectorDecoder(tl.TextDecoder):
    """tiny_llava's decoder whose first ``connector_layers`` layers use ``connector_allowed``."""

    def __init__(self, cfg: tl.TextConfig, connector_layers: int):
        super().__init__(cfg)
        self.connector_layers = connector_layers

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


class ExpertDecoder(nn.Module):
    """One expert (or the stage-1 dense decoder): token embeddings + connector decoder."""

    def __init__(self, vocab_size: int, sizes: DemoSizes):
        super().__init__()
        self.text_config = sizes.text_config(vocab_size)
        self.embed_tokens = nn.Embedding(vocab_size, sizes.hidden_size)
        self.decoder = ConnectorDecoder(self.text_config, sizes.connector_layers)

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

    def __init__(self, encoder: ConvVisionEncoder, expert: ExpertDecoder, encoder_channels: int):
        super().__init__()
        vision = tl.VisionConfig(image_size=IMAGE_SIZE, patch_size=IMAGE_SIZE // GRID, hidden_size=encoder_channels)
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
    """Stage-1 training signal from the scene graphs: presence logits and log(1 + count) per object class."""

    def __init__(self, hidden_size: int, num_objects: int):
        super().__init__()
        self.presence = nn.Linear(GRID * GRID * hidden_size, num_objects)
        self.log_count = nn.Linear(GRID * GRID * hidden_size, num_objects)

    def loss(self, image_features: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        flat = image_features.flatten(1)
        present = (counts > 0).to(torch.float32)
        return (F.binary_cross_entropy_with_logits(self.presence(flat), present)
                + F.smooth_l1_loss(self.log_count(flat), torch.log1p(counts.to(torch.float32))))


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
