"""Torch wrappers around transformers' VLM modules and their ONNX export, in the onnx-community / transformers.js
graph layout (same graphs as shared/models/hf-reference/make_reference.py makes)."""
import os
import shutil
import tempfile
import warnings

import onnx
import torch
from torch import nn
from transformers import DynamicCache

OPSET = 18
# protobuf cannot hold a message over 2 GiB: larger graphs keep their weights in `<graph>.onnx_data`
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def initializer_bytes(model):
    return sum(len(t.raw_data) for t in model.graph.initializer)


def external_data_name(path):
    return os.path.basename(path) + "_data"


def save_graph(model, path):
    """One self-contained file, or the graph plus ONE external data file `<name>.onnx_data` (transformers.js'
    naming) when the weights are too large for protobuf."""
    data = path + "_data"
    if os.path.exists(data):
        os.remove(data)
    if initializer_bytes(model) < EXTERNAL_DATA_THRESHOLD:
        onnx.save(model, path)
    else:
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=external_data_name(path), size_threshold=1024)


def export(module, args, path, names_in, names_out, dynamic_axes):
    # torch writes one file per large tensor next to the graph: export into scratch space, then save cleanly
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as scratch:
        raw = os.path.join(scratch, "graph.onnx")
        # the tracer warns about Python branches in transformers' cache and mask code; verify.py checks the graphs
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module, args, raw, input_names=names_in, output_names=names_out,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
        save_graph(onnx.load(raw), path)


def head_dim(text_config):
    return getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads


class EmbedTokens(nn.Module):
    def __init__(self, embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, input_ids):
        return self.embedding(input_ids)


class MergedDecoder(nn.Module):
    """inputs_embeds, attention_mask, position_ids, past_key_values.* -> logits, present.*
    One graph for prefill (past of length 0) and decode steps."""

    def __init__(self, language_model, lm_head, text_config):
        super().__init__()
        self.language_model, self.lm_head, self.text_config = language_model, lm_head, text_config

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        layers = self.text_config.num_hidden_layers
        cache = DynamicCache(config=self.text_config)
        for i in range(layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, past_key_values=cache, use_cache=True)
        present = []
        for i in range(layers):
            layer = out.past_key_values.layers[i]
            present += [layer.keys, layer.values]
        return (self.lm_head(out.last_hidden_state), *present)


def export_text_graphs(onnx_dir, language_model, lm_head, text_config):
    """embed_tokens.onnx and decoder_model_merged.onnx."""
    layers, kv_heads, d = text_config.num_hidden_layers, text_config.num_key_value_heads, head_dim(text_config)
    batch, seq, past = 2, 5, 3
    export(EmbedTokens(language_model.embed_tokens), (torch.ones(batch, seq, dtype=torch.int64),),
           f"{onnx_dir}/embed_tokens.onnx", ["input_ids"], ["inputs_embeds"],
           {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "inputs_embeds": {0: "batch_size", 1: "sequence_length"}})
    names_in = ["inputs_embeds", "attention_mask", "position_ids"] + \
        [f"past_key_values.{i}.{k}" for i in range(layers) for k in ("key", "value")]
    names_out = ["logits"] + [f"present.{i}.{k}" for i in range(layers) for k in ("key", "value")]
    dynamic_axes = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
                    "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
                    "position_ids": {0: "batch_size", 1: "sequence_length"},
                    "logits": {0: "batch_size", 1: "sequence_length"}}
    for name in names_in[3:]:
        dynamic_axes[name] = {0: "batch_size", 2: "past_sequence_length"}
    for name in names_out[1:]:
        dynamic_axes[name] = {0: "batch_size", 2: "total_sequence_length"}
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(batch, seq, text_config.hidden_size, generator=g),
            torch.ones(batch, past + seq, dtype=torch.int64),
            torch.arange(past, past + seq).repeat(batch, 1),
            *[torch.randn(batch, kv_heads, past, d, generator=g) for _ in range(2 * layers)])
    export(MergedDecoder(language_model, lm_head, text_config), args, f"{onnx_dir}/decoder_model_merged.onnx",
           names_in, names_out, dynamic_axes)


