// "This is …": put a name to a face that was not recognised. The face is enrolled for an
// existing or a new person: the whole photo when it holds one face, else a crop around that
// face cut on a canvas (the API enrols only a photo's dominant face).

import { api, ApiError } from "../api.js";
import { cropFace, errorText, formatSimilarity, h, reasonText, spinner } from "../ui.js";

let formCount = 0;

/** The photo to enrol for face `face` of an identify answer with `faceCount` faces. */
async function photoOf(file, face, faceCount) {
  if (faceCount <= 1) return file;
  const blob = await cropFace(file, face.bbox, { size: 0, scale: 2.4 });
  const base = (file.name || "photo").replace(/\.[^.]*$/, "");
  return new File([blob], `${base}-face.jpg`, { type: "image/jpeg" });
}

/**
 * The inline form under one face of a recognition result.
 * onAssigned(person) runs once the face is enrolled (the page recognises the photo again).
 */
export function assignForm({ file, face, faceCount, index, onAssigned, onCancel }) {
  const n = ++formCount;
  const ids = {
    existing: `assign-existing-${n}`,
    fresh: `assign-new-${n}`,
    filter: `assign-filter-${n}`,
    select: `assign-person-${n}`,
    name: `assign-name-${n}`,
  };
  const modeExisting = h("input", { type: "radio", name: `assign-mode-${n}`, id: ids.existing, checked: true });
  const modeNew = h("input", { type: "radio", name: `assign-mode-${n}`, id: ids.fresh });
  const filter = h("input", { type: "search", id: ids.filter, autocomplete: "off", placeholder: "Type a name" });
  const select = h("select", { id: ids.select });
  const nameInput = h("input", { type: "text", id: ids.name, autocomplete: "off" });
  const existingFields = h(
    "div",
    { class: "assign-existing" },
    h("div", { class: "field" }, h("label", { for: ids.filter }, "Find a person"), filter),
    h("div", { class: "field" }, h("label", { for: ids.select }, "Person"), select),
  );
  const newFields = h(
    "div",
    { class: "field", hidden: true },
    h("label", { for: ids.name }, "Name of the new person"),
    nameInput,
  );
  const status = h("div", { class: "assign-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "button primary small" }, "Add this face");
  const form = h(
    "form",
    { class: "assign-form stack", novalidate: true, "aria-label": `Who is face ${index + 1}?` },
    h(
      "fieldset",
      {},
      h("legend", {}, `Who is face ${index + 1}?`),
      h(
        "div",
        { class: "choices" },
        h("label", { class: "inline", for: ids.existing }, modeExisting, "Someone enrolled"),
        h("label", { class: "inline", for: ids.fresh }, modeNew, "A new person"),
      ),
      existingFields,
      newFields,
    ),
    h(
      "div",
      { class: "actions start" },
      submit,
      h("button", { type: "button", class: "button small", onclick: () => onCancel() }, "Cancel"),
    ),
    status,
  );
  const setMode = () => {
    existingFields.hidden = !modeExisting.checked;
    newFields.hidden = !modeNew.checked;
  };
  modeExisting.addEventListener("change", setMode);
  modeNew.addEventListener("change", setMode);

  let timer = null;
  const load = async () => {
    try {
      const page = await api.listPeople({ search: filter.value.trim(), limit: 200 });
      const items = [...(page.items || [])].sort((a, b) => a.name.localeCompare(b.name));
      select.replaceChildren(
        ...(items.length
          ? items.map((p) => h("option", { value: String(p.id) }, p.name))
          : [h("option", { value: "" }, filter.value.trim() ? "No one matches" : "No one is enrolled yet")]),
      );
      if (!items.length && !filter.value.trim()) {
        modeNew.checked = true;
        setMode();
      }
    } catch (exc) {
      status.replaceChildren(h("p", { class: "notice error", role: "alert" }, errorText(exc)));
    }
  };
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 250);
  });
  load();

  const say = (cls, ...content) =>
    status.replaceChildren(h("p", { class: `notice ${cls}`, role: cls === "error" ? "alert" : "status" }, ...content));

  /** Enrol the face for `person`; returns the photo outcome (or throws). */
  const send = async (person, photo, force) => {
    const answer = await api.enrolFaces(person.id, [photo], { force });
    return (answer.photos || [])[0] || { status: "rejected", reasons: ["not_embedded"] };
  };

  const finish = async (person, outcome, photo, created) => {
    if (outcome.status === "accepted" || outcome.status === "duplicate") {
      say("ok", `Face ${index + 1} is now enrolled for ${person.name}.`);
      onAssigned(person);
      return;
    }
    const reasons = outcome.reasons || [];
    if (reasons.includes("matches_other_person") || reasons.includes("unlike_this_person")) {
      const c = outcome.conflict || {};
      const other = c.name || "another enrolled person";
      const question = outcome.conflict
        ? [
            `This looks like ${other}`,
            typeof c.similarity === "number" ? ` (${formatSimilarity(c.similarity)})` : "",
            `, not ${person.name}. Enrol anyway?`,
          ]
        : [`This face does not look like ${person.name}'s other photos. Enrol anyway?`];
      status.replaceChildren(
        h(
          "div",
          { class: "notice warn conflict", role: "alert" },
          h("p", {}, ...question),
          h(
            "div",
            { class: "actions start" },
            h(
              "button",
              {
                type: "button",
                class: "button small primary enrol-anyway",
                onclick: async (event) => {
                  event.target.disabled = true;
                  try {
                    await finish(person, await send(person, photo, true), photo, created);
                  } catch (exc) {
                    say("error", errorText(exc));
                  }
                },
              },
              `Yes, it is ${person.name}`,
            ),
            h(
              "button",
              {
                type: "button",
                class: "button small",
                onclick: async () => {
                  if (created) await api.deletePerson(person.id).catch(() => undefined);
                  say("", "Left as it was: nothing was enrolled.");
                  submit.disabled = false;
                },
              },
              "No, leave it",
            ),
          ),
        ),
      );
      status.querySelector(".enrol-anyway").focus();
      return;
    }
    if (created) await api.deletePerson(person.id).catch(() => undefined);
    say("error", `Not enrolled: ${reasons.map(reasonText).join(" ") || "the server refused it."}`);
    submit.disabled = false;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let person = null;
    let created = false;
    if (modeNew.checked) {
      const name = nameInput.value.trim();
      if (!name) {
        say("error", "Enter the person's name.");
        nameInput.focus();
        return;
      }
      person = { name };
    } else if (!select.value) {
      say("error", "Choose a person.");
      select.focus();
      return;
    }
    submit.disabled = true;
    status.replaceChildren(h("p", { class: "muted" }, spinner("Enrolling"), " Enrolling the face…"));
    try {
      const photo = await photoOf(file, face, faceCount);
      if (modeNew.checked) {
        try {
          person = await api.createPerson(person.name);
          created = true;
        } catch (exc) {
          if (exc instanceof ApiError && exc.status === 409) {
            say("error", `Someone named “${person.name}” is already enrolled: choose them under “Someone enrolled”.`);
            submit.disabled = false;
            return;
          }
          throw exc;
        }
      } else {
        person = { id: select.value, name: select.selectedOptions[0].textContent };
      }
      await finish(person, await send(person, photo, false), photo, created);
    } catch (exc) {
      if (created && person) await api.deletePerson(person.id).catch(() => undefined);
      say("error", errorText(exc));
      submit.disabled = false;
    }
  });
  return { form, focus: () => (modeExisting.checked ? filter : nameInput).focus() };
}
