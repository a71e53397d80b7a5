// Unnamed people: scan server folders, then name each group of faces once, merge two
// groups of one person, or take a face out of a group ("not this person").

import { api, ApiError } from "../api.js";
import { limited } from "../thumbs.js";
import {
  announce,
  confirmDialog,
  errorNotice,
  errorText,
  h,
  icon,
  ICONS,
  pageHead,
  plural,
  spinner,
  UrlBag,
} from "../ui.js";

/** Faces shown per group before "and N more". */
const FACES_SHOWN = 12;
const POLL_MS = 1000;

function fileName(path) {
  return String(path).split(/[\\/]/).pop();
}

/** A face-centred thumbnail <img> of a library face, filled in when `load` runs. */
export function libraryThumb(face, alt, { urls, signal, size = 192, scale = 1.8, tasks }) {
  const holder = h(
    "div",
    { class: "placeholder" },
    icon(ICONS.person, ""),
    h("span", {}, "Loading…"),
  );
  tasks.push(async () => {
    const blob = await api.libraryFaceThumb(face.id, { size, scale, signal });
    if (signal.aborted) return;
    if (!blob) {
      holder.lastChild.textContent = "Photo gone or changed";
      return;
    }
    const img = h("img", { class: "thumb", alt, src: urls.add(blob) });
    img.dataset.face = String(face.id);
    holder.replaceWith(img);
  });
  return holder;
}

function scanText(scan) {
  const files = scan.total ? `${scan.seen} of ${plural(scan.total, "file")}` : `${plural(scan.seen, "file")}`;
  const parts = [
    `${files} looked at`,
    plural(scan.done, "photo") + " scanned",
    scan.failed ? `${scan.failed} unreadable` : null,
    plural(scan.faces, "new face"),
    `${Number(scan.photos_per_s || 0).toFixed(1)} files/s`,
  ];
  return parts.filter(Boolean).join(" · ");
}

const STATE_TEXT = {
  running: "Scanning…",
  done: "Scan done",
  cancelled: "Scan cancelled (what was scanned is kept; scan again to go on)",
  failed: "Scan failed",
};