# ---------------------------------------------------------------------------------------------- LLaVA-OneVision
class OnevisionVisionEncoder(nn.Module):
    """pixel_values[crops,3,H,W] -> image_features[crops,N+1,D]: per crop the N projected features of the configured
    vision layer(s) and selection strategy (as LlavaOnevisionModel.get_image_features), then the learned image_newline
    as row N, so a runtime can pack anyres grids without another graph."""

    def __init__(self, core, config):
        super().__init__()
        self.tower, self.projector, self.newline = core.vision_tower, core.multi_modal_projector, core.image_newline
        self.layer, self.strategy = config.vision_feature_layer, config.vision_feature_select_strategy

    def forward(self, pixel_values):
        hidden = self.tower(pixel_values, output_hidden_states=True).hidden_states
        if isinstance(self.layer, int):
            selected = hidden[self.layer]
        else:
            selected = torch.cat([hidden[i] for i in self.layer], dim=-1)
        if self.strategy == "default":
            selected = selected[:, 1:]
        features = self.projector(selected)
        newline = self.newline[None, None, :].expand(features.shape[0], 1, features.shape[2])
        return torch.cat([features, newline], dim=1)


def export_onevision_vision(onnx_dir, model):
    size = model.config.vision_config.image_size
    export(OnevisionVisionEncoder(model.model, model.config), (torch.zeros(2, 3, size, size),),
           f"{onnx_dir}/vision_encoder.onnx", ["pixel_values"], ["image_features"],
           {"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}})


def export_onevision_text(onnx_dir, model):
    export_text_graphs(onnx_dir, model.model.language_model, model.lm_head, model.config.text_config)


# ---------------------------------------------------------------------------------------------- InstructBLIP
class BlipVisionEncoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vision = model.vision_model

    def forward(self, pixel_values):
        return self.vision(pixel_values=pixel_values, return_dict=True).last_hidden_state


class InstructionQFormer(nn.Module):
    """image_embeds, qformer_input_ids, qformer_attention_mask -> image_features (query outputs after
    language_projection), with the masks InstructBlipModel.get_image_features builds."""

    def __init__(self, model):
        super().__init__()
        self.qformer, self.query_tokens, self.projection = model.qformer, model.query_tokens, model.language_projection

    def forward(self, image_embeds, qformer_input_ids, qformer_attention_mask):
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        query_mask = torch.ones(queries.shape[:-1], dtype=qformer_attention_mask.dtype)
        out = self.qformer(input_ids=qformer_input_ids,
                           attention_mask=torch.cat([query_mask, qformer_attention_mask], 1),
                           query_embeds=queries, encoder_hidden_states=image_embeds,
                           encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long),
                           return_dict=True)
        return self.projection(out[0][:, :queries.shape[1], :])


def instructblip_vision_tokens(config):
    vision = config.vision_config
    return (vision.image_size // vision.patch_size) ** 2 + 1


def export_instructblip_vision(onnx_dir, model):
    size = model.config.vision_config.image_size
    export(BlipVisionEncoder(model), (torch.zeros(2, 3, size, size),), f"{onnx_dir}/vision_encoder.onnx",
           ["pixel_values"], ["image_embeds"], {"pixel_values": {0: "batch_size"}, "image_embeds": {0: "batch_size"}})


def export_instructblip_text(onnx_dir, model):
    g = torch.Generator().manual_seed(0)
    tokens, width = instructblip_vision_tokens(model.config), model.config.vision_config.hidden_size
    export(InstructionQFormer(model),
           (torch.randn(2, tokens, width, generator=g), torch.ones(2, 7, dtype=torch.int64),
            torch.ones(2, 7, dtype=torch.int64)),
           f"{onnx_dir}/qformer.onnx", ["image_embeds", "qformer_input_ids", "qformer_attention_mask"],
           ["image_features"],
           {"image_embeds": {0: "batch_size"},
            "qformer_input_ids": {0: "batch_size", 1: "qformer_sequence_length"},
            "qformer_attention_mask": {0: "batch_size", 1: "qformer_sequence_length"},
            "image_features": {0: "batch_size"}})
    lm = model.language_model
    export_text_graphs(onnx_dir, lm.model, lm.lm_head, model.config.text_config)


def copy_graph(src_dir, dst_dir, name):
    """Copies `<name>.onnx` and its external data file, byte for byte."""
    for file in (f"{name}.onnx", f"{name}.onnx_data"):
        if os.path.exists(os.path.join(src_dir, file)):
            shutil.copyfile(os.path.join(src_dir, file), os.path.join(dst_dir, file))
