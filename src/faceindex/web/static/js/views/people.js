// People: the list (search, paging), with face-centred avatars where photos are kept.

import { api } from "../api.js";
import { faceThumb, limited } from "../thumbs.js";
import { errorNotice, h, initials, pageHead, plural, spinner, UrlBag } from "../ui.js";

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

  const listUrls = new UrlBag();

  /** Replace the initials of people with kept photos by a face-centred avatar, a few at a time. */
  function loadAvatars(items, signal) {
    const withPhotos = items.filter((person) => count(person.photos) > 0).length;
    const tasks = items
      .filter((person) => count(person.photos) > 0)
      .map((person) => async () => {
        const faces = await api.listFaces(person.id, { signal });
        const face = (faces.items || []).find((f) => f.has_photo);
        if (!face || signal.aborted) return;
        const holder = list.querySelector(`[data-avatar="${CSS.escape(String(person.id))}"]`);
        const img = h("img", { alt: "" });
        const src = await faceThumb(person.id, face, {
          urls: listUrls,
          signal,
          size: 96,
          detect: withPhotos <= 12, // finding the face costs model time on the server
          onCentred: (centred) => {
            img.src = centred;
            img.dataset.centred = "true";
          },
        });
        if (src && holder && !signal.aborted) {
          if (!img.dataset.centred) img.src = src;
          holder.replaceChildren(img);
          holder.classList.add("photo");
        }
      });
    limited(tasks, 3);
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
            h(
              "span",
              { class: "avatar", "aria-hidden": "true", dataset: { avatar: String(person.id) } },
              initials(person.name),
            ),
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
    listUrls.clear();
    if (controller) loadAvatars(items, controller.signal);
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
    listUrls.clear();
  };
}
