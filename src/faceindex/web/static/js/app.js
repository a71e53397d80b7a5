// Entry point: hash routing, the API key dialog and the server status line.

import { api, ApiError, getKey, getKeyStatus, setKey } from "./api.js";
import { announce, errorText, KEY_COMMAND } from "./ui.js";
import { renderPeople } from "./views/people.js";
import { renderPerson } from "./views/person.js";
import { renderLibrary } from "./views/library.js";
import { renderEnrol } from "./views/enrol.js";
import { renderRecognise } from "./views/recognise.js";
import { renderVerify } from "./views/verify.js";
import { renderCloak } from "./views/cloak.js";
import { renderMonitors } from "./views/monitors.js";
import { renderAudit, renderKeys } from "./views/admin.js";
import { renderSettings } from "./views/settings.js";

const ROUTES = [
  { pattern: /^\/people\/?$/, nav: "people", title: "People", render: renderPeople },
  { pattern: /^\/people\/([^/]+)$/, nav: "people", title: "Person", render: renderPerson },
  { pattern: /^\/library\/?$/, nav: "library", title: "Unnamed people", render: renderLibrary },
  { pattern: /^\/enrol\/?$/, nav: "enrol", title: "Enrol", render: renderEnrol },
  { pattern: /^\/recognise\/?$/, nav: "recognise", title: "Recognise", render: renderRecognise },
  { pattern: /^\/verify\/?$/, nav: "verify", title: "Verify", render: renderVerify },
  { pattern: /^\/protect\/?$/, nav: "protect", title: "Protect a photo", render: renderCloak },
  { pattern: /^\/monitors\/?$/, nav: "monitors", title: "Monitors", render: renderMonitors },
  { pattern: /^\/audit\/?$/, nav: "audit", title: "Audit log", render: renderAudit },
  { pattern: /^\/keys\/?$/, nav: "keys", title: "API keys", render: renderKeys },
  { pattern: /^\/settings\/?$/, nav: "settings", title: "Settings", render: renderSettings },
];

const state = {
  authRequired: null,
  health: null,
  cleanup: null,
  renderId: 0,
  focusHeading: false,
  flash: "",
};

/** Parse "#/people/3?x=1" into {path: "/people/3", params: URLSearchParams}. */
function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/people";
  const [path, query = ""] = hash.split("?");
  return { path, params: new URLSearchParams(query) };
}

/** Go to a page; `flash` is a message shown (and announced) at the top of that page. */
export function navigate(hash, flash = "") {
  state.flash = flash;
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const { path, params } = currentRoute();
  const match = ROUTES.map((r) => ({ r, m: path.match(r.pattern) })).find((x) => x.m);
  if (!match) {
    location.replace("#/people");
    return;
  }
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch {
      // A page's cleanup failing must not block the next page.
    }
    state.cleanup = null;
  }
  const renderId = ++state.renderId;
  const main = document.getElementById("main");
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.route === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  document.title = `${match.r.title} · faceindex`;
  const ctx = {
    main,
    params,
    navigate,
    isCurrent: () => renderId === state.renderId,
    setTitle: (title) => {
      if (renderId === state.renderId) document.title = `${title} · faceindex`;
    },
  };
  try {
    const cleanup = await match.r.render(ctx, ...match.m.slice(1).map(decodeURIComponent));
    if (renderId === state.renderId) state.cleanup = typeof cleanup === "function" ? cleanup : null;
    else if (typeof cleanup === "function") cleanup();
  } catch (exc) {
    if (renderId !== state.renderId) return;
    main.replaceChildren();
    const p = document.createElement("p");
    p.className = "notice error";
    p.setAttribute("role", "alert");
    p.textContent = errorText(exc);
    main.append(p);
  }
  if (renderId === state.renderId && state.flash) {
    const note = document.createElement("p");
    note.className = "notice ok flash";
    note.setAttribute("role", "status");
    note.textContent = state.flash;
    const head = main.querySelector(".page-head");
    if (head) head.after(note);
    else main.prepend(note);
    state.flash = "";
  }
  if (renderId === state.renderId && state.focusHeading) {
    const heading = main.querySelector("h1");
    if (heading) heading.focus({ preventScroll: false });
  }
  state.focusHeading = true;
}

// ---- API key dialog ----------------------------------------------------------------

function openSettings(reason = "") {
  const dialog = document.getElementById("settings-dialog");
  const input = document.getElementById("api-key");
  const reasonEl = document.getElementById("settings-reason");
  reasonEl.hidden = !reason;
  reasonEl.textContent = reason;
  renderHelp();
  input.value = getKey();
  input.type = "password";
  document.getElementById("show-key").checked = false;
  if (!dialog.open) dialog.showModal();
  input.focus();
}

