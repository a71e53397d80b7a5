// One person's page: face-centred thumbnails (flagged faces marked), rename, merge, delete.

import { api, ApiError } from "../api.js";
import { faceFlags, faceThumb, limited } from "../thumbs.js";
import { libraryThumb } from "./library.js";
import {
  announce,
  confirmDialog,
  errorNotice,
  errorText,
  flagText,
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

function count(value) {
  if (Array.isArray(value)) return value.length;
  return typeof value === "number" ? value : 0;
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
  const avatar = h("span", { class: "avatar large", "aria-hidden": "true" }, initials(person.name));
  const facesCount = h("span", {}, plural(items.length, "enrolled face"));
  ctx.main.append(
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("p", { class: "lead" }, h("a", { href: "#/people" }, "← People")),
        h("div", { class: "person-title" }, avatar, title),
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
  /** Face-centred crops by face id, once they are known. */
  const centredThumbs = new Map();
  const setAvatar = (src) => {
    const img = avatar.querySelector("img");
    if (img) img.src = src;
    else avatar.replaceChildren(h("img", { src, alt: "" }));
    avatar.classList.add("photo");
  };
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
  /** Library faces by photo path: a face enrolled from a scanned photo (named through a
   * group of the photo library) gets its thumbnail from that photo when none is kept. */
  const libraryFaces = new Map();
  const faceCard = (face, index) => {
    const label = `Face ${index + 1}`;
    const fromLibrary = !face.has_photo && face.source ? libraryFaces.get(face.source) : null;
    let media = h(
      "div",
      { class: "placeholder" },
      icon(PLACEHOLDER_PATH, ""),
      h("span", {}, face.has_photo ? "Loading photo…" : "Photo not kept"),
    );
    if (fromLibrary) {
      const tasks = [];
      media = libraryThumb(fromLibrary, `${label} of ${person.name}, from ${face.source}`, {
        urls,
        signal: controller.signal,
        size: 256,
        tasks,
      });
      limited(tasks, 1);
    }
    if (face.has_photo) {
      const alt = `${label} of ${person.name}${face.source ? `, from ${face.source}` : ""}`;
      const img = h("img", { class: "thumb", alt });
      // The face-centred crop, when it comes, replaces the first one (see thumbs.js).
      const centred = (src) => {
        img.src = src;
        img.dataset.centred = "true";
        centredThumbs.set(face.id, src);
        if (index === 0) setAvatar(src);
      };
      if (!thumbs.has(face.id)) {
        thumbs.set(
          face.id,
          faceThumb(person.id, face, {
            urls,
            signal: controller.signal,
            detect: items.length <= 24,
            onCentred: (src) => {
              centredThumbs.set(face.id, src);
              for (const el of grid.querySelectorAll(`img[data-face="${face.id}"]`)) {
                el.src = src;
                el.dataset.centred = "true";
              }
              if (items[0] === face) setAvatar(src);
            },
          }),
        );
      }
      img.dataset.face = String(face.id);
      thumbs
        .get(face.id)
        .then((src) => {
          if (!src) {
            media.lastChild.textContent = "Photo not kept";
            return;
          }
          if (centredThumbs.has(face.id)) centred(centredThumbs.get(face.id));
          else img.src = src;
          media.replaceWith(img);
          if (index === 0 && !avatar.querySelector("img")) setAvatar(img.src);
        })
        .catch(() => {
          media.lastChild.textContent = "Photo unavailable";
        });
    }
    const flags = faceFlags(face);
    const quality =
      face.quality && typeof face.quality === "object" ? face.quality.score : face.quality;
    return h(
      "li",
      { class: `face-card${flags.length ? " flagged" : ""}`, dataset: { flagged: flags.length ? "true" : false } },
      media,
      h(
        "div",
        { class: "body" },

        h("span", {}, h("strong", {}, label), face.source ? h("span", { class: "muted" }, ` · ${face.source}`) : null),
        h("span", { class: "muted" }, `Quality ${formatSimilarity(quality)} · ${formatDate(face.created_at)}`),
        flags.length
          ? h(
              "div",
              { class: "face-flag" },
              h("span", { class: "badge warn" }, "Check"),
              " ",
              flags.map((f) => h("span", {}, flagText(f))),
            )
          : null,
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
  nameFlaggedLinks();

  /** "that person" in a flag becomes the other person's name once it is known. */
  async function nameFlaggedLinks() {
    for (const link of grid.querySelectorAll(".face-flag a[href^='#/people/']")) {
      const otherId = decodeURIComponent(link.getAttribute("href").slice("#/people/".length));
      try {
        const other = await api.getPerson(otherId, { signal: controller.signal });
        link.textContent = other.name;
      } catch {
        // Gone or unreadable: "that person" stays.
      }
    }
  }

  // Photos of this person: the scanned photos of the library they are found in.
  const photosList = h("ul", { class: "faces-grid photos-grid", id: "person-photos" });
  const photosNote = h("p", { class: "muted", id: "person-photos-note" }, spinner("Loading"), " Loading…");
  const photosSection = h(
    "section",
    { class: "card", "aria-labelledby": "photos-title", id: "photos-of-person" },
    h("h2", { id: "photos-title" }, "Photos of this person"),
    photosNote,
    photosList,
  );
  const loadPhotos = async () => {
    let found;
    try {
      found = await api.photosOf(person.id, { signal: controller.signal });
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      if (exc instanceof ApiError && (exc.status === 404 || exc.status === 405)) {
        photosSection.hidden = true; // a server without the photo library
        return;
      }
      photosNote.replaceChildren(errorNotice(exc));
      return;
    }
    if (!ctx.isCurrent()) return;
    const photos = found.items || (found.photos || []).map((path) => ({ path, faces: [] }));
    photosNote.textContent = photos.length
      ? `${person.name} is in ${plural(photos.length, "scanned photo")}.`
      : `No scanned photo shows ${person.name} yet. Scan your photo folders on the Unnamed people page.`;
    for (const photo of photos) {
      if ((photo.faces || []).length) libraryFaces.set(photo.path, photo.faces[0]);
    }
    if (items.some((face) => !face.has_photo && libraryFaces.has(face.source))) renderFaces();
    const tasks = [];
    photosList.replaceChildren(
      ...photos.map((photo) => {
        const name = photo.path.split(/[\\/]/).pop();
        const face = (photo.faces || [])[0];
        const media = face
          ? libraryThumb(face, `${person.name} in ${name}`, {
              urls,
              signal: controller.signal,
              size: 256,
              scale: 3.5,
              tasks,
            })
          : h("div", { class: "placeholder" }, icon(PLACEHOLDER_PATH, ""), h("span", {}, name));
        return h(
          "li",
          { class: "face-card photo-card" },
          media,
          h(
            "div",
            { class: "body" },
            h("strong", { class: "file-name" }, name),
            h("span", { class: "muted file-path", title: photo.path }, photo.path),
          ),
        );
      }),
    );
    limited(tasks, 4);
  };
  loadPhotos();

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

  // Merge: someone enrolled twice under two names becomes one person.
  const mergeFilter = h("input", {
    type: "search",
    id: "merge-filter",
    autocomplete: "off",
    placeholder: "Type a name",
  });
  const mergeSelect = h("select", { id: "merge-from" });
  const mergeStatus = h("div", { "aria-live": "polite" });
  let mergeTimer = null;
  const loadMergeChoices = async () => {
    try {
      const page = await api.listPeople(
        { search: mergeFilter.value.trim(), limit: 200 },
        { signal: controller.signal },
      );
      const others = (page.items || [])
        .filter((p) => String(p.id) !== String(person.id))
        .sort((a, b) => a.name.localeCompare(b.name));
      mergeSelect.replaceChildren(
        ...(others.length
          ? others.map((p) => h("option", { value: String(p.id) }, `${p.name} (${plural(count(p.templates), "face")})`))
          : [h("option", { value: "" }, "No one else matches")]),
      );
    } catch (exc) {
      if (exc.name !== "AbortError") mergeStatus.replaceChildren(errorNotice(exc));
    }
  };
  mergeFilter.addEventListener("input", () => {
    clearTimeout(mergeTimer);
    mergeTimer = setTimeout(loadMergeChoices, 250);
  });
  loadMergeChoices();
  const mergeForm = h(
    "form",
    {
      class: "stack",
      onsubmit: async (event) => {
        event.preventDefault();
        mergeStatus.replaceChildren();
        const fromId = mergeSelect.value;
        if (!fromId) {
          mergeStatus.append(h("p", { class: "notice error", role: "alert" }, "Choose the person to merge in."));
          mergeSelect.focus();
          return;
        }
        const fromName = mergeSelect.selectedOptions[0].textContent.replace(/ \(\d+ faces?\)$/, "");
        const ok = await confirmDialog({
          title: `Merge ${fromName} into ${person.name}?`,
          body:
            `Every face of ${fromName} moves to ${person.name}, and ${fromName} is removed. ` +
            "This cannot be undone.",
          confirmLabel: "Merge",
        });
        if (!ok) return;
        const button = mergeForm.querySelector("button[type=submit]");
        button.disabled = true;
        try {
          await api.mergePeople(person.id, fromId);
          ctx.navigate(`#/people/${encodeURIComponent(person.id)}`, `${fromName} was merged into ${person.name}.`);
        } catch (exc) {
          button.disabled = false;
          mergeStatus.replaceChildren(
            exc instanceof ApiError && (exc.status === 404 || exc.status === 405)
              ? h(
                  "p",
                  { class: "notice error", role: "alert" },
                  `The merge failed: ${exc.message}. If both people still exist, this server may not support merging.`,
                )
              : errorNotice(exc),
          );
        }
      },
    },
    h("p", {}, `Someone enrolled twice under two names? Their faces move to ${person.name}.`),
    h("div", { class: "field" }, h("label", { for: "merge-filter" }, "Find a person"), mergeFilter),
    h("div", { class: "field" }, h("label", { for: "merge-from" }, "Person to merge in"), mergeSelect),
    h("div", { class: "actions start" }, h("button", { type: "submit", class: "button", id: "merge-submit" }, "Merge…")),
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
    photosSection,
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
          { class: "card", "aria-labelledby": "merge-title" },
          h("h2", { id: "merge-title" }, "Merge"),
          mergeForm,
          mergeStatus,
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
    clearTimeout(mergeTimer);
    controller.abort();
    urls.clear();
  };
}
