// Calls to this server, with the credential the user gave (if any) as `Authorization: Bearer`.
// The credential lives in this tab's sessionStorage only: never localStorage or a cookie, so it is gone
// when the tab closes and no other tab or later visit sees it.

const CREDENTIAL = "mlgit-ui-credential";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function credential() {
  return sessionStorage.getItem(CREDENTIAL);
}

export function setCredential(value) {
  if (value) {
    sessionStorage.setItem(CREDENTIAL, value);
  } else {
    sessionStorage.removeItem(CREDENTIAL);
  }
}

// `path` is relative to /ui/ ("api/models", "../v2/models/x"), so a path prefix in front of the server
// (a proxy's) is kept.
export async function call(path, body) {
  const headers = new Headers();
  const key = credential();
  if (key) {
    headers.set("Authorization", `Bearer ${key}`);
  }
  const init = { headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.method = "POST";
    init.body = JSON.stringify(body);
    headers.set("Content-Type", "application/json");
  }
  const response = await fetch(new URL(path, document.baseURI), init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    // The server's errors are {"error": "..."}: show its words, not a paraphrase.
    const message = parsed && typeof parsed.error === "string" ? parsed.error : text || response.statusText;
    throw new ApiError(response.status, message);
  }
  return parsed;
}

export function modelPath(name) {
  return `../v2/models/${encodeURIComponent(name)}`;
}
