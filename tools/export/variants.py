"""Precision variants with transformers.js' file suffixes, made the way its scripts/quantize.py makes them.

dtype      file suffix    what
fp32       (none)         the exported graph
fp16       _fp16          float16 weights and compute; float32 graph inputs/outputs kept (keep_io_types=True)
q4f16      _q4f16         MatMul weights 4-bit (MatMulNBits, block 32, symmetric), then the fp16 pass
q4         _q4            MatMul weights 4-bit (MatMulNBits, block 32, symmetric), everything else float32
bnb4       _bnb4          MatMul weights 4-bit NormalFloat (MatMulBnb4, block 32): onnxruntime's MatMulNBitsQuantizer
                          has no bnb4 format, its MatMulBnb4Quantizer is what transformers.js uses for bnb4
quantized  _quantized     dynamic 8-bit (MatMulInteger/ConvInteger, activations uint8): uint8 weights when the graph
                          has a Conv (the vision encoder), else int8
int8       _int8          dynamic 8-bit, int8 weights
uint8      _uint8         dynamic 8-bit, uint8 weights
"""
import logging

import onnx
from onnxruntime.quantization import QuantizationMode, QuantType
from onnxruntime.quantization.matmul_bnb4_quantizer import MatMulBnb4Quantizer
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
from onnxruntime.quantization.registry import IntegerOpsRegistry
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

from onnx_graphs import save_graph

DTYPES = ("fp32", "fp16", "q4f16", "q4", "bnb4", "quantized", "int8", "uint8")
BLOCK_SIZE = 32


def suffix(dtype):
    return "" if dtype == "fp32" else f"_{dtype}"


def to_fp16(model):
    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | {"Resize", "RandomNormalLike"})
    return convert_float_to_float16(model, keep_io_types=True, op_block_list=block)


def matmul_4bit(model):
    quantizer = MatMulNBitsQuantizer(model, block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=None)
    quantizer.process()
    return quantizer.model.model


def matmul_bnb4(model):
    quantizer = MatMulBnb4Quantizer(model, MatMulBnb4Quantizer.NF4, BLOCK_SIZE)
    quantizer.process()
    return quantizer.model.model


def dynamic_8bit(model, weight_type):
    if weight_type == "auto":
        ops = {n.op_type for n in model.graph.node}
        weight_type = "uint8" if ops & {"Conv", "GroupQueryAttention", "MultiHeadAttention"} else "int8"
    quantizer = ONNXQuantizer(model, False, False, mode=QuantizationMode.IntegerOps, static=False,
                              weight_qType=QuantType.QUInt8 if weight_type == "uint8" else QuantType.QInt8,
                              activation_qType=QuantType.QUInt8, tensors_range=None, nodes_to_quantize=[],
                              nodes_to_exclude=[], op_types_to_quantize=set(IntegerOpsRegistry.keys()),
                              extra_options=dict(EnableSubgraph=True, MatMulConstBOnly=True))
    quantizer.quantize_model()
    return quantizer.model.model


MAKERS = {
    "fp16": lambda m: to_fp16(m),
    "q4f16": lambda m: to_fp16(matmul_4bit(m)),
    "q4": matmul_4bit,
    "bnb4": matmul_bnb4,
    "quantized": lambda m: dynamic_8bit(m, "auto"),
    "int8": lambda m: dynamic_8bit(m, "int8"),
    "uint8": lambda m: dynamic_8bit(m, "uint8"),
}


def make_variants(onnx_dir, graphs, dtypes):
    """Writes `<graph><suffix>.onnx` for every graph and every dtype other than fp32."""
    # the quantizers log every node they skip at INFO on the root logger
    logging.getLogger().setLevel(logging.WARNING)
    for graph in graphs:
        for dtype in dtypes:
            if dtype == "fp32":
                continue
            # every maker edits the proto in place: start each variant from a fresh load
            source = onnx.load(f"{onnx_dir}/{graph}.onnx")
            save_graph(MAKERS[dtype](source), f"{onnx_dir}/{graph}{suffix(dtype)}.onnx")
