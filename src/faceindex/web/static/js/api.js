// The REST API client: the only module that talks to the server.
//
// Every path is relative to the page ("v1/..."), so the UI also works when a reverse proxy
// mounts the server under a sub-path. Errors come back as ApiError with the server's stable
// code; a 401 or 403 also fires an "auth-required" event on window.

const KEY_STORAGE = "faceindex.apiKey";
// Used when sessionStorage is unavailable (storage disabled).
let memoryKey = "";

// The key lives in sessionStorage: it survives reloads of this tab but not the browser, and
// other tabs and later visits never see it. Keys that older versions kept in localStorage
// are removed (once) so that they do not linger on disk.
try {
  localStorage.removeItem(KEY_STORAGE);
} catch {
  // Storage disabled: nothing was kept.
}

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the server could not be reached)
   * @param {string} code stable error code from the server
   * @param {string} message human message from the server
   * @param {unknown} details extra data from the server
   */
  constructor(status, code, message, details = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage can be disabled: the key then lasts for this page only.
  }
  memoryKey = key;
}

function authHeaders() {
  const key = getKey() || memoryKey;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function url(path, query) {
  const u = new URL(path, document.baseURI);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
    }
  }
  return u;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  const err = body && typeof body === "object" ? body.error : null;
  const apiError = new ApiError(
    response.status,
    (err && err.code) || `http_${response.status}`,
    (err && err.message) || `${response.status} ${response.statusText}`.trim(),
    err ? err.details : null,
  );
  if (apiError.isAuth) {
    window.dispatchEvent(new CustomEvent("auth-required", { detail: apiError }));
  }
  return apiError;
}

/**
 * @param {string} method
 * @param {string} path relative to the page, e.g. "v1/people"
 * @param {{json?: unknown, form?: FormData, query?: object, signal?: AbortSignal, raw?: boolean}} options
 */
async function request(method, path, { json, form, query, signal, raw = false } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json", ...authHeaders() };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(url(path, query), { method, headers, body, signal });
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "unreachable", "The faceindex server could not be reached.");
  }
  if (!response.ok) throw await errorFrom(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function imageForm(fields) {
  const form = new FormData();
  for (const [name, files] of Object.entries(fields)) {
    for (const file of Array.isArray(files) ? files : [files]) {
      form.append(name, file, file.name || `${name}.jpg`);
    }
  }
  return form;
}

export const api = {
  health: () => request("GET", "v1/health"),

  detect: (image, opts = {}) =>
    request("POST", "v1/detect", { form: imageForm({ image }), ...opts }),
  verify: (imageA, imageB, opts = {}) =>
    request("POST", "v1/verify", { form: imageForm({ image_a: imageA, image_b: imageB }), ...opts }),
  identify: (image, opts = {}) =>
    request("POST", "v1/identify", { form: imageForm({ image }), ...opts }),

  listPeople: ({ search = "", offset = 0, limit = 50 } = {}, opts = {}) =>
    request("GET", "v1/people", { query: { search, offset, limit }, ...opts }),
  createPerson: (name) => request("POST", "v1/people", { json: { name } }),
  getPerson: (id, opts = {}) => request("GET", `v1/people/${encodeURIComponent(id)}`, opts),
  renamePerson: (id, name) =>
    request("PATCH", `v1/people/${encodeURIComponent(id)}`, { json: { name } }),
  deletePerson: (id) => request("DELETE", `v1/people/${encodeURIComponent(id)}`),

  enrolFaces: (id, files) =>
    request("POST", `v1/people/${encodeURIComponent(id)}/faces`, {
      form: imageForm({ image: files }),
    }),
  listFaces: (id, opts = {}) =>
    request("GET", `v1/people/${encodeURIComponent(id)}/faces`, opts),
  deleteFace: (id, templateId) =>
    request(
      "DELETE",
      `v1/people/${encodeURIComponent(id)}/faces/${encodeURIComponent(templateId)}`,
    ),
  /** The kept photo of one template as a Blob, or null when the server keeps no photo. */
  async facePhoto(id, templateId, opts = {}) {
    try {
      const response = await request(
        "GET",
        `v1/people/${encodeURIComponent(id)}/faces/${encodeURIComponent(templateId)}/photo`,
        { raw: true, ...opts },
      );
      return await response.blob();
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) return null;
      throw exc;
    }
  },
};
