// Enrol: several photos for a new person or one already enrolled; per-photo outcome.

import { api, ApiError } from "../api.js";
import {
  announce,
  dropZone,
  errorNotice,
  errorText,
  flagText,
  formatSimilarity,
  h,
  pageHead,
  plural,
  reasonText,
  spinner,
  UrlBag,
} from "../ui.js";

const STATUS = {
  accepted: { text: "Accepted", badge: "ok" },
  rejected: { text: "Rejected", badge: "bad" },
  duplicate: { text: "Already enrolled", badge: "warn" },
};

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export async function renderEnrol(ctx) {
  const urls = new UrlBag();
  const preselected = ctx.params.get("person") || "";
  /** @type {{file: File, url: string}[]} */
  let selected = [];

  // Who
  const modeNew = h("input", { type: "radio", name: "mode", id: "mode-new", value: "new" });
  const modeExisting = h("input", {
    type: "radio",
    name: "mode",
    id: "mode-existing",
    value: "existing",
  });
  const nameInput = h("input", {
    type: "text",
    id: "enrol-name",
    name: "name",
    autocomplete: "off",
    "aria-describedby": "enrol-name-hint",
  });
  const personFilter = h("input", {
    type: "search",
    id: "enrol-person-filter",
    autocomplete: "off",
    placeholder: "Type a name",
  });
  const personSelect = h("select", { id: "enrol-person", name: "person" });
  const newFields = h(
    "div",
    { class: "field", id: "new-fields" },
    h("label", { for: "enrol-name" }, "Name of the new person"),
    nameInput,
    h("p", { class: "hint", id: "enrol-name-hint" }, "As it should appear when they are recognised."),
  );
  const existingFields = h(
    "div",
    { id: "existing-fields" },
    h(
      "div",
      { class: "field" },
      h("label", { for: "enrol-person-filter" }, "Find a person"),
      personFilter,
    ),
    h("div", { class: "field" }, h("label", { for: "enrol-person" }, "Person"), personSelect),
  );
  const who = h(
    "fieldset",
    {},
    h("legend", {}, "Who is in the photos?"),
    h(
      "div",
      { class: "choices" },
      h("label", { class: "inline", for: "mode-new" }, modeNew, "A new person"),
      h("label", { class: "inline", for: "mode-existing" }, modeExisting, "Someone already enrolled"),
    ),
    newFields,
    existingFields,
  );

  // Photos
  const photoList = h("ul", { class: "photo-list", id: "selected-photos", "aria-label": "Photos to enrol" });
  const zone = dropZone({
    id: "enrol-files",
    label: "Choose photos or drop them here",
    hint: "One face per photo, facing the camera, well lit. Several different photos help.",
    multiple: true,
    onFiles: (files) => {
      for (const file of files) selected.push({ file, url: urls.add(file) });
      renderSelected();
      announce(`${plural(selected.length, "photo")} selected.`);
    },
  });
  const submit = h("button", { type: "submit", class: "button primary", id: "enrol-submit" }, "Enrol");
  const formStatus = h("div", { "aria-live": "polite" });
  const results = h("section", {
    id: "enrol-results",
    "aria-live": "polite",
    "aria-labelledby": "enrol-results-title",
  });

  const form = h(
    "form",
    { class: "card stack", novalidate: true, onsubmit: (event) => onSubmit(event) },
    who,
    h("div", { class: "field" }, h("span", { class: "visually-hidden" }, "Photos"), zone),
    photoList,
    formStatus,
    h("div", { class: "actions start" }, submit),
  );

  ctx.main.append(
    pageHead("Enrol", "Add a person, or more photos of someone already enrolled."),
    form,
    results,
  );

  function renderSelected() {
    photoList.replaceChildren(
      ...selected.map((item, i) =>
        h(
          "li",
          { class: "photo-item" },
          h("img", { src: item.url, alt: "" }),
          h(
            "div",
            {},
            h("div", { class: "name" }, item.file.name || `Photo ${i + 1}`),
            h("div", { class: "muted" }, formatBytes(item.file.size)),
          ),
          h(
            "button",
            {
              type: "button",
              class: "button small",
              "aria-label": `Remove ${item.file.name || `photo ${i + 1}`} from the selection`,
              onclick: () => {
                selected.splice(i, 1);
                urls.revoke(item.url);
                renderSelected();
                announce(`${plural(selected.length, "photo")} selected.`);
                submit.focus();
              },
            },
            "Remove",
          ),
        ),
      ),
    );
    submit.textContent = selected.length ? `Enrol ${plural(selected.length, "photo")}` : "Enrol";
  }

  function setMode(mode) {
    modeNew.checked = mode === "new";
    modeExisting.checked = mode === "existing";
    newFields.hidden = mode !== "new";
    existingFields.hidden = mode !== "existing";
    if (mode === "existing" && !personSelect.options.length) loadPeople("");
  }
  modeNew.addEventListener("change", () => setMode("new"));
  modeExisting.addEventListener("change", () => setMode("existing"));

  let peopleController = null;
  let filterTimer = null;
  async function loadPeople(term, selectId = personSelect.value || preselected) {
    peopleController?.abort();
    peopleController = new AbortController();
    try {
      const page = await api.listPeople(
        { search: term, limit: 200 },
        { signal: peopleController.signal },
      );
      const items = [...(page.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      if (selectId && !items.some((p) => String(p.id) === String(selectId))) {
        try {
          items.unshift(await api.getPerson(selectId));
        } catch {
          // The preselected person is gone: just leave them out.
        }
      }
      personSelect.replaceChildren(
        ...(items.length
          ? items.map((p) => h("option", { value: String(p.id) }, p.name))
          : [h("option", { value: "" }, term ? "No one matches" : "No one is enrolled yet")]),
      );
      if (selectId) personSelect.value = String(selectId);
    } catch (exc) {
      if (exc.name !== "AbortError") formStatus.replaceChildren(errorNotice(exc));
    }
  }
  personFilter.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => loadPeople(personFilter.value.trim(), ""), 250);
  });

  async function onSubmit(event) {
    event.preventDefault();
    formStatus.replaceChildren();
    const mode = modeExisting.checked ? "existing" : "new";
    const name = nameInput.value.trim();
    if (mode === "new" && !name) {
      formStatus.append(h("p", { class: "notice error", role: "alert" }, "Enter the person's name."));
      nameInput.focus();
      return;
    }
    if (mode === "existing" && !personSelect.value) {
      formStatus.append(h("p", { class: "notice error", role: "alert" }, "Choose a person."));
      personSelect.focus();
      return;
    }
    if (!selected.length) {
      formStatus.append(
        h("p", { class: "notice error", role: "alert" }, "Choose at least one photo."),
      );
      zone.querySelector("input").focus();
      return;
    }

    const batch = selected;
    submit.disabled = true;
    formStatus.replaceChildren(
      h("p", { class: "muted" }, spinner("Enrolling"), ` Enrolling ${plural(batch.length, "photo")}…`),
    );
    let person = null;
    let created = false;
    try {
      if (mode === "new") {
        try {
          person = await api.createPerson(name);
          created = true;
        } catch (exc) {
          if (exc instanceof ApiError && exc.status === 409) {
            await offerExisting(name);
            return;
          }
          throw exc;
        }
      } else {
        person = await api.getPerson(personSelect.value);
      }
      const outcome = await api.enrolFaces(
        person.id,
        batch.map((item) => item.file),
      );
      if (!ctx.isCurrent()) return;
      person = outcome.person || person;
      const photos = outcome.photos || [];
      const accepted = photos.filter((p) => p.status === "accepted").length;
      let dropped = false;
      if (created && accepted === 0) dropped = await dropIfEmpty(person.id);
      showResults(person, batch, photos, accepted, dropped);
      selected = [];
      renderSelected();
      formStatus.replaceChildren();
      if (created && !dropped) {
        // The person now exists: further photos go to them.
        nameInput.value = "";
        await loadPeople("", String(person.id));
        setMode("existing");
      }
    } catch (exc) {
      if (!ctx.isCurrent()) return;
      if (created && person) await dropIfEmpty(person.id);
      formStatus.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      submit.disabled = false;
    }
  }

  async function dropIfEmpty(personId) {
    // A person created here whose photos were all rejected would be an empty record.
    try {
      const faces = await api.listFaces(personId);
      if ((faces.items || []).length) return false;
      await api.deletePerson(personId);
      return true;
    } catch {
      return false;
    }
  }

  async function offerExisting(name) {
    let match = null;
    try {
      const page = await api.listPeople({ search: name, limit: 50 });
      match = (page.items || []).find((p) => p.name.toLowerCase() === name.toLowerCase()) || null;
    } catch {
      // Only the offer is lost.
    }
    formStatus.replaceChildren(
      h(
        "div",
        { class: "notice error", role: "alert" },
        h("p", {}, `Someone named “${name}” is already enrolled.`),
        match
          ? h(
              "button",
              {
                type: "button",
                class: "button",
                onclick: async () => {
                  await loadPeople("", String(match.id));
                  setMode("existing");
                  formStatus.replaceChildren(
                    h("p", { class: "notice ok" }, `The photos will be added to ${match.name}.`),
                  );
                  submit.focus();
                },
              },
              `Add these photos to ${match.name} instead`,
            )
          : h("p", {}, "Choose another name, or pick them under “Someone already enrolled”."),
      ),
    );
  }

  function showResults(person, batch, photos, accepted, dropped) {
    const total = photos.length;
    let summary;
    if (dropped) {
      summary = h(
        "p",
        { class: "notice error" },
        `No photo was accepted, so ${person.name} was not added. See the reasons below.`,
      );
    } else if (accepted === total) {
      summary = h(
        "p",
        { class: "notice ok" },
        `${accepted} of ${plural(total, "photo")} enrolled for ${person.name}. `,
        h("a", { href: `#/people/${encodeURIComponent(person.id)}` }, `See ${person.name}`),
      );
    } else {
      summary = h(
        "p",
        { class: "notice warn" },
        `${accepted} of ${plural(total, "photo")} enrolled for ${person.name}. `,
        h("a", { href: `#/people/${encodeURIComponent(person.id)}` }, `See ${person.name}`),
      );
    }
    const rows = photos.map((photo, i) => {
      const item = batch[i];
      const status = STATUS[photo.status] || { text: photo.status, badge: "warn" };
      const reasons = (photo.reasons || []).map((r) => h("li", {}, reasonText(r)));
      const flags = (photo.flags || []).map((f) => h("li", {}, flagText(f)));
      const quality = photo.quality && photo.quality.score;
      return h(
        "li",
        { class: "photo-item", dataset: { status: photo.status } },
        h("img", { src: item ? item.url : "", alt: "" }),
        h(
          "div",
          {},
          h("div", { class: "name" }, photo.source || (item && item.file.name) || `Photo ${i + 1}`),
          photo.status === "accepted" && typeof quality === "number"
            ? h("div", { class: "muted" }, `Face quality ${formatSimilarity(quality)}`)
            : null,
          reasons.length ? h("ul", { class: "reasons" }, reasons) : null,
          flags.length ? h("ul", { class: "flags" }, flags) : null,
        ),
        h("span", { class: `badge ${status.badge}` }, status.text),
      );
    });
    results.replaceChildren(
      h("h2", { id: "enrol-results-title" }, "Result"),
      summary,
      h("ul", { class: "photo-list", id: "enrol-outcomes" }, rows),
    );
    announce(
      dropped
        ? `No photo was accepted; ${person.name} was not added.`
        : `${accepted} of ${plural(total, "photo")} enrolled for ${person.name}.`,
    );
  }

  if (preselected) {
    await loadPeople("", preselected);
    setMode("existing");
  } else {
    setMode("new");
  }
  return () => {
    clearTimeout(filterTimer);
    peopleController?.abort();
    urls.clear();
  };
}
