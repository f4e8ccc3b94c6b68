# Run with a Python environment holding torch>=2, transformers>=5, onnx, onnxruntime, numpy, pillow, e.g.
#   python3 -m venv /tmp/venv-bigvocab
#   /tmp/venv-bigvocab/bin/pip install --index-url file:///opt/pypi/simple --find-links /opt/wheels \
#       torch transformers onnx onnxruntime numpy pillow
#   /tmp/venv-bigvocab/bin/python tools/train/make_big_vocab_fixture.py [--out models/fixtures/big-vocab-llava]
# (not Debian's /usr/bin/python3: its torch 1.13 / transformers cannot build LLaVA-OneVision). CI never runs it.
"""make_big_vocab_fixture.py - builds models/fixtures/big-vocab-llava/.

A RANDOM-WEIGHT LLaVA-OneVision model (transformers' own SigLIP + projector + Qwen2 classes) with the real Qwen2
vocabulary size, 151,936 rows, and a toy hidden size of 8, in the onnx-community / transformers.js layout of
models/fixtures/hf-reference/llava-onevision-tiny (same tokenizer, chat template and image processing). It exists
to measure memory: full-sequence logits of an 800-token prompt would be 800 x 151,936 x 4 bytes = 486 MB, so a
runtime that keeps only the last position's logits (the decoder's `num_logits_to_keep` input) stays at B x V.

Graphs (onnx/):
  vision_encoder.onnx        pixel_values f32 [crops,3,32,32] -> image_features f32 [crops,10,8]
                             (rows 0-8: projected patch features, row 9: image_newline; as in hf-reference)
  embed_tokens.onnx          input_ids i64 [batch,seq] -> inputs_embeds f32 [batch,seq,8]
                             (float16 table, Gather then Cast: float32 output)
  decoder_model_merged.onnx  inputs_embeds f32 [batch,seq,8], attention_mask i64 [batch,past+seq],
                             position_ids i64 [batch,seq], past_key_values.{0,1}.{key,value} f32 [batch,1,past,4],
                             num_logits_to_keep i64 scalar
                             -> logits f32 [batch,kept,151936], present.{0,1}.{key,value} f32 [batch,1,past+seq,4]
                             logits are computed for the last num_logits_to_keep positions only (hidden states are
                             sliced before lm_head, transformers' `logits_to_keep`); 0 keeps every position.
The tied embedding / lm_head matrix is stored as float16 (it is 99% of the bytes); everything else, all graph
inputs/outputs and all compute are float32. The torch reference uses the same float16-rounded matrix, so ONNX and
torch agree to float32 noise. No model.safetensors is written: the seed rebuilds the weights.
Deterministic: two runs give byte-identical files.
"""
import argparse
import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from torch import nn
from transformers import (
    DynamicCache,
    GenerationConfig,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    Qwen2Config,
    SiglipVisionConfig,
)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SOURCE = os.path.join(REPO, "models/fixtures/hf-reference/llava-onevision-tiny")
# Files taken unchanged from the hf-reference model: same tokenizer, template and image processing.
COPIED = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json",
          "preprocessor_config.json", "generation_config.json"]
SEED = 151936
VOCAB = 151936              # Qwen2's embedding rows (the real tokenizer has 151,646 tokens; ids beyond ours have none)
HIDDEN, LAYERS, HEADS, KV_HEADS, INTERMEDIATE = 8, 2, 2, 1, 16
INIT_STD = 0.2              # as hf-reference: varied greedy output from a random tiny decoder
IMG, PATCH, N_IMG = 32, 10, 9
PINS = [[32, 32], [32, 64], [64, 32], [64, 64], [64, 96], [96, 64], [96, 96], [96, 128], [128, 96], [128, 128]]
OPSET = 18
PROMPT_TOKENS, DECODE_STEPS = 800, 32


def build_model(ids):
    torch.manual_seed(SEED)
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                image_size=IMG, patch_size=PATCH, vision_use_head=False)
    text = Qwen2Config(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=4096,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                       bos_token_id=ids["bos"], eos_token_id=ids["eos"], tie_word_embeddings=True,
                       initializer_range=INIT_STD)
    cfg = LlavaOnevisionConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                               image_token_index=ids["image"], video_token_index=ids["video"],
                               vision_feature_select_strategy="full", vision_feature_layer=-1,
                               vision_aspect_ratio="anyres_max_9", image_grid_pinpoints=PINS,
                               tie_word_embeddings=True)
    cfg._attn_implementation = "eager"
    model = LlavaOnevisionForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        emb = model.model.language_model.embed_tokens.weight
        emb.copy_(emb.half().float())       # what the float16 table in the ONNX files holds
    assert model.lm_head.weight.data_ptr() == emb.data_ptr(), "lm_head must be tied to embed_tokens"
    model.generation_config = GenerationConfig(bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                                               pad_token_id=ids["bos"])
    return model


