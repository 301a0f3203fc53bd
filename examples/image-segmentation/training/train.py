"""Regenerate model/model.onnx and model/sample.json for the image-segmentation example.

Run from the example folder:
    pip install -r training/requirements.txt && python training/train.py

A small U-Net finds compact (point-like) and extended radio sources in single-channel sky
images. Training data is synthetic and generated here with a fixed seed: Gaussian noise
(sigma = 1, so pixel values are in units of the noise) plus point sources (the beam, a
circular Gaussian) and elliptical extended sources. The target mask is every pixel where the
true, noiseless source flux exceeds FLUX_THRESHOLD. The network is trained briefly on CPU,
exported to ONNX (opset 17, dynamic batch), a sample request is written with the expected
output computed by onnxruntime, and the artifacts are verified.

  input  image  FP32 [N, 1, 64, 64]   sky image in units of the noise rms
  output mask   FP32 [N, 1, 64, 64]   per-pixel source probability (sigmoid)
"""
import json
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.nn import functional as F

SEED = 1234
SIZE = 64
FLUX_THRESHOLD = 1.0      # mask = true source flux > 1 noise rms
N_TRAIN, N_VAL = 2048, 256
BATCH, STEPS, LR = 24, 300, 3e-3
THREADS = 2               # fixed so that reruns reproduce the same floats
OPSET = 17
EXAMPLE_DIR = Path(__file__).resolve().parent.parent
MODEL_DIR = EXAMPLE_DIR / "model"


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


# ---------------------------------------------------------------- synthetic sky

