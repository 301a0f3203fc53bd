"""Regenerate model/model.onnx and model/sample.json for the iris-classifier example.

Run from the example folder:
    pip install -r training/requirements.txt && python training/train.py

Trains StandardScaler + LogisticRegression on the Iris dataset bundled with scikit-learn
(no download), converts it with skl2onnx (ZipMap disabled, so both outputs are plain tensors),
writes a one-row sample request with the expected outputs computed by onnxruntime, and then
verifies the exported artifacts.
"""
import json
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

SEED = 0
TARGET_OPSET = {"": 17, "ai.onnx.ml": 1}
EXAMPLE_DIR = Path(__file__).resolve().parent.parent
MODEL_DIR = EXAMPLE_DIR / "model"
SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]  # first Iris sample, a setosa

random.seed(SEED)
np.random.seed(SEED)


def train():
    iris = load_iris()
    X = iris.data.astype(np.float32)
    y = iris.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=y)
    pipe = Pipeline([
        ("scaler", StandardScaler()),
        ("clf", LogisticRegression(max_iter=1000, random_state=SEED)),
    ])
    pipe.fit(X_train, y_train)
    print(f"train accuracy: {pipe.score(X_train, y_train):.4f}")
    print(f"test accuracy:  {pipe.score(X_test, y_test):.4f}")
    return pipe, X_test, y_test


def export(pipe):
    onx = convert_sklearn(
        pipe,
        name="iris-classifier",
        initial_types=[("input", FloatTensorType([None, 4]))],
        final_types=None,
        options={id(pipe.named_steps["clf"]): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    # skl2onnx names the outputs output_label / output_probability: rename them.
    renames = {"output_label": "label", "output_probability": "probabilities"}
    graph = onx.graph
    for node in graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for out in graph.output:
        out.name = renames.get(out.name, out.name)
    # Pin the declared output shapes: label [N], probabilities [N, 3].
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        want = [None] if out.name == "label" else [None, 3]
        del dims[:]
        for d in want:
            dim = dims.add()
            if d is None:
                dim.dim_param = "N"
            else:
                dim.dim_value = d
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    # Deterministic metadata: no producer timestamps or library-dependent doc strings.
    onx.doc_string = ""
    onnx.checker.check_model(onx, full_check=True)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    (MODEL_DIR / "model.onnx").write_bytes(onx.SerializeToString())
    return onx


def write_sample(sess):
    x = np.array([SAMPLE_ROW], dtype=np.float32)
    label, proba = sess.run(["label", "probabilities"], {"input": x})
    sample = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": SAMPLE_ROW}],
        "expected_outputs": [
            {"name": "label", "datatype": "INT64", "shape": list(label.shape),
             "data": [int(v) for v in label.ravel()]},
            {"name": "probabilities", "datatype": "FP32", "shape": list(proba.shape),
             "data": [round(float(v), 6) for v in proba.ravel()]},
        ],
    }
    (MODEL_DIR / "sample.json").write_text(dump_sample(sample))


def dump_sample(sample):
    """JSON with one line per tensor: readable diffs, stable bytes."""
    lines = ["{"]
    keys = list(sample)
    for ki, key in enumerate(keys):
        lines.append(f"  {json.dumps(key)}: [")
        items = sample[key]
        for i, item in enumerate(items):
            lines.append("    " + json.dumps(item) + ("," if i < len(items) - 1 else ""))
        lines.append("  ]" + ("," if ki < len(keys) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


ELEM = {v: k for k, v in onnx.TensorProto.DataType.items()}


def describe(values):
    out = []
    for v in values:
        t = v.type.tensor_type
        dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
        out.append(f"{v.name}: {ELEM[t.elem_type]} {dims}")
    return out


def verify(pipe, X_test, y_test):
    """Prove the committed artifacts: signature, sample, dynamic batch, parity with sklearn."""
    path = MODEL_DIR / "model.onnx"
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print(f"model: {path.relative_to(EXAMPLE_DIR)} ({path.stat().st_size} bytes)")
    print("opset:", {o.domain or "ai.onnx": o.version for o in model.opset_import})
    for line in describe(model.graph.input):
        print("  input ", line)
    for line in describe(model.graph.output):
        print("  output", line)
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sample = json.loads((MODEL_DIR / "sample.json").read_text())
    feeds = {i["name"]: np.array(i["data"], dtype=np.float32).reshape(i["shape"])
             for i in sample["inputs"]}
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    for exp in sample["expected_outputs"]:
        arr = got[exp["name"]]
        assert list(arr.shape) == exp["shape"], (exp["name"], arr.shape)
        want = np.array(exp["data"]).reshape(exp["shape"])
        if exp["datatype"] == "INT64":
            assert arr.dtype == np.int64 and np.array_equal(arr, want), (arr, want)
        else:
            assert arr.dtype == np.float32 and np.allclose(arr, want, rtol=0, atol=1e-4), (arr, want)
    print("sample.json: expected outputs reproduced (atol 1e-4)")

    for n in (1, 8):
        x = X_test[:n]
        label, proba = sess.run(["label", "probabilities"], {"input": x})
        assert label.shape == (n,) and proba.shape == (n, 3), (label.shape, proba.shape)
        assert np.array_equal(label, pipe.predict(x))
        assert np.allclose(proba, pipe.predict_proba(x), atol=1e-5)
        print(f"batch {n}: label {label.dtype} {label.shape}, probabilities {proba.dtype} {proba.shape}: OK")
    label = sess.run(["label"], {"input": X_test})[0]
    print(f"onnxruntime test accuracy: {float(np.mean(label == y_test)):.4f}")


def main():
    pipe, X_test, y_test = train()
    export(pipe)
    sess = ort.InferenceSession(str(MODEL_DIR / "model.onnx"), providers=["CPUExecutionProvider"])
    write_sample(sess)
    verify(pipe, X_test, y_test)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
