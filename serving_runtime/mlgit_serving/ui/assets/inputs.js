// One form field per model input, built from its signature: a table for [-1, F] (or [-1]) numbers,
// one line per string for BYTES vectors, JSON for any other shape. Each field is
// {element, read() -> OIP input tensor (throws InputError), reset() -> back to the sample}.

import { describe, el } from "./dom.js";
import { InputError, flatten, parseElement, product, shapeOf } from "./tensors.js";

function heading(spec, hint) {
  return el("legend", {}, el("code", { text: spec.name }), ` ${describe(spec)}`, hint ? ` · ${hint}` : "");
}

// Rows of the sample as lists of `columns` values (nothing when there is no sample).
function sampleRows(sample, columns) {
  if (!sample) return [];
  const values = flatten(sample.data);
  const rows = [];
  for (let start = 0; start < values.length; start += columns) {
    rows.push(values.slice(start, start + columns));
  }
  return rows;
}

function tableField(spec, sample) {
  const columns = spec.shape.length === 2 ? spec.shape[1] : 1;
  const fixedRows = spec.shape[0] === -1 ? null : spec.shape[0];
  const body = el("tbody");
  const header = el("tr", {}, el("th", { text: "row" }));
  for (let j = 0; j < columns; j++) {
    header.append(el("th", { text: spec.shape.length === 2 ? String(j) : "value" }));
  }

  function addRow(values = []) {
    const row = el("tr", {}, el("th", { text: String(body.rows.length) }));
    for (let j = 0; j < columns; j++) {
      const cell = el("input", {
        type: "text",
        inputmode: spec.datatype === "BOOL" ? "text" : "decimal",
        "aria-label": `${spec.name} row ${body.rows.length} column ${j}`,
      });
      cell.value = values[j] === undefined ? "" : String(values[j]);
      row.append(el("td", {}, cell));
    }
    body.append(row);
  }

  function reset() {
    body.replaceChildren();
    const rows = sampleRows(sample, columns);
    const wanted = fixedRows ?? Math.max(rows.length, 1);
    for (let i = 0; i < wanted; i++) addRow(rows[i]);
  }

  const buttons = fixedRows
    ? []
    : [
        el("button", { type: "button", text: "Add a row", onclick: () => addRow() }),
        el("button", {
          type: "button",
          text: "Remove the last row",
          onclick: () => body.rows.length > 1 && body.lastChild.remove(),
        }),
      ];
  const element = el(
    "fieldset",
    { class: "input", "data-input": spec.name },
    heading(spec, "one row per example"),
    el("table", { class: "tensor" }, el("thead", {}, header), body),
    ...buttons,
  );

  function read() {
    const data = [];
    [...body.rows].forEach((row, i) => {
      row.querySelectorAll("input").forEach((cell, j) => {
        data.push(parseElement(cell.value, spec.datatype, `${spec.name}: row ${i}, column ${j}`));
      });
    });
    const shape = spec.shape.length === 2 ? [body.rows.length, columns] : [body.rows.length];
    return { name: spec.name, datatype: spec.datatype, shape, data };
  }

  reset();
  return { element, read, reset };
}

function linesField(spec, sample) {
  const area = el("textarea", { rows: 4, "aria-label": spec.name });
  const reset = () => {
    area.value = sample ? flatten(sample.data).join("\n") : "";
  };
  const element = el("fieldset", { class: "input", "data-input": spec.name }, heading(spec, "one text per line"), area);
  function read() {
    const lines = area.value.split("\n");
    if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
    const shape = spec.shape.length === 2 ? [lines.length, 1] : [lines.length];
    return { name: spec.name, datatype: spec.datatype, shape, data: lines };
  }
  reset();
  return { element, read, reset };
}

// Nested lists in the sample's shape, so that the text reads like the tensor.
function nest(values, shape) {
  if (shape.length <= 1) return values;
  const size = product(shape.slice(1));
  const out = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(values.slice(i * size, (i + 1) * size), shape.slice(1)));
  return out;
}

function jsonField(spec, sample) {
  const area = el("textarea", { rows: 6, class: "json", "aria-label": spec.name });
  const reset = () => {
    area.value = sample ? JSON.stringify(nest(flatten(sample.data), sample.shape)) : "";
  };
  const element = el(
    "fieldset",
    { class: "input", "data-input": spec.name },
    heading(spec, "nested JSON lists"),
    area,
  );
  function read() {
    let value;
    try {
      value = JSON.parse(area.value);
    } catch (error) {
      throw new InputError(`${spec.name}: not valid JSON (${error.message})`);
    }
    const shape = shapeOf(value, spec.name);
    const data = flatten(value).map((v, i) => parseElement(v, spec.datatype, `${spec.name}: element ${i}`));
    return { name: spec.name, datatype: spec.datatype, shape, data };
  }
  reset();
  return { element, read, reset };
}

export function inputField(spec, sample) {
  const shape = spec.shape;
  const vector = shape !== null && (shape.length === 1 || (shape.length === 2 && shape[1] > 0));
  if (spec.datatype === "BYTES") {
    return vector && (shape.length === 1 || shape[1] === 1) ? linesField(spec, sample) : jsonField(spec, sample);
  }
  return vector ? tableField(spec, sample) : jsonField(spec, sample);
}
