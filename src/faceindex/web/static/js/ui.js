// Small DOM helpers shared by the pages: element builder, announcements, dialogs, wording.

import { ApiError } from "./api.js";

/**
 * Build an element: h("button", {class: "button", onclick: fn}, "Save").
 * Attributes starting with "on" become listeners; false/null/undefined are skipped;
 * children are strings, nodes, arrays or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : value);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An inline SVG icon from path data (no external files, no fonts). */
export function icon(pathData, className = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", pathData);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

export const ICONS = {
  upload: "M12 16V4m0 0-4 4m4-4 4 4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3",
  person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8c.9-3.5 3.7-5.5 7-5.5s6.1 2 7 5.5",
  camera:
    "M4 8h3l2-3h6l2 3h3a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V9a1 1 0 0 1 1-1zm8 9a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
};

/** Say something to screen-reader users (the page's polite live region). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node in a later task is what makes screen readers repeat a message.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** The heading every page starts with; it receives focus after navigation. */
export function pageHead(title, lead, ...extra) {
  return h(
    "div",
    { class: "page-head" },
    h("div", {}, h("h1", { tabindex: "-1" }, title), lead ? h("p", { class: "lead" }, lead) : null),
    extra.length ? h("div", { class: "actions start" }, extra) : null,
  );
}

export function spinner(label = "Working") {
  return h("span", { class: "spinner", role: "img", "aria-label": label });
}

// ---- wording -----------------------------------------------------------------------

const REASONS = {
  no_face: "No face was found in this photo.",
  several_faces: "More than one face of similar size is in this photo; use one where this person's face is clearly the main one.",
  multiple_faces: "More than one face is in this photo; use a photo of this person alone.",
  too_small: "The face is too small; use a closer or larger photo.",
  blurry: "The photo is blurry; use a sharper one.",
  too_dark: "The face is too dark; use a better-lit photo.",
  too_bright: "The face is too bright or washed out.",
  extreme_pose: "The head is turned too far; use a photo facing the camera.",
  cut_off: "Part of the face is cut off by the edge of the photo.",
  quality_too_low: "The face is not clear enough to recognise.",
  already_enrolled: "This exact photo is already enrolled for this person.",
  duplicate_of_other_person: "This exact photo is already enrolled for someone else.",
  not_embedded: "The face could not be processed.",
  image_decode_error: "This file could not be read as an image.",
  image_too_large: "The image is too large for the server.",
  invalid_input: "This file is not a usable image.",
  spoof_detected: "The photo looks like a photo of a photo or a screen.",
  matches_other_person: "This face matches another enrolled person better.",
  unlike_this_person: "This face does not match this person's other photos.",
  unsupported_media_type: "This file type is not supported; use a JPEG, PNG or WebP photo.",
  payload_too_large: "This file is too large for the server.",
  not_sent: "Not sent: the enrolment stopped before this photo.",
  unreachable: "The server could not be reached.",
  rate_limited: "The server is busy (too many requests); try again in a moment.",
};

/** How to get a key, as the CLI spells it (faceindex keys create --help). */
export const KEY_COMMAND = "faceindex keys create --name NAME --scopes read,write";

const SCOPE_NEEDS = {
  read: "looking at the gallery",
  write: "enrolling, renaming, merging and deleting",
  admin: "administration (keys, audit log, monitors, export and import)",
};

/** The words for a 403: which scope is missing and how to get a key that has it. */
export function scopeText(scope) {
  const what = SCOPE_NEEDS[scope] ? ` (needed for ${SCOPE_NEEDS[scope]})` : "";
  const scopes = scope === "admin" ? "admin" : scope === "write" ? "read,write" : "read";
  return (
    `This API key lacks the ${scope} scope${what}. Use a key that has it; an administrator ` +
    `makes one with: faceindex keys create --name NAME --scopes ${scopes}`
  );
}

/** A reason code from the server ("too_dark") in plain words. */
export function reasonText(code) {
  if (REASONS[code]) return REASONS[code];
  const words = String(code).replaceAll("_", " ").replaceAll("-", " ").trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) + "." : "Unknown reason.";
}

/** An enrolment flag ("closer_to_other_person:12") as words and an optional person link. */
export function flagText(flag) {
  const [kind, id] = String(flag).split(":");
  const link = id ? h("a", { href: `#/people/${encodeURIComponent(id)}` }, "that person") : null;
  if (kind === "closer_to_other_person") {
    return [
      "Accepted, but this face looks more like another enrolled person (",
      link,
      ") than like this person's other photos. Check it is the right person.",
    ];
  }
  if (kind === "unlike_this_person") {
    return ["Accepted on request, but this face does not match this person's other photos. Check it is the right person."];
  }
  if (kind === "matches_other_person") {
    return [
      "Accepted, but this face also matches another enrolled person (",
      link,
      "). Check it is the right person.",
    ];
  }
  if (kind === "ignored_faces") {
    const n = Number(id) || 0;
    return [`The main face was enrolled; ${n} smaller face${n === 1 ? "" : "s"} in the background ${n === 1 ? "was" : "were"} ignored.`];
  }
  if (kind === "crop_fallback") {
    return ["No face was detected, so the whole image was taken as a tight face crop."];
  }
  return [reasonText(kind)];
}

