// People: the list (search, paging) and one person's page (faces, rename, delete).

import { api, ApiError } from "../api.js";
import {
  announce,
  confirmDialog,
  errorNotice,
  errorText,
  formatDate,
  formatSimilarity,
  h,
  icon,
  ICONS,
  initials,
  pageHead,
  plural,
  spinner,
  UrlBag,
} from "../ui.js";

const PAGE_SIZE = 50;

function count(value) {
  if (Array.isArray(value)) return value.length;
  return typeof value === "number" ? value : 0;
}

// ---- the list ----------------------------------------------------------------------

export async function renderPeople(ctx) {
  const search = ctx.params.get("search") || "";
  let offset = Math.max(0, Number.parseInt(ctx.params.get("offset") || "0", 10) || 0);

  const input = h("input", {
    type: "search",
    id: "people-search",
    name: "search",
    value: search,
    autocomplete: "off",
    placeholder: "Type a name",
  });
  const summary = h("p", { class: "muted", id: "people-summary" });
  const list = h("ul", { class: "people-list", id: "people-list", "aria-describedby": "people-summary" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of people" });
  const results = h("div", { "aria-live": "polite", "aria-busy": "false" }, summary, list, pager);

  ctx.main.append(
    pageHead(
      "People",
      "Everyone enrolled in this gallery.",
      h("a", { class: "button primary", href: "#/enrol" }, "Enrol someone"),
    ),
    h(
      "form",
      { role: "search", class: "search-row", onsubmit: (e) => (e.preventDefault(), load(0)) },
      h(
        "div",
        { class: "field" },
        h("label", { for: "people-search" }, "Search by name"),
        input,
      ),
      h("button", { type: "submit", class: "button" }, "Search"),
    ),
    results,
  );

  let controller = null;
  let timer = null;

  async function load(newOffset) {
    offset = newOffset;
    const term = input.value.trim();
    const query = new URLSearchParams();
    if (term) query.set("search", term);
    if (offset) query.set("offset", String(offset));
    const hash = `#/people${query.toString() ? `?${query}` : ""}`;
    // replaceState keeps the search in the address (back button, reload) without re-rendering.
    if (location.hash !== hash) history.replaceState(null, "", hash);

    controller?.abort();
    controller = new AbortController();
    results.setAttribute("aria-busy", "true");
    summary.replaceChildren(spinner("Loading"), " Loading…");
    try {
      const page = await api.listPeople(
        { search: term, offset, limit: PAGE_SIZE },
        { signal: controller.signal },
      );
      if (!ctx.isCurrent()) return;
      showPage(page, term);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      summary.replaceChildren(errorNotice(exc));
      list.replaceChildren();
      pager.replaceChildren();
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  function showPage(page, term) {
    const items = page.items || [];
    const total = page.total ?? items.length;
    if (!items.length && offset > 0 && total > 0) {
      load(Math.max(0, total - PAGE_SIZE));
      return;
    }
    if (!total) {
      summary.textContent = term
        ? `No one's name matches “${term}”.`
        : "No one is enrolled yet. Use Enrol to add the first person.";
    } else {
      const first = offset + 1;
      const last = offset + items.length;
      summary.textContent =
        total > items.length
          ? `Showing ${first}–${last} of ${plural(total, "person", "people")}${term ? ` matching “${term}”` : ""}.`
          : `${plural(total, "person", "people")}${term ? ` matching “${term}”` : ""}.`;
    }
    list.replaceChildren(
      ...items.map((person) => {
        const faces = count(person.templates);
        const photos = count(person.photos);
        return h(
          "li",
          {},
          h(
            "a",
            { href: `#/people/${encodeURIComponent(person.id)}` },
            h("span", { class: "avatar", "aria-hidden": "true" }, initials(person.name)),
            h(
              "span",
              {},
              h("span", { class: "person-name" }, person.name),
              h(
                "span",
                { class: "person-meta" },
                plural(faces, "face"),
                photos ? ` · ${plural(photos, "photo")} kept` : "",
                person.external_id ? ` · ${person.external_id}` : "",
              ),
            ),
          ),
        );
      }),
    );
    pager.replaceChildren();
    if (total > PAGE_SIZE) {
      pager.append(
        h(
          "button",
          {
            type: "button",
            class: "button",
            disabled: offset === 0,
            onclick: () => load(Math.max(0, offset - PAGE_SIZE)),
          },
          "← Previous",
        ),
        h("span", { class: "muted" }, `Page ${Math.floor(offset / PAGE_SIZE) + 1} of ${Math.ceil(total / PAGE_SIZE)}`),
        h(
          "button",
          {
            type: "button",
            class: "button",
            disabled: offset + PAGE_SIZE >= total,
            onclick: () => load(offset + PAGE_SIZE),
          },
          "Next →",
        ),
      );
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(0), 250);
  });

  await load(offset);
  return () => {
    clearTimeout(timer);
    controller?.abort();
  };
}

// ---- one person --------------------------------------------------------------------

const PLACEHOLDER_PATH = ICONS.person;

export async function renderPerson(ctx, id) {
  const urls = new UrlBag();
  const controller = new AbortController();
  const loading = h("p", { class: "muted" }, spinner("Loading"), " Loading…");
  ctx.main.append(loading);

  let person;
  let faces;
  try {
    [person, faces] = await Promise.all([
      api.getPerson(id, { signal: controller.signal }),
      api.listFaces(id, { signal: controller.signal }),
    ]);
  } catch (exc) {
    if (!ctx.isCurrent()) return undefined;
    loading.remove();
    if (exc instanceof ApiError && exc.status === 404) {
      ctx.main.append(
        pageHead("Person not found"),
        h("p", {}, "This person does not exist; they may have been deleted."),
        h("p", {}, h("a", { href: "#/people" }, "Back to people")),
      );
      return undefined;
    }
    throw exc;
  }
  if (!ctx.isCurrent()) return undefined;
  loading.remove();
  ctx.setTitle(person.name);

  const items = (faces && faces.items) || [];
  const title = h("h1", { tabindex: "-1", id: "person-name" }, person.name);
  const facesCount = h("span", {}, plural(items.length, "enrolled face"));
  ctx.main.append(
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("p", { class: "lead" }, h("a", { href: "#/people" }, "← People")),
        title,
        h("p", { class: "lead" }, facesCount, ` · enrolled ${formatDate(person.created_at)}`),
      ),
      h(
        "div",
        { class: "actions start" },
        h(
          "a",
          { class: "button primary", href: `#/enrol?person=${encodeURIComponent(person.id)}` },
          "Add photos",
        ),
      ),
    ),
  );

  // Faces
  const grid = h("ul", { class: "faces-grid", id: "faces" });
  const facesSection = h(
    "section",
    { class: "card", "aria-labelledby": "faces-title" },
    h("h2", { id: "faces-title" }, "Enrolled faces"),
    grid,
  );
  /** Thumbnail object URLs by face id (promises), so re-rendering fetches nothing. */
  const thumbs = new Map();
  const renderFaces = () => {
    facesCount.textContent = plural(items.length, "enrolled face");
    if (!items.length) {
      grid.replaceChildren(
        h("li", { class: "muted" }, "No face is enrolled for this person. Use Add photos."),
      );
      return;
    }
    grid.replaceChildren(...items.map((face, i) => faceCard(face, i)));
  };
  const faceCard = (face, index) => {
    const label = `Face ${index + 1}`;
    const media = h(
      "div",
      { class: "placeholder" },
      icon(PLACEHOLDER_PATH, ""),
      h("span", {}, face.has_photo ? "Loading photo…" : "Photo not kept"),
    );
    if (face.has_photo) {
      if (!thumbs.has(face.id)) {
        thumbs.set(
          face.id,
          api
            .facePhoto(person.id, face.id, { signal: controller.signal })
            .then((blob) => (blob ? urls.add(blob) : null)),
        );
      }
      thumbs
        .get(face.id)
        .then((src) => {
          if (!src) {
            media.lastChild.textContent = "Photo not kept";
            return;
          }
          media.replaceWith(
            h("img", {
              class: "thumb",
              src,
              alt: `${label} of ${person.name}${face.source ? `, from ${face.source}` : ""}`,
            }),
          );
        })
        .catch(() => {
          media.lastChild.textContent = "Photo unavailable";
        });
    }
    const quality =
      face.quality && typeof face.quality === "object" ? face.quality.score : face.quality;
    return h(
      "li",
      { class: "face-card" },
      media,
      h(
        "div",
        { class: "body" },
        h("span", {}, h("strong", {}, label), face.source ? h("span", { class: "muted" }, ` · ${face.source}`) : null),
        h("span", { class: "muted" }, `Quality ${formatSimilarity(quality)} · ${formatDate(face.created_at)}`),
        h(
          "button",
          {
            type: "button",
            class: "button small",
            "aria-label": `Remove ${label.toLowerCase()} of ${person.name}`,
            onclick: async (event) => {
              const ok = await confirmDialog({
                title: `Remove this face of ${person.name}?`,
                body:
                  "Its template (and its photo, if one is kept) is erased. " +
                  "The person stays enrolled with their other faces.",
                confirmLabel: "Remove face",
              });
              if (!ok) return;
              event.target.disabled = true;
              try {
                await api.deleteFace(person.id, face.id);
                items.splice(items.indexOf(face), 1);
                renderFaces();
                announce(`${label} removed.`);
                title.focus();
                // The counts and "last changed" of the person have changed too.
                person = await api.getPerson(person.id).catch(() => person);
                renderDetails();
              } catch (exc) {
                event.target.disabled = false;
                announce(errorText(exc));
                facesSection.append(errorNotice(exc));
              }
            },
          },
          "Remove",
        ),
      ),
    );
  };
  renderFaces();

  // Details
  const details = h("dl", { class: "details" });
  const renderDetails = () => {
    const rows = [
      ["ID", person.id],
      ["External ID", person.external_id || "–"],
      ["Enrolled", formatDate(person.created_at)],
      ["Last changed", formatDate(person.updated_at)],
      ["Photos kept", String(count(person.photos))],
    ];
    if (person.metadata && Object.keys(person.metadata).length) {
      rows.push(["Metadata", JSON.stringify(person.metadata)]);
    }
    details.replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
  };
  renderDetails();

  // Rename
  const nameInput = h("input", {
    type: "text",
    id: "rename-input",
    value: person.name,
    required: true,
    autocomplete: "off",
  });
  const renameStatus = h("div", { "aria-live": "polite" });
  const renameForm = h(
    "form",
    {
      class: "rename-row",
      onsubmit: async (event) => {
        event.preventDefault();
        const name = nameInput.value.trim();
        renameStatus.replaceChildren();
        if (!name) {
          renameStatus.append(h("p", { class: "notice error" }, "Enter a name."));
          nameInput.focus();
          return;
        }
        if (name === person.name) return;
        const button = renameForm.querySelector("button");
        button.disabled = true;
        try {
          person = await api.renamePerson(person.id, name);
          title.textContent = person.name;
          ctx.setTitle(person.name);
          renderDetails();
          renderFaces();
          renameStatus.append(h("p", { class: "notice ok" }, `Renamed to ${person.name}.`));
        } catch (exc) {
          const text =
            exc instanceof ApiError && exc.status === 409
              ? `Someone named “${name}” is already enrolled. Choose another name.`
              : errorText(exc);
          renameStatus.append(h("p", { class: "notice error", role: "alert" }, text));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "rename-input" }, "Name"), nameInput),
    h("button", { type: "submit", class: "button" }, "Rename"),
  );

  // Delete
  const deleteStatus = h("div", { "aria-live": "polite" });
  const deleteButton = h(
    "button",
    {
      type: "button",
      class: "button danger",
      id: "delete-person",
      onclick: async () => {
        const ok = await confirmDialog({
          title: `Delete ${person.name}?`,
          body:
            `Every face template, kept photo and record of ${person.name} is erased ` +
            "from the gallery. This cannot be undone.",
          confirmLabel: `Delete ${person.name}`,
        });
        if (!ok) return;
        deleteButton.disabled = true;
        try {
          await api.deletePerson(person.id);
          ctx.navigate("#/people", `${person.name} was deleted.`);
        } catch (exc) {
          deleteButton.disabled = false;
          deleteStatus.replaceChildren(errorNotice(exc));
        }
      },
    },
    "Delete person…",
  );

  ctx.main.append(
    facesSection,
    h(
      "div",
      { class: "two-col", id: "person-settings" },
      h(
        "section",
        { class: "card", "aria-labelledby": "details-title" },
        h("h2", { id: "details-title" }, "Details"),
        details,
      ),
      h(
        "div",
        {},
        h(
          "section",
          { class: "card", "aria-labelledby": "rename-title" },
          h("h2", { id: "rename-title" }, "Rename"),
          renameForm,
          renameStatus,
        ),
        h(
          "section",
          { class: "card danger-zone", "aria-labelledby": "delete-title" },
          h("h2", { id: "delete-title" }, "Delete"),
          h(
            "p",
            {},
            "Erase this person completely: all their face templates and kept photos.",
          ),
          deleteButton,
          deleteStatus,
        ),
      ),
    ),
  );

  return () => {
    controller.abort();
    urls.clear();
  };
}