def export(module, args, path, names_in, names_out, dyn):
    with torch.no_grad():
        torch.onnx.export(module, args, path, input_names=names_in, output_names=names_out, dynamic_axes=dyn,
                          opset_version=OPSET, dynamo=False)


class Vision(nn.Module):
    """pixel_values[crops,3,32,32] -> image_features[crops,10,H]: 9 projected patch features + image_newline."""

    def __init__(s, core):
        super().__init__()
        s.tower, s.proj, s.nl = core.vision_tower, core.multi_modal_projector, core.image_newline

    def forward(s, pixel_values):
        h = s.tower(pixel_values, output_hidden_states=True).hidden_states[-1]
        f = s.proj(h)
        return torch.cat([f, s.nl[None, None, :].expand(f.shape[0], 1, f.shape[2])], dim=1)


class DecoderBody(nn.Module):
    """inputs_embeds, attention_mask, position_ids, past_key_values.* -> last_hidden_state (after the final norm),
    present.*. lm_head and num_logits_to_keep are added to the ONNX graph afterwards."""

    def __init__(s, lm, tc):
        super().__init__()
        s.lm, s.tc = lm, tc

    def forward(s, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache(config=s.tc)
        for i in range(LAYERS):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = s.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                   past_key_values=cache, use_cache=True)
        flat = []
        for i in range(LAYERS):
            lay = out.past_key_values.layers[i]
            flat += [lay.keys, lay.values]
        return (out.last_hidden_state, *flat)


def fp16_table(model):
    return model.model.language_model.embed_tokens.weight.detach().numpy().astype(np.float16)


