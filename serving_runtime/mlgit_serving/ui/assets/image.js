// Image inputs and mask outputs, as the model's input adapter (model-settings.json `adapter`) describes them:
// an uploaded PNG/JPEG becomes the tensor `mlgit batch` would make of the same file (pixel * scale, then
// (x - mean) / std per channel, in the adapter's layout); a mask output is drawn as a black-and-white picture.

import { describe, el } from "./dom.js";
import { InputError, flatten } from "./tensors.js";

const MIME = { png: ["image/png", ".png"], jpeg: ["image/jpeg", ".jpg", ".jpeg"] };

// Where N, C, H and W sit in a shape of the adapter's layout (rank 3: no batch dimension).
function axes(layout, rank) {
  const letters = rank === 3 ? layout.replace("N", "") : layout;
  return Object.fromEntries([...letters].map((letter, i) => [letter, i]));
}

function geometry(spec, adapter) {
  const at = axes(adapter.layout || "NCHW", spec.shape.length);
  return {
    channels: spec.shape[at.C],
    height: spec.shape[at.H],
    width: spec.shape[at.W],
    layout: (adapter.layout || "NCHW").slice(spec.shape.length === 3 ? 1 : 0),
  };
}

function perChannel(values, c) {
  return values.length === 1 ? values[0] : values[c];
}

// RGBA pixels -> the tensor's data, in its layout. Grayscale is ITU-R 601-2 luma, as Pillow's convert("L").
export function pixelsToData(rgba, width, height, channels, layout, adapter) {
  const scale = adapter.scale ?? 1 / 255; // the contract's defaults (model_settings.py ImageAdapter)
  const mean = adapter.mean ?? [0];
  const std = adapter.std ?? [1];
  const data = new Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const [r, g, b] = [rgba[p], rgba[p + 1], rgba[p + 2]];
      const pixel = channels === 1 ? [(r * 299 + g * 587 + b * 114) / 1000] : [r, g, b];
      for (let c = 0; c < channels; c++) {
        const value = (pixel[c] * scale - perChannel(mean, c)) / perChannel(std, c);
        const index = layout.endsWith("HWC") ? (y * width + x) * channels + c : (c * height + y) * width + x;
        data[index] = value;
      }
    }
  }
  return data;
}

// The first image of a tensor in the adapter's layout, drawn with its values stretched to 0..255
// (`threshold`: black and white instead, as a mask).
export function drawTensor(values, shape, adapter, threshold) {
  const at = axes(adapter.layout || "NCHW", shape.length);
  const [channels, height, width] = [shape[at.C], shape[at.H], shape[at.W]];
  const hwc = (adapter.layout || "NCHW").endsWith("HWC");
  const at3 = (c, y, x) => values[hwc ? (y * width + x) * channels + c : (c * height + y) * width + x];
  const shown = channels === 3 ? 3 : 1;
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < width * height * channels; i++) {
    low = Math.min(low, values[i]);
    high = Math.max(high, values[i]);
  }
  const canvas = el("canvas", { width, height, class: "picture" });
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        const v = at3(c % shown, y, x);
        const level = threshold === undefined ? (255 * (v - low)) / (high - low || 1) : v > threshold ? 255 : 0;
        image.data[p + c] = Math.round(level);
      }
      image.data[p + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

export function imageField(spec, adapter, sample) {
  if (spec.shape === null || ![3, 4].includes(spec.shape.length)) {
    throw new Error(`input ${spec.name}: an image input needs a rank-3 or rank-4 shape, the model says ${describe(spec)}`);
  }
  const { channels, height, width, layout } = geometry(spec, adapter);
  const formats = (adapter.formats || ["png", "jpeg"]).filter((f) => f in MIME);
  const file = el("input", { type: "file", accept: formats.flatMap((f) => MIME[f]).join(","), "aria-label": spec.name });
  const message = el("p", { class: "image-message" });
  const preview = el("div", { class: "preview" });
  let uploaded = null;

  const size = (w, h) => `${w} x ${h}`;
  const wanted = `${width === -1 ? "any" : width} x ${height === -1 ? "any" : height}`;

  function reset() {
    uploaded = null;
    file.value = "";
    message.classList.remove("problem");
    if (sample) {
      message.textContent = "The sample request is filled in (shown contrast-stretched); choose an image to replace it.";
      preview.replaceChildren(drawTensor(flatten(sample.data), sample.shape, adapter));
    } else {
      message.textContent = `Choose a ${wanted} image.`;
      preview.replaceChildren();
    }
  }

  async function load() {
    uploaded = null;
    const chosen = file.files[0];
    if (!chosen) return reset();
    message.classList.add("problem");
    let bitmap;
    try {
      bitmap = await createImageBitmap(chosen, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    } catch {
      message.textContent = `${chosen.name}: not an image this browser can read (${formats.join(", ")} expected)`;
      preview.replaceChildren();
      return;
    }
    if ((width !== -1 && bitmap.width !== width) || (height !== -1 && bitmap.height !== height)) {
      message.textContent =
        `${chosen.name} is ${size(bitmap.width, bitmap.height)} pixels; this model takes ${wanted} ` +
        "(width x height): resize it first, the page does not resize images.";
      preview.replaceChildren();
      return;
    }
    const canvas = el("canvas", { width: bitmap.width, height: bitmap.height, class: "picture" });
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const data = pixelsToData(rgba, bitmap.width, bitmap.height, channels, layout, adapter);
    const dims = { N: 1, C: channels, H: bitmap.height, W: bitmap.width };
    uploaded = { name: spec.name, datatype: spec.datatype, shape: [...layout].map((d) => dims[d]), data };
    message.classList.remove("problem");
    message.textContent = `${chosen.name}: ${size(bitmap.width, bitmap.height)}, ${channels === 1 ? "grayscale" : "RGB"}.`;
    preview.replaceChildren(canvas);
  }

  file.addEventListener("change", load);
  const element = el(
    "fieldset",
    { class: "input image", "data-input": spec.name },
    el("legend", {}, el("code", { text: spec.name }), ` ${describe(spec)} · image (${formats.join(", ")})`),
    file,
    message,
    preview,
  );

  function read() {
    if (uploaded) return uploaded;
    if (file.files.length) throw new InputError(`${spec.name}: ${message.textContent}`);
    if (sample) return { name: spec.name, datatype: spec.datatype, shape: sample.shape, data: flatten(sample.data) };
    throw new InputError(`${spec.name}: choose an image first`);
  }

  reset();
  return { element, read, reset };
}