const ERROR_TEXT = {
  unreachable: "The faceindex server could not be reached. Is it running?",
  no_face: "No face was found in the photo.",
  multiple_faces: "More than one face is in the photo.",
  image_decode_error: "The file could not be read as an image.",
  image_too_large: "The image is too large for the server.",
  quality_too_low: "The face is not clear enough to compare.",
  embedding_model_mismatch:
    "The gallery was built with a different recognition model than the server uses.",
  model_unavailable: "A recognition model is not installed on the server.",
  liveness_required: "The liveness check was not passed for this face.",
  spoof_detected: "The face looks like a photo or a screen held to the camera.",
  too_many_sessions: "The server is running too many liveness checks; try again shortly.",
};

/** A caught error in words for the user. */
export function errorText(exc) {
  if (exc instanceof ApiError) {
    if (exc.isAuth) {
      if (exc.status === 401) {
        return "The server needs a valid API key. Enter it in the API key dialog.";
      }
      return exc.missingScope
        ? scopeText(exc.missingScope)
        : `The server refused this request (403: ${exc.message}).`;
    }
    const known = ERROR_TEXT[exc.code];
    if (known && exc.message && !exc.message.startsWith(String(exc.status))) {
      return `${known} (${exc.message})`;
    }
    return known || exc.message || "The server refused the request.";
  }
  return (exc && exc.message) || String(exc);
}

/** A notice element for an error, with role="alert" so it is read at once. */
export function errorNotice(exc) {
  return h("p", { class: "notice error", role: "alert" }, errorText(exc));
}

export function formatSimilarity(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "–";
}

export function formatDate(value) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : parts[0] || "?";
  return letters.slice(0, 2).toUpperCase();
}

// ---- dialogs -----------------------------------------------------------------------

/**
 * Ask for confirmation in the page's modal dialog; resolves true only on the confirm button.
 * The Cancel button is focused first so that Enter never deletes by accident.
 */
export function confirmDialog({ title, body, confirmLabel = "Delete" }) {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-body").textContent = body;
  dialog.querySelector("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), {
      once: true,
    });
    dialog.showModal();
    dialog.querySelector("#confirm-cancel").focus();
  });
}

// ---- file inputs -------------------------------------------------------------------

/**
 * A drop zone: a real file input (keyboard and screen-reader usable) inside a label that
 * also accepts dragged files. onFiles receives an array of image Files.
 */
export function dropZone({ id, label, hint, multiple = false, onFiles }) {
  const input = h("input", {
    type: "file",
    id,
    accept: "image/*",
    multiple,
    "aria-describedby": `${id}-hint`,
  });
  const zone = h(
    "label",
    { class: "dropzone", for: id },
    icon(ICONS.upload),
    h("span", { class: "big" }, label),
    h("span", { class: "hint", id: `${id}-hint` }, hint),
    input,
  );
  const take = (fileList) => {
    const files = [...fileList].filter((f) => !f.type || f.type.startsWith("image/"));
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  };
  input.addEventListener("change", () => {
    take(input.files);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    take(event.dataTransfer.files);
  });
  return zone;
}

/** Give each body cell its column's heading as data-label (for the small-screen layout). */
export function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (heads[i]) cell.dataset.label = heads[i];
    });
  }
}

// ---- face crops --------------------------------------------------------------------

/** Decode a Blob (or File) into an ImageBitmap-like source with width/height. */
export async function loadImage(blob) {
  if (window.createImageBitmap) {
    try {
      return await createImageBitmap(blob, { imageOrientation: "from-image" });
    } catch {
      // Fall back to an <img> below.
    }
  }
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/**
 * A square region around a face box ([x1, y1, x2, y2] in image pixels): `scale` times the
 * larger side of the box, centred on it and kept inside the image where it can be.
 */
export function faceRegion(bbox, width, height, scale = 1.8) {
  const [x1, y1, x2, y2] = bbox.map(Number);
  const side = Math.min(Math.max(x2 - x1, y2 - y1) * scale, width, height);
  const cx = (x1 + x2) / 2;
  const cy = (y1 + y2) / 2;
  const sx = Math.min(Math.max(0, cx - side / 2), Math.max(0, width - side));
  const sy = Math.min(Math.max(0, cy - side / 2), Math.max(0, height - side));
  return { sx, sy, side };
}

/**
 * Crop a photo around a face into a new JPEG Blob (`size` px square, or the region's own
 * size when `size` is 0). Without a box the crop is centred a little above the middle, where
 * faces usually are.
 */
export async function cropFace(blob, bbox, { size = 256, scale = 1.8 } = {}) {
  const source = await loadImage(blob);
  const width = source.width;
  const height = source.height;
  const box =
    Array.isArray(bbox) && bbox.length === 4 && bbox.every((v) => Number.isFinite(Number(v)))
      ? bbox
      : [width * 0.3, height * 0.15, width * 0.7, height * 0.55];
  const { sx, sy, side } = faceRegion(box, width, height, scale);
  const out = document.createElement("canvas");
  out.width = out.height = size || Math.max(1, Math.round(side));
  out.getContext("2d").drawImage(source, sx, sy, side, side, 0, 0, out.width, out.height);
  if (source.close) source.close();
  return new Promise((resolve, reject) =>
    out.toBlob((b) => (b ? resolve(b) : reject(new Error("crop failed"))), "image/jpeg", 0.9),
  );
}

/** Object URLs made by a page, revoked together when the page is left. */
export class UrlBag {
  constructor() {
    this.urls = new Set();
  }

  add(blob) {
    const u = URL.createObjectURL(blob);
    this.urls.add(u);
    return u;
  }

  revoke(u) {
    if (this.urls.delete(u)) URL.revokeObjectURL(u);
  }

  clear() {
    for (const u of this.urls) URL.revokeObjectURL(u);
    this.urls.clear();
  }
}
