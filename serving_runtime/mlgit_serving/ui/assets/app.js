// The page: pick a model, fill its inputs (the sample first), POST /v2/models/{name}/infer, show the outputs.
// A 401 from any call asks for a key or token and then repeats what was refused.

import { ApiError, call, credential, modelPath, setCredential } from "./api.js";
import { imageField } from "./image.js";
import { inputField } from "./inputs.js";
import { renderOutputs } from "./outputs.js";
import { InputError } from "./tensors.js";

const $ = (id) => document.getElementById(id);
let current = null; // {name, adapter, fields}
let retry = null; // what to repeat once a credential is given

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

function askForCredential(error, action) {
  retry = action;
  $("auth-message").textContent =
    `The API answered ${error.status}: ${error.message}. ` +
    (credential() ? "The key given is not accepted; give another." : "Give an API key or token to go on.");
  $("auth").hidden = false;
  $("credential").value = "";
  $("credential").focus();
}

// Runs `action`; a 401 asks for a credential and runs it again afterwards, other errors go to `onError`.
async function guarded(action, onError) {
  try {
    await action();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      askForCredential(error, () => guarded(action, onError));
    } else {
      onError(error);
    }
  }
}

function showError(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = error instanceof ApiError ? `HTTP ${error.status}: ${error.message}` : error.message;
}

function adapterInput(metadata, adapter) {
  if (!adapter || adapter.kind !== "image") return null;
  return adapter.input || (metadata.inputs.length === 1 ? metadata.inputs[0].name : null);
}

async function loadModel(name) {
  const [metadata, info] = await Promise.all([call(modelPath(name)), call(`api/model/${encodeURIComponent(name)}`)]);
  const adapter = info.adapter;
  const imageInput = adapterInput(metadata, adapter);
  const samples = Object.fromEntries(((info.sample && info.sample.inputs) || []).map((t) => [t.name, t]));
  const fields = metadata.inputs.map((spec) =>
    spec.name === imageInput ? imageField(spec, adapter, samples[spec.name]) : inputField(spec, samples[spec.name]),
  );
  current = { name, adapter, fields };
  $("inputs").replaceChildren(...fields.map((f) => f.element));
  const state = metadata.parameters && metadata.parameters.state;
  const reason = metadata.parameters && metadata.parameters.reason;
  $("model-info").textContent = `version ${info.version} · ${state}${reason ? `: ${reason}` : ""}`;
  $("request").hidden = false;
  $("response").hidden = true;
}

async function predict() {
  const request = { inputs: current.fields.map((field) => field.read()) };
  $("submit").disabled = true;
  $("status").textContent = "Running…";
  $("response").hidden = false;
  $("error").hidden = true;
  try {
    const response = await call(`${modelPath(current.name)}/infer`, request);
    $("status").textContent = `Model ${response.model_name} version ${response.model_version}`;
    renderOutputs($("outputs"), response, current.adapter);
  } catch (error) {
    $("status").textContent = "";
    $("outputs").replaceChildren();
    throw error;
  } finally {
    $("submit").disabled = false;
  }
}

async function start() {
  const { models } = await call("api/models");
  const select = $("model");
  select.replaceChildren(...models.map((m) => new Option(m.name, m.name)));
  const wanted = new URLSearchParams(location.search).get("model");
  if (wanted && models.some((m) => m.name === wanted)) select.value = wanted;
  if (!models.length) return notice("This server has no models.");
  await loadModel(select.value);
}

function onFailure(error) {
  if (error instanceof InputError) {
    $("response").hidden = false;
    return showError(error);
  }
  if (current && !$("request").hidden) {
    $("response").hidden = false;
    return showError(error);
  }
  notice(error instanceof ApiError ? `HTTP ${error.status}: ${error.message}` : error.message);
}

$("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setCredential($("credential").value.trim());
  $("auth").hidden = true;
  $("forget").hidden = false;
  const action = retry;
  retry = null;
  if (action) action();
});

$("forget").addEventListener("click", () => {
  setCredential(null);
  $("forget").hidden = true;
});

$("model").addEventListener("change", () => guarded(() => loadModel($("model").value), onFailure));

$("infer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(predict, onFailure);
});

$("reset").addEventListener("click", () => current && current.fields.forEach((field) => field.reset()));

$("forget").hidden = !credential();
guarded(start, onFailure);
