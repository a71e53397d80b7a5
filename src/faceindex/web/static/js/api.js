// The REST API client: the only module that talks to the server.
//
// Every path is relative to the page ("v1/..."), so the UI also works when a reverse proxy
// mounts the server under a sub-path. Errors come back as ApiError with the server's stable
// code; a 401 also fires an "auth-required" event on window (a 403 does not: the key is
// valid but lacks a scope, which the page that asked says in place).
//
// The saved key's standing is tracked from real answers: "ok" only after an authenticated
// call succeeded, "rejected" after a 401; each change fires "key-status" on window.

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

  /** The scope a 403 says is missing ("write", "admin"), or "". */
  get missingScope() {
    const d = this.details;
    return this.status === 403 && d && typeof d === "object" && d.required ? String(d.required) : "";
  }
}

/** "none" (no key saved), "unverified", "ok" (a call with it succeeded), "rejected" (401). */
let keyStatus = "none";

export function getKeyStatus() {
  return getKey() || memoryKey ? keyStatus : "none";
}

function setKeyStatus(status) {
  if (status === keyStatus) return;
  keyStatus = status;
  window.dispatchEvent(new CustomEvent("key-status", { detail: status }));
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
  setKeyStatus(key ? "unverified" : "none");
}

if (getKey()) keyStatus = "unverified";

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

async function errorFrom(response, { quietAuth = false } = {}) {
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
  if (apiError.status === 401 && !quietAuth) {
    window.dispatchEvent(new CustomEvent("auth-required", { detail: apiError }));
  }
  return apiError;
}

/**
 * @param {string} method
 * @param {string} path relative to the page, e.g. "v1/people"
 * @param {{json?: unknown, form?: FormData, query?: object, signal?: AbortSignal, raw?: boolean,
 *          quietAuth?: boolean, anonymous?: boolean}} options
 *   quietAuth: a 401 does not open the key dialog (the caller handles it);
 *   anonymous: an endpoint that needs no key (its success says nothing about the key).
 */
async function request(
  method,
  path,
  { json, form, query, signal, raw = false, quietAuth = false, anonymous = false } = {},
) {
  const auth = authHeaders();
  const headers = { Accept: raw ? "*/*" : "application/json", ...auth };
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
  if (auth.Authorization && !anonymous) {
    // 403: the key was accepted but lacks a scope; it is still a valid key.
    if (response.ok || response.status === 403) setKeyStatus("ok");
    else if (response.status === 401) setKeyStatus("rejected");
  }
  if (!response.ok) throw await errorFrom(response, { quietAuth });
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function imageForm(fields, extra = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined && value !== null) form.append(name, String(value));
  }
  for (const [name, files] of Object.entries(fields)) {
    for (const file of Array.isArray(files) ? files : [files]) {
      form.append(name, file, file.name || `${name}.jpg`);
    }
  }
  return form;
}

