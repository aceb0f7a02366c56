"""Build the hand-made test fixture models that exercise the inference protocol's datatypes.

What it does
  typed -> tests/fixtures/models/typed/
    A tabular model with iris's input and four outputs of four types, so
    that tests see what ONNX Runtime really returns for each:
         input  "input"         float32 [batch, 4]
         output "probabilities" float32 [batch, 3]  Softmax(input . W + b)
         output "class"         int64   [batch]     ArgMax of the probabilities
         output "confident"     bool    [batch]     the largest probability > 0.9
         output "label"         string  [batch]     the class's name
                                                    (ai.onnx.ml LabelEncoder)
    Not trained: W and b are hand-set so that petal length alone decides,
    as it nearly does on the real data: logits = (2.5 - petal_length) * 4,
    0, (petal_length - 5) * 4.  Petal length 1.4 gives setosa (0.988,
    confident), 4.5 versicolor (0.881, not confident), 6.0 virginica
    (0.982); 2.5 gives a tie of setosa and versicolor (0.49999 each).
    The script checks the graph with onnx.checker and writes model.json (a
    tabular-classification manifest, so the server loads and serves it).

How to run (from the repository root)
  /usr/bin/python3 models/recipes/fixtures.py

Requirements
  Debian 12's /usr/bin/python3 with python3-onnx and python3-numpy; nothing
  is downloaded, no torch.
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LABELS = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def typed():
    out_dir = os.path.join(ROOT, "tests", "fixtures", "models", "typed")
    os.makedirs(out_dir, exist_ok=True)
    W = np.zeros((4, 3), dtype=np.float32)
    W[2] = [-4.0, 0.0, 4.0]
    b = np.array([10.0, 0.0, -20.0], dtype=np.float32)
    threshold = np.array(0.9, dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "W"], ["scores"]),
        helper.make_node("Add", ["scores", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["class"], axis=1, keepdims=0),
        helper.make_node("ReduceMax", ["probabilities"], ["top"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["top", "threshold"], ["confident"]),
        helper.make_node(
            "LabelEncoder", ["class"], ["label"], domain="ai.onnx.ml",
            keys_int64s=list(range(len(LABELS))), values_strings=LABELS, default_string="unknown",
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "typed",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("class", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("confident", TensorProto.BOOL, ["batch"]),
            helper.make_tensor_value_info("label", TensorProto.STRING, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b"), numpy_helper.from_array(threshold, "threshold")],
    )
    model = helper.make_model(
        graph,
        producer_name="models/recipes/fixtures.py",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    manifest = {
        "name": "typed",
        "version": "1.0.0",
        "task": "tabular-classification",
        "description": "Test fixture with hand-set weights, not trained: iris's input; float32, int64, bool and string outputs, for the inference protocol's datatypes.",
        "onnx": {"input": "input", "output": "probabilities"},
        "features": [
            {"name": n, "description": n.replace("_", " ").capitalize(), "unit": "cm", "exclusiveMinimum": 0, "exclusiveMaximum": 30, "example": e}
            for n, e in zip(FEATURES, [5.1, 3.5, 1.4, 0.2])
        ],
        "labels": LABELS,
        "training": {"recipe": "models/recipes/fixtures.py", "weights": "hand-set, not trained: logits = (2.5 - petal_length) * 4, 0, (petal_length - 5) * 4"},
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {os.path.relpath(out_dir, ROOT)}/model.onnx and model.json")


if __name__ == "__main__":
    typed()
