// Tensors as the Open Inference Protocol writes them in JSON: {name, datatype, shape, data (flat)}.

export class InputError extends Error {}

const INTEGER = new Set(["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]);

export function flatten(data) {
  return Array.isArray(data) ? data.flat(Infinity) : [data];
}

export function product(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

// One element typed into the page, checked for the tensor's datatype; `where` names it in the message.
export function parseElement(text, datatype, where) {
  const value = String(text).trim();
  if (datatype === "BYTES") {
    return String(text);
  }
  if (datatype === "BOOL") {
    if (["true", "1"].includes(value.toLowerCase())) return true;
    if (["false", "0"].includes(value.toLowerCase())) return false;
    throw new InputError(`${where}: ${JSON.stringify(value)} is not true or false`);
  }
  const number = value === "" ? NaN : Number(value);
  if (Number.isNaN(number)) {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not a number`);
  }
  if (INTEGER.has(datatype) && !Number.isInteger(number)) {
    throw new InputError(`${where}: ${JSON.stringify(value)} is not an integer (${datatype})`);
  }
  return number;
}

// The shape of a (nested) JSON array; a ragged one is an error naming the input.
export function shapeOf(value, where) {
  if (!Array.isArray(value)) {
    return [];
  }
  const inner = value.map((item) => shapeOf(item, where));
  for (const shape of inner) {
    if (JSON.stringify(shape) !== JSON.stringify(inner[0] || [])) {
      throw new InputError(`${where}: the nested lists have different lengths (a tensor must be rectangular)`);
    }
  }
  return [value.length, ...(inner[0] || [])];
}

// A value as the response carried it (numbers in the shortest form that reads back the same).
export function show(value) {
  return String(value);
}
