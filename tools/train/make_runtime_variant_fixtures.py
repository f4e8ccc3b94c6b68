"""Makes two small fixtures the runtime tests need from models/fixtures/hf-reference/llava-onevision-tiny:

- models/fixtures/variants/fp16-io/onnx/*_fp16.onnx: float16 graphs whose inputs and outputs are float16 too
  (keep_io_types=False), as some onnx-community repos ship them; the runtime must convert at the edges.
- models/fixtures/variants/decoder-dtypes/onnx/decoder_model_merged_{q4,bnb4,int8,uint8}.onnx: the decoder in the
  precision variants the hf-reference fixture does not carry, made as transformers.js' scripts/quantize.py makes them
  (q4: MatMulNBits 4-bit, block 32, float32 elsewhere; bnb4: MatMulBnb4 nf4; int8/uint8: dynamic 8-bit weights).
- models/fixtures/variants/external-data/onnx/vision_encoder.onnx + vision_encoder.onnx_data: the fp32 vision
  encoder with its weights in an external data file, for the encoder-identity test.

Run with any Python that has onnx and onnxruntime (e.g. tools/export/setup-venv.sh's venv):
  python tools/train/make_runtime_variant_fixtures.py
"""
import os

import onnx
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SOURCE = os.path.join(ROOT, "models/fixtures/hf-reference/llava-onevision-tiny/onnx")
OUT = os.path.join(ROOT, "models/fixtures/variants")


def main():
    fp16 = os.path.join(OUT, "fp16-io/onnx")
    os.makedirs(fp16, exist_ok=True)
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | {"Resize", "RandomNormalLike"})
    for graph in ("vision_encoder", "embed_tokens", "decoder_model_merged"):
        model = convert_float_to_float16(onnx.load(f"{SOURCE}/{graph}.onnx"), keep_io_types=False, op_block_list=block)
        onnx.save(model, f"{fp16}/{graph}_fp16.onnx")
    dtypes = os.path.join(OUT, "decoder-dtypes/onnx")
    os.makedirs(dtypes, exist_ok=True)
    decoder = f"{SOURCE}/decoder_model_merged.onnx"
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    q4 = MatMulNBitsQuantizer(onnx.load(decoder), block_size=32, is_symmetric=True)
    q4.process()
    onnx.save(q4.model.model, f"{dtypes}/decoder_model_merged_q4.onnx")
    bnb4 = MatMulBnb4Quantizer(onnx.load(decoder), quant_type=MatMulBnb4Quantizer.NF4, block_size=32)
    bnb4.process()
    onnx.save(bnb4.model.model, f"{dtypes}/decoder_model_merged_bnb4.onnx")
    for name, weight_type in (("int8", QuantType.QInt8), ("uint8", QuantType.QUInt8)):
        quantize_dynamic(decoder, f"{dtypes}/decoder_model_merged_{name}.onnx", weight_type=weight_type,
                         extra_options={"MatMulConstBOnly": True})
    external = os.path.join(OUT, "external-data/onnx")
    os.makedirs(external, exist_ok=True)
    model = onnx.load(f"{SOURCE}/vision_encoder.onnx")
    onnx.save_model(model, f"{external}/vision_encoder.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="vision_encoder.onnx_data", size_threshold=0)


if __name__ == "__main__":
    main()