def write_embed_tokens(path, table):
    """Gather on the float16 table, then Cast: float32 out, as onnx-community's keep_io_types fp16 files."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embed_tokens.weight", "input_ids"], ["embeds_fp16"], axis=0),
         helper.make_node("Cast", ["embeds_fp16"], ["inputs_embeds"], to=TensorProto.FLOAT)],
        "embed_tokens",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])],
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT,
                                       ["batch_size", "sequence_length", HIDDEN])],
        [numpy_helper.from_array(table, "embed_tokens.weight")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                          producer_name="make_big_vocab_fixture")
    onnx.checker.check_model(m)
    onnx.save(m, path)


def add_lm_head(path, table):
    """Appends num_logits_to_keep -> Slice(last_hidden_state, -n:) -> MatMul(Cast(W^T fp16)) -> logits.
    Slice start -0 = 0 keeps every position, exactly transformers' `hidden_states[:, -logits_to_keep:, :]`."""
    m = onnx.load(path)
    g = m.graph
    hidden = g.output[0]
    assert hidden.name == "last_hidden_state"
    g.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(table.T), "lm_head.weight_transposed"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "logits_slice_ends"),
        numpy_helper.from_array(np.array([1], np.int64), "logits_slice_axes"),
        numpy_helper.from_array(np.array([0], np.int64), "logits_unsqueeze_axes"),
    ])
    g.node.extend([
        helper.make_node("Neg", ["num_logits_to_keep"], ["logits_slice_start"]),
        helper.make_node("Unsqueeze", ["logits_slice_start", "logits_unsqueeze_axes"], ["logits_slice_starts"]),
        helper.make_node("Slice", ["last_hidden_state", "logits_slice_starts", "logits_slice_ends",
                                   "logits_slice_axes"], ["kept_hidden_state"]),
        helper.make_node("Cast", ["lm_head.weight_transposed"], ["lm_head.weight_float"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["kept_hidden_state", "lm_head.weight_float"], ["logits"]),
    ])
    g.input.append(helper.make_tensor_value_info("num_logits_to_keep", TensorProto.INT64, []))
    presents = list(g.output)[1:]
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                  ["batch_size", "num_logits", VOCAB]))
    g.output.extend(presents)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def export_graphs(folder, model):
    os.makedirs(f"{folder}/onnx", exist_ok=True)
    core = model.model
    tc = model.config.text_config
    export(Vision(core), (torch.zeros(2, 3, IMG, IMG),), f"{folder}/onnx/vision_encoder.onnx", ["pixel_values"],
           ["image_features"], {"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}})
    table = fp16_table(model)
    write_embed_tokens(f"{folder}/onnx/embed_tokens.onnx", table)
    d = HIDDEN // HEADS
    B, T, P = 2, 5, 3
    names_in = ["inputs_embeds", "attention_mask", "position_ids"] + \
        [f"past_key_values.{i}.{k}" for i in range(LAYERS) for k in ("key", "value")]
    names_out = ["last_hidden_state"] + [f"present.{i}.{k}" for i in range(LAYERS) for k in ("key", "value")]
    dyn = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "last_hidden_state": {0: "batch_size", 1: "sequence_length"}}
    for n in names_in[3:]:
        dyn[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in names_out[1:]:
        dyn[n] = {0: "batch_size", 2: "total_sequence_length"}
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(B, T, HIDDEN, generator=g), torch.ones(B, P + T, dtype=torch.int64),
            torch.arange(P, P + T).repeat(B, 1), *[torch.randn(B, KV_HEADS, P, d, generator=g) for _ in range(2 * LAYERS)])
    path = f"{folder}/onnx/decoder_model_merged.onnx"
    export(DecoderBody(core.language_model, tc), args, path, names_in, names_out, dyn)
    add_lm_head(path, table)


# ---------------------------------------------------------------------------------------------- checks
def session(folder, name):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(f"{folder}/onnx/{name}.onnx", so, providers=["CPUExecutionProvider"])


def empty_past(batch):
    d = HIDDEN // HEADS
    return {f"past_key_values.{i}.{k}": np.zeros((batch, KV_HEADS, 0, d), np.float32)
            for i in range(LAYERS) for k in ("key", "value")}


def pixel_crops(png):
    """A 32x32 image: anyres gives 2 crops, both the image itself ((v/255 - 0.5)/0.5, no resize needed)."""
    px = np.asarray(Image.open(png).convert("RGB"), np.float32)
    assert px.shape == (IMG, IMG, 3), "the check uses a base-size image"
    px = ((px / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    return np.stack([px, px])


def pack_32(feats):
    """ov_pack of hf-reference for a 32x32 single image: base 9 rows, then the 3x3 grid with a newline per row."""
    base, grid, newline = feats[0, :N_IMG], feats[1, :N_IMG].reshape(3, 3, -1), feats[0, N_IMG]
    rows = [np.concatenate([grid[r], newline[None]], 0) for r in range(3)]
    return np.concatenate([base, *rows], 0)      # 21 x H


def prompt_ids(tok, ids, image_tokens):
    """`<|im_start|>user\\n<image>\\nthe the ...<|im_end|>\\n<|im_start|>assistant\\n`, image token expanded, with
    as many 'the' (one token each) as make exactly PROMPT_TOKENS ids."""
    def encode(words):
        text = "<|im_start|>user\n<image>\n" + " ".join(["the"] * words) + "<|im_end|>\n<|im_start|>assistant\n"
        out = []
        for t in tok.encode(text).ids:
            out += [ids["image"]] * image_tokens if t == ids["image"] else [t]
        return out
    words = 1
    while len(encode(words)) < PROMPT_TOKENS:
        words += PROMPT_TOKENS - len(encode(words))
    seq = encode(words)
    assert len(seq) == PROMPT_TOKENS, len(seq)
    return np.array([seq], np.int64)


def check(folder, model, ids):
    from tokenizers import Tokenizer
    vis, emb, dec = (session(folder, n) for n in ("vision_encoder", "embed_tokens", "decoder_model_merged"))
    assert {i.name for i in dec.get_inputs()} >= {"num_logits_to_keep"}
    core = model.model
    # vision encoder vs torch
    crops = pixel_crops(f"{SOURCE}/images/airport_32.png")
    feats = vis.run(None, {"pixel_values": crops})[0]
    with torch.no_grad():
        ref = Vision(core)(torch.from_numpy(crops)).numpy()
    vision_diff = float(np.abs(feats - ref).max())
    # prompt: 800 ids with the 21 image rows scattered in
    tok = Tokenizer.from_file(f"{folder}/tokenizer.json")
    packed = pack_32(feats)
    input_ids = prompt_ids(tok, ids, packed.shape[0])
    embeds = emb.run(None, {"input_ids": input_ids})[0]
    embeds[0, input_ids[0] == ids["image"]] = packed
    T = input_ids.shape[1]
    mask = np.ones((1, T), np.int64)
    feeds = {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": np.arange(T, dtype=np.int64)[None],
             **empty_past(1)}
    # num_logits_to_keep = 0 (all positions) vs 1 (last only): same last row, and torch agrees
    full = dec.run(None, {**feeds, "num_logits_to_keep": np.array(0, np.int64)})
    outs = dec.run(None, {**feeds, "num_logits_to_keep": np.array(1, np.int64)})
    assert full[0].shape == (1, T, VOCAB) and outs[0].shape == (1, 1, VOCAB), (full[0].shape, outs[0].shape)
    keep_diff = float(np.abs(full[0][:, -1:] - outs[0]).max())
    with torch.no_grad():
        lm = core.language_model(inputs_embeds=torch.from_numpy(embeds), attention_mask=torch.from_numpy(mask),
                                 position_ids=torch.from_numpy(feeds["position_ids"]), use_cache=False)
        torch_logits = model.lm_head(lm.last_hidden_state).numpy()
    prefill_diff = float(np.abs(torch_logits - full[0]).max())
    del full
    # 32 greedy decode steps with num_logits_to_keep = 1, against torch's greedy loop without cache
    tokens = []
    seq_embeds = torch.from_numpy(embeds)
    for step in range(DECODE_STEPS):
        nxt = int(outs[0][0, -1].argmax())
        tokens.append(nxt)
        step_ids = np.array([[nxt]], np.int64)
        step_embeds = emb.run(None, {"input_ids": step_ids})[0]
        seq_embeds = torch.cat([seq_embeds, torch.from_numpy(step_embeds)], 1)
        mask = np.ones((1, T + step + 1), np.int64)
        feeds = {"inputs_embeds": step_embeds, "attention_mask": mask,
                 "position_ids": np.array([[T + step]], np.int64), "num_logits_to_keep": np.array(1, np.int64)}
        for i in range(LAYERS):
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = outs[1 + 2 * i], outs[2 + 2 * i]
        outs = dec.run(None, feeds)
        assert outs[0].shape == (1, 1, VOCAB)
        assert outs[1].shape[2] == T + step + 1
    with torch.no_grad():
        lm = core.language_model(inputs_embeds=seq_embeds[:, :-1], use_cache=False,
                                 position_ids=torch.arange(T + DECODE_STEPS - 1)[None])
        torch_tokens = model.lm_head(lm.last_hidden_state[:, T - 1:]).argmax(-1)[0].tolist()
    assert ids["eos"] not in tokens, "the benchmark wants 32 tokens without EOS: change SEED"
    report = {"visionMaxAbsDiff": vision_diff, "prefillLogitsMaxAbsDiffVsTorch": prefill_diff,
              "keepOneVsAllLastRowMaxAbsDiff": keep_diff, "promptTokens": T, "imageTokens": int(packed.shape[0]),
              "decodeSteps": DECODE_STEPS, "greedyTokens": tokens, "torchGreedyTokens": torch_tokens,
              "sameGreedyTokens": tokens == torch_tokens, "distinctTokens": len(set(tokens))}
    assert vision_diff < 1e-4 and prefill_diff < 1e-4 and keep_diff < 1e-5 and tokens == torch_tokens, report
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "models/fixtures/big-vocab-llava"))
    out = ap.parse_args().out
    src_cfg = json.load(open(f"{SOURCE}/config.json"))
    ids = {"image": src_cfg["image_token_index"], "video": src_cfg["video_token_index"],
           "bos": src_cfg["text_config"]["bos_token_id"], "eos": src_cfg["text_config"]["eos_token_id"]}
    shutil.rmtree(f"{out}/onnx", ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    for f in COPIED:
        shutil.copyfile(f"{SOURCE}/{f}", f"{out}/{f}")
    model = build_model(ids)
    model.config.architectures = [type(model).__name__]     # what model.save_pretrained would write
    model.config.dtype = torch.float32
    model.config.save_pretrained(out)        # config.json only: the weights live in the ONNX files (see the docstring)
    export_graphs(out, model)
    report = check(out, model, ids)
    print(json.dumps(report))
    sizes = {f"onnx/{f}": os.path.getsize(f"{out}/onnx/{f}") for f in sorted(os.listdir(f"{out}/onnx"))}
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(json.dumps({"bytes": sizes, "totalBytes": total}))


if __name__ == "__main__":
    main()