export async function renderLibrary(ctx) {
  const urls = new UrlBag();
  const controller = new AbortController();
  const signal = controller.signal;
  let pollTimer = null;

  const status = h("div", { id: "library-status", "aria-live": "polite" });

  // ---- scanning ----------------------------------------------------------------------
  const folderInput = h("input", {
    type: "text",
    id: "scan-folder",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "/srv/photos/2024",
    "aria-describedby": "scan-folder-hint",
  });
  const scanButton = h("button", { type: "submit", class: "button primary", id: "scan-start" }, "Scan");
  const scanStatus = h("div", { id: "scan-status", "aria-live": "polite" });

  function showScan(scan) {
    const running = scan.state === "running";
    const bar = h("progress", {
      max: String(Math.max(scan.total, 1)),
      value: String(running ? scan.seen : Math.max(scan.total, 1)),
      "aria-label": "Scan progress",
    });
    if (running && !scan.total) bar.removeAttribute("value"); // still walking the folders
    const cancel = running
      ? h(
          "button",
          {
            type: "button",
            class: "button small",
            id: "scan-cancel",
            onclick: async (event) => {
              event.target.disabled = true;
              try {
                showScan(await api.cancelScan(scan.id));
                announce("Cancelling the scan after the photo it is on.");
              } catch (exc) {
                event.target.disabled = false;
                scanStatus.append(errorNotice(exc));
              }
            },
          },
          "Cancel scan",
        )
      : null;
    scanStatus.replaceChildren(
      h(
        "div",
        { class: `scan-progress ${scan.state}`, dataset: { state: scan.state } },
        h(
          "p",
          { class: "scan-state" },
          running ? spinner("Scanning") : null,
          " ",
          h("strong", {}, STATE_TEXT[scan.state] || scan.state),
          scan.error ? `: ${scan.error}` : "",
        ),
        bar,
        h("p", { class: "muted scan-counts" }, scanText(scan)),
        cancel,
      ),
    );
    scanButton.disabled = running;
  }

  async function follow(scanId) {
    clearTimeout(pollTimer);
    try {
      const scan = await api.getScan(scanId, { signal });
      if (!ctx.isCurrent()) return;
      showScan(scan);
      if (scan.state === "running") {
        pollTimer = setTimeout(() => follow(scanId), POLL_MS);
      } else {
        announce(`${STATE_TEXT[scan.state] || scan.state}. ${scanText(scan)}.`);
        loadClusters();
      }
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      scanStatus.replaceChildren(errorNotice(exc));
      scanButton.disabled = false;
    }
  }

  const scanForm = h(
    "form",
    {
      class: "rename-row",
      id: "scan-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const folder = folderInput.value.trim();
        if (!folder) {
          scanStatus.replaceChildren(h("p", { class: "notice error", role: "alert" }, "Enter a folder on the server."));
          folderInput.focus();
          return;
        }
        scanButton.disabled = true;
        try {
          const scan = await api.startScan([folder]);
          showScan(scan);
          follow(scan.id);
        } catch (exc) {
          scanButton.disabled = false;
          const text =
            exc instanceof ApiError && exc.code === "folder_not_allowed"
              ? `${exc.message}.`
              : exc instanceof ApiError && exc.status === 409
                ? "A scan is already running. Wait for it, or cancel it."
                : errorText(exc);
          scanStatus.replaceChildren(h("p", { class: "notice error", role: "alert" }, text));
        }
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: "scan-folder" }, "Folder on the server"),
      folderInput,
    ),
    scanButton,
  );

  // ---- groups --------------------------------------------------------------------------
  const summary = h("p", { class: "muted", id: "clusters-summary" }, spinner("Loading"), " Loading…");
  const list = h("div", { id: "cluster-list", class: "cluster-list" });
  const names = h("datalist", { id: "people-names" });
  let people = [];

  async function loadPeople() {
    try {
      const page = await api.listPeople({ limit: 500 }, { signal });
      people = page.items || [];
      names.replaceChildren(...people.map((p) => h("option", { value: p.name })));
    } catch {
      people = []; // naming still works with new names
    }
  }

  let listController = null;

  async function loadClusters() {
    listController?.abort();
    listController = new AbortController();
    const mine = listController.signal;
    let listing;
    try {
      [listing] = await Promise.all([api.listClusters({ signal: mine }), loadPeople()]);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      summary.replaceChildren(errorNotice(exc));
      return;
    }
    if (!ctx.isCurrent() || mine.aborted) return;
    urls.clear();
    const clusters = listing.clusters || [];
    const loose = (listing.unclustered || []).length;
    summary.textContent = clusters.length
      ? `${plural(clusters.length, "group")} of faces, largest first` +
        (loose ? ` · ${plural(loose, "face")} in no group (seen once, or unclear)` : "") +
        "."
      : loose
        ? `No group left to name · ${plural(loose, "face")} in no group (seen once, or unclear).`
        : "No unnamed faces. Scan a folder to find the people in your photos.";
    const tasks = [];
    list.replaceChildren(...clusters.map((c) => clusterCard(c, clusters, tasks, mine)));
    limited(tasks, 4);
  }

  function say(message, kind = "ok") {
    status.replaceChildren(h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message));
    announce(typeof message === "string" ? message : message.textContent);
  }

  function clusterCard(cluster, all, tasks, mine) {
    const label = `Group ${cluster.id}`;
    const titleId = `cluster-${cluster.id}-title`;
    const shown = cluster.faces.slice(0, FACES_SHOWN);
    const grid = h(
      "ul",
      { class: "faces-grid cluster-faces" },
      shown.map((face, i) =>
        h(
          "li",
          { class: "face-card", dataset: { face: String(face.id) } },
          libraryThumb(face, `Face ${i + 1} of ${label}, from ${fileName(face.path)}`, {
            urls,
            signal: mine,
            tasks,
          }),
          h(
            "div",
            { class: "body" },
            h("span", { class: "muted file-name", title: face.path }, fileName(face.path)),
            h(
              "button",
              {
                type: "button",
                class: "button small not-this",
                "aria-label": `Not this person: face ${i + 1} of ${label}`,
                onclick: async (event) => {
                  event.target.disabled = true;
                  try {
                    await api.removeClusterFace(cluster.id, face.id);
                    say(`A face of ${fileName(face.path)} was taken out of ${label}; it will not join it again.`);
                    await loadClusters();
                  } catch (exc) {
                    event.target.disabled = false;
                    say(errorText(exc), "error");
                  }
                },
              },
              "Not this person",
            ),
          ),
        ),
      ),
    );
    const more = cluster.size > shown.length ? h("p", { class: "muted" }, `and ${plural(cluster.size - shown.length, "more face")}`) : null;

    const nameId = `cluster-${cluster.id}-name`;
    const nameInput = h("input", {
      type: "text",
      id: nameId,
      list: "people-names",
      autocomplete: "off",
      required: true,
      "aria-describedby": `${nameId}-hint`,
    });
    const nameForm = h(
      "form",
      {
        class: "rename-row name-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const name = nameInput.value.trim();
          if (!name) {
            say("Enter a name for this group.", "error");
            nameInput.focus();
            return;
          }
          const existing = people.find((p) => p.name.toLowerCase() === name.toLowerCase());
          const button = nameForm.querySelector("button");
          button.disabled = true;
          try {
            const result = await api.nameCluster(cluster.id, existing ? { person_id: existing.id } : { name });
            const person = result.person;
            status.replaceChildren(
              h(
                "p",
                { class: "notice ok", role: "status" },
                existing
                  ? `${plural(result.faces, "face")} added to ${person.name}. `
                  : `${person.name} is now enrolled with ${plural(result.faces, "face")}. `,
                h("a", { href: `#/people/${encodeURIComponent(person.id)}` }, `See ${person.name}'s photos`),
              ),
            );
            announce(`${label} named ${person.name}.`);
            await loadClusters();
          } catch (exc) {
            button.disabled = false;
            say(errorText(exc), "error");
          }
        },
      },
      h("div", { class: "field" }, h("label", { for: nameId }, "Who is this?"), nameInput),
      h("button", { type: "submit", class: "button primary" }, "Name"),
      h("p", { class: "hint", id: `${nameId}-hint` }, "A new name, or someone enrolled (their faces are added)."),
    );

    const others = all.filter((c) => c.id !== cluster.id);
    let mergeForm = null;
    if (others.length) {
      const mergeId = `cluster-${cluster.id}-merge`;
      const select = h(
        "select",
        { id: mergeId },
        others.map((c) => h("option", { value: String(c.id) }, `Group ${c.id} (${plural(c.size, "face")})`)),
      );
      mergeForm = h(
        "form",
        {
          class: "rename-row merge-form",
          onsubmit: async (event) => {
            event.preventDefault();
            const fromId = select.value;
            const ok = await confirmDialog({
              title: `Merge group ${fromId} into ${label}?`,
              body: `Every face of group ${fromId} joins ${label}. A face that is not this person can be taken out again.`,
              confirmLabel: "Merge",
            });
            if (!ok) return;
            const button = mergeForm.querySelector("button");
            button.disabled = true;
            try {
              const merged = await api.mergeClusters(cluster.id, fromId);
              say(`Group ${fromId} merged into ${label}: ${plural(merged.size, "face")}.`);
              await loadClusters();
            } catch (exc) {
              button.disabled = false;
              say(errorText(exc), "error");
            }
          },
        },
        h("div", { class: "field" }, h("label", { for: mergeId }, "Same person as"), select),
        h("button", { type: "submit", class: "button" }, "Merge"),
      );
    }

    return h(
      "section",
      { class: "card cluster-card", "aria-labelledby": titleId, dataset: { cluster: String(cluster.id), size: String(cluster.size) } },
      h("h2", { id: titleId }, label, h("span", { class: "muted" }, ` · ${plural(cluster.size, "face")}`)),
      grid,
      more,
      h("div", { class: "cluster-actions" }, nameForm, mergeForm),
    );
  }

  ctx.main.append(
    pageHead(
      "Unnamed people",
      "Faces found in your scanned photos, grouped by person. Name a group once: its faces are enrolled, and later scans recognise that person.",
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "scan-title", id: "scan-card" },
      h("h2", { id: "scan-title" }, "Scan photos"),
      scanForm,
      h(
        "p",
        { class: "hint", id: "scan-folder-hint" },
        "A folder on the server's disk, under one of its library roots (FACEINDEX_LIBRARY_ROOTS). " +
          "Photos scanned before are skipped unless they changed.",
      ),
      scanStatus,
    ),
    status,
    h("section", { "aria-labelledby": "groups-title", class: "groups" }, h("h2", { id: "groups-title" }, "Groups to name"), summary, list, names),
  );

  // A scan started elsewhere (or before a reload) is followed here.
  api
    .listScans({ signal })
    .then((found) => {
      const latest = (found.items || [])[0];
      if (!latest || !ctx.isCurrent()) return;
      showScan(latest);
      if (latest.state === "running") follow(latest.id);
    })
    .catch(() => undefined);
  await loadClusters();

  return () => {
    clearTimeout(pollTimer);
    controller.abort();
    listController?.abort();
    urls.clear();
  };
}