def make_sky(rng, n, n_compact=None, n_extended=None):
    """n noisy sky images and their source masks, float32 [n, 1, 64, 64].
    Source counts are Poisson-distributed unless given."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    images = np.empty((n, 1, SIZE, SIZE), np.float32)
    masks = np.empty((n, 1, SIZE, SIZE), np.float32)
    for k in range(n):
        flux = np.zeros((SIZE, SIZE))
        # compact sources: unresolved, the shape of the beam (sigma ~1.2 px)
        for _ in range(rng.poisson(4) if n_compact is None else n_compact):
            x0, y0 = rng.uniform(2, SIZE - 2, 2)
            amp = np.exp(rng.uniform(np.log(2.0), np.log(50.0)))
            s = rng.uniform(0.9, 1.5)
            flux += amp * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * s * s))
        # extended sources: rotated elliptical Gaussians, fainter per pixel
        for _ in range(rng.poisson(1.5) if n_extended is None else n_extended):
            x0, y0 = rng.uniform(6, SIZE - 6, 2)
            amp = rng.uniform(1.5, 6.0)
            sa = rng.uniform(2.5, 8.0)
            sb = sa * rng.uniform(0.3, 1.0)
            th = rng.uniform(0, np.pi)
            dx, dy = xx - x0, yy - y0
            u = dx * np.cos(th) + dy * np.sin(th)
            v = -dx * np.sin(th) + dy * np.cos(th)
            flux += amp * np.exp(-(u * u / (2 * sa * sa) + v * v / (2 * sb * sb)))
        images[k, 0] = flux + rng.normal(0.0, 1.0, (SIZE, SIZE))
        masks[k, 0] = flux > FLUX_THRESHOLD
    return images, masks


# ---------------------------------------------------------------- model

def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """2 downsampling stages (8, 16 channels), a 32-channel bottleneck, 2 upsampling stages
    with concatenated skip connections, a 1x1 head and a sigmoid."""

    def __init__(self, c=(8, 16, 32)):
        super().__init__()
        c1, c2, c3 = c
        self.enc1 = block(1, c1)
        self.enc2 = block(c1, c2)
        self.bottleneck = block(c2, c3)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.dec2 = block(2 * c2, c2)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.dec1 = block(2 * c1, c1)
        self.head = nn.Conv2d(c1, 1, 1)

    def logits(self, x):
        e1 = self.enc1(x)                        # 64x64
        e2 = self.enc2(F.max_pool2d(e1, 2))      # 32x32
        b = self.bottleneck(F.max_pool2d(e2, 2))  # 16x16
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)

    def forward(self, image):
        return torch.sigmoid(self.logits(image))


def iou(pred, target):
    inter = np.logical_and(pred, target).sum()
    union = np.logical_or(pred, target).sum()
    return float(inter / union) if union else 1.0


def train():
    rng = np.random.default_rng(SEED)
    x_train, y_train = make_sky(rng, N_TRAIN)
    x_val, y_val = make_sky(rng, N_VAL)
    print(f"data: {N_TRAIN} train / {N_VAL} val images, "
          f"{y_train.mean() * 100:.1f}% source pixels")

    model = UNet()
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=STEPS)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    pos_weight = torch.tensor(2.0)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.perf_counter()
    model.train()
    step = 0
    while step < STEPS:
        for idx in torch.randperm(N_TRAIN, generator=gen).split(BATCH):
            if step >= STEPS:
                break
            logits = model.logits(xt[idx])
            loss = F.binary_cross_entropy_with_logits(logits, yt[idx], pos_weight=pos_weight)
            prob = torch.sigmoid(logits)
            dice = 1 - (2 * (prob * yt[idx]).sum() + 1) / (prob.sum() + yt[idx].sum() + 1)
            loss = loss + dice
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step:4d}  loss {loss.item():.4f}  ({time.perf_counter() - t0:.1f} s)")
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        p_val = model(torch.from_numpy(x_val)).numpy()
    val_iou = iou(p_val > 0.5, y_val > 0.5)
    baseline = iou(x_val > 3.0, y_val > 0.5)  # plain 3-sigma thresholding, for comparison
    print(f"training time: {train_s:.1f} s ({STEPS} steps, batch {BATCH}, {THREADS} threads)")
    print(f"validation IoU: {val_iou:.4f}  (3-sigma threshold baseline: {baseline:.4f})")
    return model, x_val


# ---------------------------------------------------------------- export + sample

def export(model):
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    path = MODEL_DIR / "model.onnx"
    dummy = torch.zeros(1, 1, SIZE, SIZE)
    # The TorchScript-based exporter is used on purpose (dynamo=False): it writes
    # byte-identical files for identical weights. Silence its deprecation notice.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.onnx.export(
        model, (dummy,), str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=["image"],
        output_names=["mask"],
        dynamic_axes={"image": {0: "batch"}, "mask": {0: "batch"}},
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(path), full_check=True)
    return path


def dump_sample(sample):
    """JSON with one line per tensor: stable bytes, diffable headers."""
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


def write_sample(sess):
    # a fresh image (its own seed) with 4 compact and 2 extended sources; the input is
    # rounded to 4 decimals BEFORE the expected output is computed from it
    x, _ = make_sky(np.random.default_rng(SEED + 1), 1, n_compact=4, n_extended=2)
    x = np.round(x.astype(np.float64), 4).astype(np.float32)
    (mask,) = sess.run(["mask"], {"image": x})
    sample = {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": list(x.shape),
                    "data": [round(float(v), 4) for v in x.ravel()]}],
        "expected_outputs": [{"name": "mask", "datatype": "FP32", "shape": list(mask.shape),
                              "data": [round(float(v), 5) for v in mask.ravel()]}],
    }
    (MODEL_DIR / "sample.json").write_text(dump_sample(sample))


# ---------------------------------------------------------------- verification

ELEM = {v: k for k, v in onnx.TensorProto.DataType.items()}


def describe(values):
    out = []
    for v in values:
        t = v.type.tensor_type
        dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
        out.append(f"{v.name}: {ELEM[t.elem_type]} {dims}")
    return out


def verify(model, x_val):
    """Prove the committed artifacts: signature, sample, dynamic batch, parity with PyTorch."""
    path = MODEL_DIR / "model.onnx"
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    sample_path = MODEL_DIR / "sample.json"
    print(f"model: {path.relative_to(EXAMPLE_DIR)} ({path.stat().st_size} bytes), "
          f"sample: {sample_path.relative_to(EXAMPLE_DIR)} ({sample_path.stat().st_size} bytes)")
    print("opset:", {o.domain or "ai.onnx": o.version for o in m.opset_import},
          "ir_version:", m.ir_version)
    for line in describe(m.graph.input):
        print("  input ", line)
    for line in describe(m.graph.output):
        print("  output", line)
    assert [i.name for i in m.graph.input] == ["image"]
    assert [o.name for o in m.graph.output] == ["mask"]

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sample = json.loads(sample_path.read_text())
    feeds = {i["name"]: np.array(i["data"], dtype=np.float32).reshape(i["shape"])
             for i in sample["inputs"]}
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    for exp in sample["expected_outputs"]:
        arr = got[exp["name"]]
        want = np.array(exp["data"], dtype=np.float32).reshape(exp["shape"])
        assert arr.dtype == np.float32 and arr.shape == want.shape, (arr.dtype, arr.shape)
        err = float(np.abs(arr - want).max())
        assert err <= 1e-4, err
    print(f"sample.json: expected output reproduced (max abs err {err:.2e}, atol 1e-4)")

    for n in (1, 8):
        x = x_val[:n]
        (mask,) = sess.run(["mask"], {"image": x})
        assert mask.shape == (n, 1, SIZE, SIZE) and mask.dtype == np.float32, mask.shape
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        err = float(np.abs(mask - ref).max())
        assert err <= 1e-4, err
        print(f"batch {n}: mask {mask.dtype} {mask.shape}, max abs diff vs PyTorch {err:.2e}: OK")


def main():
    seed_everything(SEED)
    model, x_val = train()
    export(model)
    sess = ort.InferenceSession(str(MODEL_DIR / "model.onnx"), providers=["CPUExecutionProvider"])
    write_sample(sess)
    verify(model, x_val)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
