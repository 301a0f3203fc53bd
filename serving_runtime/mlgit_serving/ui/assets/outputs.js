// The response's outputs: a table per output (rows x columns for rank 1 and 2), a summary for larger ones,
// and a picture for the output the adapter names as a mask.

import { el } from "./dom.js";
import { drawTensor } from "./image.js";
import { flatten, product, show } from "./tensors.js";

const MAX_ROWS = 200; // a table longer than this is cut (the raw response below has everything)

function table(output, values) {
  const shape = output.shape;
  const columns = shape.length === 2 ? shape[1] : 1;
  const rows = shape.length === 0 ? 1 : shape[0];
  const header = el("tr", {}, el("th", { text: "row" }));
  for (let j = 0; j < columns; j++) header.append(el("th", { text: shape.length === 2 ? String(j) : "value" }));
  const body = el("tbody");
  for (let i = 0; i < Math.min(rows, MAX_ROWS); i++) {
    const row = el("tr", {}, el("th", { text: String(i) }));
    for (let j = 0; j < columns; j++) row.append(el("td", { class: "value", text: show(values[i * columns + j]) }));
    body.append(row);
  }
  const cut = rows > MAX_ROWS ? el("p", { class: "note", text: `The first ${MAX_ROWS} of ${rows} rows.` }) : null;
  return [el("table", { class: "tensor", "data-output": output.name }, el("thead", {}, header), body), cut];
}

function summary(output, values) {
  const numbers = values.filter((v) => typeof v === "number");
  const stats = [["elements", values.length]];
  if (numbers.length) {
    // reduce, not Math.min(...numbers): spreading a large tensor overflows the call stack.
    stats.push(["min", numbers.reduce((a, b) => Math.min(a, b))], ["max", numbers.reduce((a, b) => Math.max(a, b))]);
    stats.push(["mean", numbers.reduce((a, b) => a + b, 0) / numbers.length]);
  }
  const rows = stats.map(([name, value]) => el("tr", {}, el("th", { text: name }), el("td", { text: show(value) })));
  return el("table", { class: "tensor summary", "data-output": output.name }, el("tbody", {}, rows));
}

function mask(output, values, adapter) {
  const threshold = adapter.output.threshold ?? 0.5;
  // A mask is [N, H, W] or one channel in the adapter's layout.
  const [shape, layout] =
    output.shape.length === 3 ? [[output.shape[0], 1, ...output.shape.slice(1)], "NCHW"] : [output.shape, adapter.layout];
  const first = values.slice(0, product(shape.slice(1)));
  const above = first.filter((v) => v > threshold).length;
  return el(
    "figure",
    { class: "mask", "data-mask": output.name },
    drawTensor(values, shape, { layout }, threshold),
    el("figcaption", { text: `${above} of ${first.length} pixels above ${threshold} (first image)` }),
  );
}

export function renderOutputs(container, response, adapter) {
  const maskName = adapter && adapter.output && adapter.output.kind === "mask" ? adapter.output.name : null;
  const sections = (response.outputs || []).map((output) => {
    const values = flatten(output.data);
    const parts = [];
    if (output.name === maskName) parts.push(mask(output, values, adapter));
    parts.push(output.shape.length <= 2 ? table(output, values) : summary(output, values));
    return el(
      "section",
      { class: "output" },
      el("h3", {}, el("code", { text: output.name }), ` ${output.datatype} [${output.shape.join(", ")}]`),
      ...parts.flat(),
    );
  });
  const raw = el("details", {}, el("summary", { text: "Raw response" }), el("pre", { text: JSON.stringify(response) }));
  container.replaceChildren(...sections, raw);
}