function renderHelp() {
  const help = document.getElementById("settings-help");
  help.textContent =
    state.authRequired === false
      ? "This server runs without authentication: no key is needed. A key saved here is " +
        "sent anyway, which does no harm."
      : "This server asks for an API key. Paste the key you were given; it is kept in this " +
        "tab only (until you close it) and sent with every request.";
  document.getElementById("key-command").textContent = KEY_COMMAND;
}

function setupSettings() {
  const dialog = document.getElementById("settings-dialog");
  const input = document.getElementById("api-key");
  document.getElementById("open-settings").addEventListener("click", () => openSettings());
  document.getElementById("show-key").addEventListener("change", (event) => {
    input.type = event.target.checked ? "text" : "password";
  });
  document.getElementById("cancel-settings").addEventListener("click", () => dialog.close());
  document.getElementById("forget-key").addEventListener("click", () => {
    setKey("");
    input.value = "";
    dialog.close();
    announce("API key forgotten.");
    updateKeyButton();
  });
  document.getElementById("settings-form").addEventListener("submit", async (event) => {
    // The key is tried at once: the dialog closes only when the server accepts it.
    event.preventDefault();
    const key = input.value.trim();
    const save = document.getElementById("save-key");
    setKey(key);
    updateKeyButton();
    if (key) {
      save.disabled = true;
      try {
        await api.checkKey();
      } catch (exc) {
        if (exc instanceof ApiError && exc.status === 401) {
          state.authRequired = true; // whatever /v1/health said
          renderServerInfo();
          renderHelp();
          showReason(
            "The server rejected this key (401): it is unknown, revoked or mistyped. " +
              "Check it, or ask for a new one.",
          );
          announce("API key rejected.");
          input.focus();
          input.select();
          return;
        }
        // 403 (a key without the read scope) or no server: the key itself is not refused.
      } finally {
        save.disabled = false;
      }
    }
    dialog.close();
    announce(key ? "API key saved." : "API key cleared.");
    showBanner("");
    route();
  });
  window.addEventListener("key-status", () => updateKeyButton());
  dialog.addEventListener("close", () => document.getElementById("open-settings").focus());

  window.addEventListener("auth-required", (event) => {
    const exc = event.detail;
    // Whatever /v1/health said, this server wants a key now.
    state.authRequired = true;
    updateKeyButton();
    renderServerInfo();
    const message =
      exc instanceof ApiError && exc.status === 403
        ? "The server refused this API key (403). Check the key, or use one with more rights."
        : getKey()
          ? "The server rejected the saved API key (401). Enter a valid key."
          : "The server needs an API key (401). Enter it below.";
    openSettings(message);
  });
}

function showReason(message) {
  const reasonEl = document.getElementById("settings-reason");
  reasonEl.hidden = !message;
  reasonEl.textContent = message;
}

/** ✓ only once a call with the key succeeded; ✗ once the server answered 401 to it. */
function updateKeyButton() {
  const button = document.getElementById("open-settings");
  const status = getKeyStatus();
  const text = {
    none: ["API key", "API key settings (no key saved)"],
    unverified: ["API key …", "API key settings (a key is saved, not checked yet)"],
    ok: ["API key ✓", "API key settings (the server accepted the key)"],
    rejected: ["API key ✗ rejected", "API key settings (the server rejected the key)"],
  }[status];
  button.textContent = text[0];
  button.setAttribute("aria-label", text[1]);
  button.dataset.keyStatus = status;
  button.hidden = state.authRequired === false && status === "none";
}

function renderServerInfo() {
  const health = state.health;
  if (!health) return;
  document.getElementById("server-info").textContent =
    `faceindex ${health.version || ""} · server ${health.status || "ok"}` +
    (state.authRequired ? " · API key required" : " · no API key needed");
}

function showBanner(message) {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

async function checkHealth() {
  const info = document.getElementById("server-info");
  try {
    const health = await api.health();
    state.authRequired = health && health.auth !== false;
    state.health = health;
    renderServerInfo();
    showBanner("");
    updateKeyButton();
    if (state.authRequired && !getKey()) {
      openSettings("This server needs an API key before it can be used.");
    }
  } catch (exc) {
    info.textContent = "Server not reachable";
    showBanner(errorText(exc));
    updateKeyButton();
  }
}

function start() {
  setupSettings();
  updateKeyButton();
  window.addEventListener("hashchange", () => route());
  state.focusHeading = false; // Do not steal focus on the first load.
  if (!location.hash) location.replace("#/people");
  route();
  checkHealth();
}

start();
