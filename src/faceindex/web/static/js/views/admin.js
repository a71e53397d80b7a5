// Administration pages: the audit log and the API keys (both need the admin scope).

import { api } from "../api.js";
import {
  announce,
  confirmDialog,
  errorNotice,
  errorText,
  formatDate,
  h,
  labelCells,
  KEY_COMMAND,
  pageHead,
  plural,
  spinner,
} from "../ui.js";

// ---- audit log -----------------------------------------------------------------------

function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  const empty = (v) => v === null || v === "" || (Array.isArray(v) && !v.length);
  return Object.entries(details)
    .filter(([, v]) => !empty(v))
    .map(([k, v]) => `${k.replaceAll("_", " ")}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" · ");
}

export async function renderAudit(ctx) {
  const action = h("input", { type: "text", id: "audit-action", autocomplete: "off", placeholder: "enroll, identify, delete…", value: ctx.params.get("action") || "" });
  const personId = h("input", { type: "number", id: "audit-person", min: "1", inputmode: "numeric", value: ctx.params.get("person_id") || "" });
  const limit = h(
    "select",
    { id: "audit-limit" },
    ["50", "100", "500", "1000"].map((n) => h("option", { value: n }, n)),
  );
  limit.value = "50";
  const summary = h("p", { class: "muted", id: "audit-summary" });
  const body = h("tbody", {});
  const results = h(
    "div",
    { "aria-live": "polite" },
    summary,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data cards", id: "audit-table" },
        h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Person", "Decision", "Details"].map((t) => h("th", { scope: "col" }, t)))),
        body,
      ),
    ),
  );

  ctx.main.append(
    pageHead("Audit log", "Who did what, newest first: enrolments, searches, deletions, keys."),
    h(
      "form",
      { class: "search-row card", onsubmit: (e) => (e.preventDefault(), load()) },
      h("div", { class: "field" }, h("label", { for: "audit-action" }, "Action"), action),
      h("div", { class: "field" }, h("label", { for: "audit-person" }, "Person ID"), personId),
      h("div", { class: "field narrow" }, h("label", { for: "audit-limit" }, "Show"), limit),
      h("button", { type: "submit", class: "button" }, "Filter"),
    ),
    results,
  );

  async function load() {
    summary.replaceChildren(spinner("Loading"), " Loading…");
    const query = { action: action.value.trim(), person_id: personId.value.trim(), limit: limit.value };
    let items;
    try {
      items = (await api.audit(query)).items || [];
    } catch (exc) {
      if (!ctx.isCurrent()) return;
      summary.replaceChildren(errorNotice(exc));
      body.replaceChildren();
      return;
    }
    if (!ctx.isCurrent()) return;
    summary.textContent = items.length ? `${plural(items.length, "event")}, newest first.` : "No event matches.";
    body.replaceChildren(
      ...items.map((ev) =>
        h(
          "tr",
          {},
          h("td", { class: "nowrap" }, formatDate(ev.at)),
          h("td", {}, ev.actor),
          h("td", {}, h("code", {}, ev.action)),
          h("td", {}, ev.person_id ? h("a", { href: `#/people/${encodeURIComponent(ev.person_id)}` }, `#${ev.person_id}`) : "–"),
          h("td", {}, ev.decision || "–"),
          h("td", { class: "wrap" }, detailsText(ev.details)),
        ),
      ),
    );
    labelCells(body.closest("table"));
  }
  await load();
}

// ---- API keys ------------------------------------------------------------------------

const SCOPES = [
  ["read", "read: look at people, recognise, verify"],
  ["write", "write: enrol, rename, merge, delete"],
  ["admin", "admin: keys, audit log, monitors, export and import"],
];

