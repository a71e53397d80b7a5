// Enrol: photos (or a whole folder) for a new person or one already enrolled; every photo
// gets its own outcome in words. Photos go in chunks of CHUNK per request (the first one
// after the person is created, the next ones add faces to them), so a large batch never hits
// the server's file limit, and one bad file never sinks the others.

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

/** Photos per request: well under the server's max_files (20 by default). */
const CHUNK = 10;

const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|gif|tiff?|heic|avif)$/i;

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
  const addFiles = (files, skipped = 0) => {
    for (const file of files) selected.push({ file, url: urls.add(file) });
    renderSelected();
    const note = skipped ? ` ${plural(skipped, "file")} that ${skipped === 1 ? "is" : "are"} not a photo left out.` : "";
    selectionNote.textContent = note.trim();
    announce(`${plural(selected.length, "photo")} selected.${note}`);
  };
  const zone = dropZone({
    id: "enrol-files",
    label: "Choose photos or drop them here",
    hint: "One face per photo, facing the camera, well lit. Several different photos help.",
    multiple: true,
    onFiles: (files) => addFiles(files),
  });
  const folderInput = h("input", {
    type: "file",
    id: "enrol-folder",
    class: "visually-hidden",
    multiple: true,
    webkitdirectory: true,
  });
  folderInput.addEventListener("change", () => {
    const all = [...folderInput.files];
    const photos = all
      .filter((f) => (f.type ? f.type.startsWith("image/") : IMAGE_NAME.test(f.name)))
      .sort((a, b) => (a.webkitRelativePath || a.name).localeCompare(b.webkitRelativePath || b.name));
    folderInput.value = "";
    addFiles(photos, all.length - photos.length);
  });
  const folderButton = h(
    "label",
    { class: "button", for: "enrol-folder" },
    "Choose a whole folder…",
    folderInput,
  );
  const selectionNote = h("p", { class: "hint", id: "selection-note" });
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
    h("div", { class: "actions start" }, folderButton),
    selectionNote,
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

  // ---- sending -----------------------------------------------------------------------

  /** Last enrolment on this page: kept so that "Enrol anyway" can still add to it. */
  let run = null;

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

    let person = null;
    let created = false;
    submit.disabled = true;
    try {
      if (mode === "new") {
        try {
          person = await api.createPerson(name);
          created = true;
        } catch (exc) {
          if (exc instanceof ApiError && exc.status === 409) {
            await offerExisting(name);
            return; // the selection stays: the user decides where these photos go
          }
          throw exc;
        }
      } else {
        person = await api.getPerson(personSelect.value);
      }
    } catch (exc) {
      submit.disabled = false;
      if (!ctx.isCurrent()) return;
      formStatus.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
      return;
    }

    // From here on the photos belong to this enrolment: the selection is emptied at once,
    // so that nothing from it can slip into the next person's enrolment, whatever happens.
    const batch = selected;
    selected = [];
    renderSelected();
    selectionNote.textContent = "";
    run = { person, created, dropped: false, stopped: null, rows: batch.map((item) => ({ item, photo: null })) };
    const thisRun = run;
    renderRun(thisRun);
    try {
      for (let start = 0; start < batch.length; start += CHUNK) {
        const chunk = thisRun.rows.slice(start, start + CHUNK);
        formStatus.replaceChildren(
          h(
            "p",
            { class: "muted" },
            spinner("Enrolling"),
            batch.length > CHUNK
              ? ` Enrolling photos ${start + 1}–${start + chunk.length} of ${batch.length}…`
              : ` Enrolling ${plural(batch.length, "photo")}…`,
          ),
        );
        try {
          await sendRows(thisRun, chunk, false);
        } catch (exc) {
          // The server cannot take any more (no key, no scope, gone): stop, and say so.
          thisRun.stopped = exc;
          for (const row of thisRun.rows) {
            if (!row.photo) row.photo = { source: row.item.file.name, status: "rejected", reasons: ["not_sent"] };
          }
          break;
        }
        if (!ctx.isCurrent()) return;
        renderRun(thisRun);
      }
      if (!ctx.isCurrent()) return;
      await settle(thisRun);
      formStatus.replaceChildren();
      renderRun(thisRun, { announceIt: true });
      if (created && !thisRun.dropped) {
        // The person now exists: further photos go to them.
        nameInput.value = "";
        await loadPeople("", String(person.id));
        setMode("existing");
      }
    } finally {
      submit.disabled = false;
    }
  }

  /**
   * Send some rows' photos in one request and store each photo's outcome on its row. A request
   * the server refuses as a whole (an unreadable file in it, too large) is retried one photo at
   * a time, so that every photo gets its own answer. Throws only when nothing more can be sent
   * (401, 403, 404, the server unreachable).
   */
  async function sendRows(r, rows, force) {
    try {
      const answer = await api.enrolFaces(
        r.person.id,
        rows.map((row) => row.item.file),
        { force },
      );
      if (answer.person) r.person = answer.person;
      const photos = answer.photos || [];
      rows.forEach((row, i) => {
        row.photo = photos[i] || { source: row.item.file.name, status: "rejected", reasons: ["not_embedded"] };
      });
    } catch (exc) {
      if (exc && exc.name === "AbortError") throw exc;
      const perPhoto = exc instanceof ApiError && [400, 413, 415, 422, 429].includes(exc.status);
      if (!perPhoto) throw exc;
      if (rows.length > 1) {
        for (const row of rows) await sendRows(r, [row], force);
        return;
      }
      rows[0].photo = {
        source: rows[0].item.file.name,
        status: "rejected",
        reasons: [exc.status === 413 ? "image_too_large" : exc.status === 429 ? "rate_limited" : exc.code],
        message: exc.message,
      };
    }
  }

  // Refusals the user can overrule: the face looks like someone else, or not like this
  // person's other photos. Either is re-sent with force only on confirmation.
  const CONFIRMABLE = ["matches_other_person", "unlike_this_person"];
  const isConflict = (photo) =>
    photo && photo.status === "rejected" && (photo.reasons || []).some((r) => CONFIRMABLE.includes(r));

  function counts(r) {
    const done = r.rows.filter((row) => row.photo);
    return {
      total: r.rows.length,
      accepted: done.filter((row) => row.photo.status === "accepted").length,
      pending: done.filter((row) => isConflict(row.photo) && !row.skipped).length,
    };
  }

  /** A person created here with no face at all, and no photo left to confirm, is removed. */
  async function settle(r) {
    const { accepted, pending } = counts(r);
    if (r.created && !r.dropped && accepted === 0 && pending === 0) {
      r.dropped = await dropIfEmpty(r.person.id);
    }
  }

  async function confirmRow(r, row, force) {
    if (!force) {
      row.skipped = true;
    } else {
      row.busy = true;
      renderRun(r);
      try {
        await sendRows(r, [row], true);
      } catch (exc) {
        row.error = errorText(exc);
      }
      row.busy = false;
    }
    await settle(r);
    if (!ctx.isCurrent()) return;
    renderRun(r, { announceIt: true });
    const next = results.querySelector("button.enrol-anyway");
    (next || results.querySelector("h2")).focus();
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

  // ---- the outcome of every photo ------------------------------------------------------

  function outcomeRow(r, row, i) {
    const { item, photo } = row;
    const personName = r.person.name;
    let status = photo ? STATUS[photo.status] || { text: photo.status, badge: "warn" } : { text: "Waiting", badge: "warn" };
    let body;
    if (!photo) {
      body = [h("div", { class: "muted" }, spinner("Waiting"), " Waiting to be sent…")];
    } else if (isConflict(photo) && !row.skipped) {
      const c = photo.conflict || {};
      const other = c.name || "another enrolled person";
      status = { text: "Check", badge: "warn" };
      const question = photo.conflict
        ? h(
            "p",
            { class: "conflict" },
            `This looks like `,
            c.person_id ? h("a", { href: `#/people/${encodeURIComponent(c.person_id)}` }, other) : other,
            typeof c.similarity === "number" ? ` (${formatSimilarity(c.similarity)})` : "",
            `, not ${personName}. Enrol anyway?`,
          )
        : h("p", { class: "conflict" }, `This face does not look like ${personName}'s other photos. Enrol anyway?`);
      body = [
        question,
        row.error ? h("p", { class: "notice error", role: "alert" }, row.error) : null,
        h(
          "div",
          { class: "actions start" },
          h(
            "button",
            {
              type: "button",
              class: "button small primary enrol-anyway",
              disabled: Boolean(row.busy),
              "aria-label": `Enrol ${photo.source || item.file.name} for ${personName} anyway`,
              onclick: () => confirmRow(r, row, true),
            },
            row.busy ? "Enrolling…" : `Yes, it is ${personName}`,
          ),
          h(
            "button",
            {
              type: "button",
              class: "button small",
              disabled: Boolean(row.busy),
              "aria-label": `Do not enrol ${photo.source || item.file.name}`,
              onclick: () => confirmRow(r, row, false),
            },
            "No, leave it out",
          ),
        ),
      ];
    } else {
      const reasons = (photo.reasons || []).map((code) =>
        h(
          "li",
          {},
          code === "matches_other_person" && photo.conflict && photo.conflict.name
            ? `This looks like ${photo.conflict.name} (${formatSimilarity(photo.conflict.similarity)}), not ${personName}; left out.`
            : reasonText(code),
        ),
      );
      // The server's own words add the detail (e.g. "face too small (14 px, need 20)").
      if (photo.message && photo.status !== "accepted" && !isConflict(photo)) {
        reasons.push(h("li", { class: "muted" }, `Details: ${photo.message}`));
      }
      const flags = (photo.flags || []).map((f) => h("li", {}, flagText(f)));
      const quality = photo.quality && photo.quality.score;
      body = [
        photo.status === "accepted" && typeof quality === "number"
          ? h("div", { class: "muted" }, `Face quality ${formatSimilarity(quality)}`)
          : null,
        reasons.length ? h("ul", { class: "reasons" }, reasons) : null,
        flags.length ? h("ul", { class: "flags" }, flags) : null,
      ];
    }
    return h(
      "li",
      { class: "photo-item", dataset: { status: photo ? (isConflict(photo) && !row.skipped ? "conflict" : photo.status) : "waiting" } },
      h("img", {
        src: item.url,
        alt: "",
        // Not an image at all (a text file named .jpg): a plain tile instead of a broken one.
        onerror: (event) => event.target.replaceWith(h("span", { class: "not-image", "aria-hidden": "true" }, "?")),
      }),
      h("div", {}, h("div", { class: "name" }, (photo && photo.source) || item.file.name || `Photo ${i + 1}`), body),
      h("span", { class: `badge ${status.badge}` }, status.text),
    );
  }

  function renderRun(r, { announceIt = false } = {}) {
    const { person } = r;
    const { total, accepted, pending } = counts(r);
    const finished = r.rows.every((row) => row.photo);
    const link = h("a", { href: `#/people/${encodeURIComponent(person.id)}` }, `See ${person.name}`);
    let summary;
    let words;
    if (!finished) {
      words = `${accepted} of ${plural(total, "photo")} enrolled for ${person.name} so far…`;
      summary = h("p", { class: "notice" }, words);
    } else if (r.dropped) {
      words = `No photo was accepted, so ${person.name} was not added. See the reasons below.`;
      summary = h("p", { class: "notice error" }, words);
    } else {
      const notEnrolled = total - accepted - pending;
      words =
        `${accepted} of ${plural(total, "photo")} enrolled for ${person.name}.` +
        (notEnrolled ? ` ${notEnrolled} not enrolled: the reason is given under each photo.` : "") +
        (pending ? ` ${plural(pending, "photo")} ${pending === 1 ? "looks" : "look"} like someone else: confirm or leave ${pending === 1 ? "it" : "them"} out below.` : "");
      summary = h(
        "p",
        { class: `notice ${accepted === total ? "ok" : "warn"}` },
        `${words} `,
        r.created && accepted === 0 ? null : link,
      );
    }
    results.replaceChildren(
      h("h2", { id: "enrol-results-title", tabindex: "-1" }, "Result"),
      ...(r.stopped ? [errorNotice(r.stopped)] : []),
      summary,
      h("ul", { class: "photo-list", id: "enrol-outcomes" }, r.rows.map((row, i) => outcomeRow(r, row, i))),
    );
    if (announceIt) announce(words);
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
    // Left with photos still to confirm and no face enrolled: no empty record stays behind.
    if (run && run.created && !run.dropped && counts(run).accepted === 0) dropIfEmpty(run.person.id);
  };
}
