"""Build the toy ONNX model the inference tests run (`toy_bodymap.onnx`).

It is not trained: a 3x3x3 mean filter followed by a steep sigmoid around the normalised HU of
bone (~180 HU in the manifest's window), i.e. "probability of bone", standing in for a real
body-segmentation network with the same interface: input `ct` [1, 1, z, y, x] float32 (HU mapped
from the manifest's hu_window to 0..1), output `body_probability` of the same shape.

    pip install onnx && python3 make_toy_model.py
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LO, HI = -200.0, 1300.0
BONE_HU = 180.0
threshold = (BONE_HU - LO) / (HI - LO)
steepness = 60.0

kernel = np.full((1, 1, 3, 3, 3), 1.0 / 27.0, dtype=np.float32)
inputs = [helper.make_tensor_value_info("ct", TensorProto.FLOAT, [1, 1, "z", "y", "x"])]
outputs = [helper.make_tensor_value_info("body_probability", TensorProto.FLOAT, [1, 1, "z", "y", "x"])]
init = [
    numpy_helper.from_array(kernel, "mean_kernel"),
    numpy_helper.from_array(np.array(threshold, dtype=np.float32), "threshold"),
    numpy_helper.from_array(np.array(steepness, dtype=np.float32), "steepness"),
]
nodes = [
    helper.make_node("Conv", ["ct", "mean_kernel"], ["smoothed"], pads=[1, 1, 1, 1, 1, 1]),
    helper.make_node("Sub", ["smoothed", "threshold"], ["centred"]),
    helper.make_node("Mul", ["centred", "steepness"], ["logit"]),
    helper.make_node("Sigmoid", ["logit"], ["body_probability"]),
]
graph = helper.make_graph(nodes, "toy_bodymap", inputs, outputs, init)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="spinescreen")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "toy_bodymap.onnx")
print("wrote toy_bodymap.onnx, threshold", threshold)