export async function renderKeys(ctx) {
  const summary = h("p", { class: "muted", id: "keys-summary" });
  const body = h("tbody", {});
  const nameInput = h("input", { type: "text", id: "key-name", autocomplete: "off", maxlength: "100" });
  const scopeBoxes = SCOPES.map(([scope]) => h("input", { type: "checkbox", id: `scope-${scope}`, value: scope, checked: scope !== "admin" }));
  const created = h("div", { id: "key-created", "aria-live": "polite" });
  const createForm = h(
    "form",
    { class: "stack", novalidate: true, onsubmit: (e) => create(e) },
    h("div", { class: "field" }, h("label", { for: "key-name" }, "Who or what the key is for"), nameInput),
    h(
      "fieldset",
      {},
      h("legend", {}, "Scopes"),
      h(
        "div",
        { class: "choices stacked" },
        SCOPES.map(([, label], i) => h("label", { class: "inline", for: scopeBoxes[i].id }, scopeBoxes[i], label)),
      ),
    ),
    h("div", { class: "actions start" }, h("button", { type: "submit", class: "button primary", id: "key-create" }, "Create key")),
    created,
  );

  ctx.main.append(
    pageHead("API keys", "Keys that programs and people use to call this server."),
    h(
      "section",
      { class: "card", "aria-labelledby": "keys-title" },
      h("h2", { id: "keys-title" }, "Keys"),
      summary,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data cards", id: "keys-table" },
          h("thead", {}, h("tr", {}, ["Name", "Scopes", "Created", "Last used", "State", ""].map((t) => h("th", { scope: "col" }, t)))),
          body,
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "create-title" },
      h("h2", { id: "create-title" }, "Create a key"),
      h("p", { class: "muted" }, "The same as ", h("code", {}, KEY_COMMAND), " on the server. The secret is shown once: only its hash is stored."),
      createForm,
    ),
  );

  async function load() {
    let items;
    try {
      items = (await api.listKeys()).items || [];
    } catch (exc) {
      if (!ctx.isCurrent()) return;
      summary.replaceChildren(errorNotice(exc));
      return;
    }
    if (!ctx.isCurrent()) return;
    const active = items.filter((k) => !k.revoked_at).length;
    summary.textContent = items.length ? `${plural(items.length, "key")}, ${active} in use.` : "No key yet.";
    body.replaceChildren(
      ...items.map((k) =>
        h(
          "tr",
          { dataset: { key: String(k.id) } },
          h("td", {}, k.name),
          h("td", {}, (k.scopes || []).join(", ")),
          h("td", { class: "nowrap" }, formatDate(k.created_at)),
          h("td", { class: "nowrap" }, k.last_used_at ? formatDate(k.last_used_at) : "never"),
          h("td", {}, k.revoked_at ? h("span", { class: "badge bad" }, "Revoked") : h("span", { class: "badge ok" }, "Active")),
          h(
            "td",
            {},
            k.revoked_at
              ? null
              : h("button", { type: "button", class: "button small danger", "aria-label": `Revoke the key ${k.name}`, onclick: () => revoke(k) }, "Revoke…"),
          ),
        ),
      ),
    );
    labelCells(body.closest("table"));
  }

  async function create(event) {
    event.preventDefault();
    created.replaceChildren();
    const name = nameInput.value.trim();
    const scopes = scopeBoxes.filter((b) => b.checked).map((b) => b.value);
    if (!name) {
      created.append(h("p", { class: "notice error", role: "alert" }, "Enter a name for the key."));
      nameInput.focus();
      return;
    }
    if (!scopes.length) {
      created.append(h("p", { class: "notice error", role: "alert" }, "Choose at least one scope."));
      return;
    }
    const button = createForm.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const answer = await api.createKey(name, scopes);
      const secret = h("input", { type: "text", readonly: true, id: "key-secret", value: answer.secret, spellcheck: "false" });
      created.replaceChildren(
        h(
          "div",
          { class: "notice ok", role: "status" },
          h("p", {}, `Key “${answer.key.name}” created (${answer.key.scopes.join(", ")}). Copy the secret now: it is not shown again.`),
          h("label", { for: "key-secret" }, "Secret"),
          h(
            "div",
            { class: "rename-row" },
            h("div", { class: "field" }, secret),
            h(
              "button",
              {
                type: "button",
                class: "button",
                onclick: async () => {
                  secret.select();
                  try {
                    await navigator.clipboard.writeText(answer.secret);
                    announce("Secret copied.");
                  } catch {
                    announce("Select the secret and copy it.");
                  }
                },
              },
              "Copy",
            ),
          ),
        ),
      );
      nameInput.value = "";
      await load();
      secret.focus();
      secret.select();
    } catch (exc) {
      created.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      button.disabled = false;
    }
  }

  async function revoke(key) {
    const ok = await confirmDialog({
      title: `Revoke the key “${key.name}”?`,
      body: "Every program using it is refused from the next request on. This cannot be undone.",
      confirmLabel: "Revoke key",
    });
    if (!ok) return;
    try {
      await api.revokeKey(key.id);
      announce(`Key ${key.name} revoked.`);
    } catch (exc) {
      summary.replaceChildren(errorNotice(exc));
      return;
    }
    await load();
  }

  await load();
}