export const api = {
  health: () => request("GET", "v1/health", { anonymous: true }),
  evalSummary: (opts = {}) => request("GET", "v1/eval/summary", opts),
  /** Whether the saved key is accepted: a cheap authenticated read, no key dialog on 401. */
  checkKey: () => request("GET", "v1/people", { query: { limit: 1 }, quietAuth: true }),

  detect: (image, opts = {}) =>
    request("POST", "v1/detect", { form: imageForm({ image }), ...opts }),
  verify: (imageA, imageB, opts = {}) =>
    request("POST", "v1/verify", { form: imageForm({ image_a: imageA, image_b: imageB }), ...opts }),
  /** livenessToken: spend a passed liveness session's token (require_liveness). */
  identify: (image, { livenessToken = "", ...opts } = {}) =>
    request("POST", "v1/identify", {
      form: imageForm(
        { image },
        livenessToken ? { require_liveness: "true", liveness_token: livenessToken } : {},
      ),
      ...opts,
    }),
  /** Age, gender, expression and head pose of every face (a model's estimates). */
  analyze: (image, opts = {}) =>
    request("POST", "v1/analyze", {
      form: imageForm({ image }, { attributes: "age,gender,expression,pose" }),
      ...opts,
    }),

  /** The photo with every face cloaked against recognition (base64 in the answer). */
  cloak: (image, strength = "medium", opts = {}) =>
    request("POST", "v1/cloak", { form: imageForm({ image }, { strength }), ...opts }),

  /** Start an active liveness check: 2-3 challenges, a nonce and a deadline. */
  startLiveness: (opts = {}) =>
    request("POST", "v1/liveness/sessions", { json: { mirrored: false }, ...opts }),
  /** Camera frames ({blob, t}) for a liveness session; answers its progress. */
  sendLivenessFrames: (session, frames, opts = {}) => {
    const form = new FormData();
    form.append("nonce", session.nonce);
    form.append("timestamps", frames.map((f) => f.t.toFixed(1)).join(","));
    frames.forEach((f, i) => form.append("frame", f.blob, `frame-${i}.jpg`));
    return request("POST", `v1/liveness/sessions/${encodeURIComponent(session.session_id)}/frames`, {
      form,
      ...opts,
    });
  },

  listPeople: ({ search = "", offset = 0, limit = 50 } = {}, opts = {}) =>
    request("GET", "v1/people", { query: { search, offset, limit }, ...opts }),
  createPerson: (name) => request("POST", "v1/people", { json: { name } }),
  getPerson: (id, opts = {}) => request("GET", `v1/people/${encodeURIComponent(id)}`, opts),
  renamePerson: (id, name) =>
    request("PATCH", `v1/people/${encodeURIComponent(id)}`, { json: { name } }),
  deletePerson: (id) => request("DELETE", `v1/people/${encodeURIComponent(id)}`),

  /** Enrol photos (one request: keep it within the server's max_files). force: enrol even a
   * face that matches another enrolled person better (after the user confirmed). */
  enrolFaces: (id, files, { force = false } = {}) =>
    request("POST", `v1/people/${encodeURIComponent(id)}/faces`, {
      form: imageForm({ image: files }, force ? { force: "true" } : {}),
    }),
  mergePeople: (intoId, fromId) =>
    request("POST", `v1/people/${encodeURIComponent(intoId)}/merge`, {
      json: { from_person_id: Number(fromId) },
    }),
  listFaces: (id, opts = {}) =>
    request("GET", `v1/people/${encodeURIComponent(id)}/faces`, opts),
  deleteFace: (id, templateId) =>
    request(
      "DELETE",
      `v1/people/${encodeURIComponent(id)}/faces/${encodeURIComponent(templateId)}`,
    ),
  audit: (query = {}, opts = {}) => request("GET", "v1/audit", { query, ...opts }),
  listKeys: (opts = {}) => request("GET", "v1/keys", opts),
  createKey: (name, scopes) => request("POST", "v1/keys", { json: { name, scopes } }),
  revokeKey: (keyId) => request("DELETE", `v1/keys/${encodeURIComponent(keyId)}`),

  listMonitors: (opts = {}) => request("GET", "v1/monitors", opts),
  startMonitor: (body) => request("POST", "v1/monitors", { json: body }),
  stopMonitor: (monitorId) => request("DELETE", `v1/monitors/${encodeURIComponent(monitorId)}`),
  monitorEvents: (monitorId, after = 0, opts = {}) =>
    request("GET", `v1/monitors/${encodeURIComponent(monitorId)}/events`, {
      query: { after, limit: 200 },
      ...opts,
    }),

  /** The whole gallery as a file (Blob plus the server's suggested file name). */
  async exportGallery() {
    const response = await request("GET", "v1/gallery/export", { raw: true });
    const disposition = response.headers.get("Content-Disposition") || "";
    const m = disposition.match(/filename\*?=(?:UTF-8'')?"?([^";]+)"?/i);
    return { blob: await response.blob(), filename: m ? decodeURIComponent(m[1]) : "" };
  },
  importGallery: (file) => {
    const form = new FormData();
    form.append("file", file, file.name || "gallery-export");
    return request("POST", "v1/gallery/import", { form });
  },

  // The photo library: scans of server folders, clusters of unnamed faces, photo search.
  listScans: (opts = {}) => request("GET", "v1/scans", opts),
  startScan: (folders) => request("POST", "v1/scans", { json: { folders } }),
  getScan: (scanId, opts = {}) => request("GET", `v1/scans/${encodeURIComponent(scanId)}`, opts),
  cancelScan: (scanId) => request("DELETE", `v1/scans/${encodeURIComponent(scanId)}`),
  listClusters: (opts = {}) => request("GET", "v1/clusters", opts),
  /** target: {name} (a new person, or the one of that name) or {person_id}. */
  nameCluster: (clusterId, target) =>
    request("POST", `v1/clusters/${encodeURIComponent(clusterId)}/name`, { json: target }),
  mergeClusters: (intoId, fromId) =>
    request("POST", `v1/clusters/${encodeURIComponent(intoId)}/merge`, {
      json: { from_cluster_id: Number(fromId) },
    }),
  removeClusterFace: (clusterId, faceId) =>
    request(
      "DELETE",
      `v1/clusters/${encodeURIComponent(clusterId)}/faces/${encodeURIComponent(faceId)}`,
    ),
  photosOf: (personIds, opts = {}) => {
    const query = new URLSearchParams();
    for (const id of [].concat(personIds)) query.append("person", String(id));
    return request("GET", `v1/photos?${query}`, opts);
  },
  /** A JPEG around one face of a scanned photo (cut by the server), or null when the
   * photo is gone or changed since the scan. scale: the crop's side over the face's. */
  async libraryFaceThumb(faceId, { size = 192, scale = 1.8, ...opts } = {}) {
    try {
      const response = await request(
        "GET",
        `v1/library/faces/${encodeURIComponent(faceId)}/thumbnail`,
        { raw: true, query: { size, scale }, ...opts },
      );
      return await response.blob();
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) return null;
      throw exc;
    }
  },

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
