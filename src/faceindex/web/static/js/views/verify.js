// Verify: two photos side by side -> same person or not, with the similarity.

import { api } from "../api.js";
import {
  announce,
  dropZone,
  errorNotice,
  errorText,
  formatSimilarity,
  h,
  pageHead,
  spinner,
  UrlBag,
} from "../ui.js";

export async function renderVerify(ctx) {
  const urls = new UrlBag();
  const chosen = { a: null, b: null };
  let controller = null;

  const compare = h(
    "button",
    { type: "submit", class: "button primary", id: "verify-submit", disabled: true },
    "Compare",
  );
  const result = h("div", { id: "verify-result", "aria-live": "polite" });

  function slot(key, title) {
    const preview = h("img", { class: "preview", alt: "", hidden: true, id: `verify-preview-${key}` });
    const name = h("p", { class: "muted", id: `verify-name-${key}` }, "No photo chosen.");
    const zone = dropZone({
      id: `verify-file-${key}`,
      label: `Choose ${title} or drop it here`,
      hint: "A photo with one face (the largest is used).",
      onFiles: ([file]) => {
        if (preview.src) urls.revoke(preview.src);
        chosen[key] = file;
        preview.src = urls.add(file);
        preview.alt = `${title}: ${file.name || "chosen photo"}`;
        preview.hidden = false;
        name.textContent = file.name || "Photo chosen.";
        compare.disabled = !(chosen.a && chosen.b);
        result.replaceChildren();
        announce(`${title} chosen.`);
      },
    });
    return h(
      "section",
      { class: "card verify-slot", "aria-labelledby": `verify-title-${key}` },
      h("h2", { id: `verify-title-${key}` }, title),
      zone,
      name,
      preview,
    );
  }

  async function onSubmit(event) {
    event.preventDefault();
    if (!(chosen.a && chosen.b)) return;
    controller?.abort();
    controller = new AbortController();
    compare.disabled = true;
    result.replaceChildren(h("p", { class: "muted" }, spinner("Comparing"), " Comparing…"));
    try {
      const answer = await api.verify(chosen.a, chosen.b, { signal: controller.signal });
      if (!ctx.isCurrent()) return;
      showAnswer(answer);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      result.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      compare.disabled = !(chosen.a && chosen.b);
    }
  }

  function showAnswer(answer) {
    const match = Boolean(answer.match);
    const sim = Number(answer.similarity);
    const threshold = Number(answer.threshold);
    const word = match ? "Same person" : "Different people";
    const clamp = (v) => Math.max(0, Math.min(1, v));
    const fill = h("div", { class: "fill" });
    fill.style.width = `${(clamp(sim) * 100).toFixed(1)}%`;
    const mark = h("div", { class: "mark", title: "threshold" });
    mark.style.left = `${(clamp(threshold) * 100).toFixed(1)}%`;
    const meter = h(
      "div",
      {
        class: "meter",
        role: "meter",
        "aria-label": "Similarity",
        "aria-valuemin": "0",
        "aria-valuemax": "1",
        "aria-valuenow": String(clamp(sim)),
        "aria-valuetext": `${formatSimilarity(sim)}, threshold ${formatSimilarity(threshold)}`,
      },
      fill,
      mark,
    );
    result.replaceChildren(
      h(
        "div",
        { class: `card ${match ? "match" : "nomatch"}`, id: "verify-answer" },
        h(
          "div",
          { class: `verdict ${match ? "match" : "nomatch"}` },
          h("span", { class: `badge ${match ? "ok" : "bad"}` }, match ? "Match" : "No match"),
          h("span", { class: "word", id: "verify-decision" }, word),
        ),
        meter,
        h(
          "p",
          { id: "verify-similarity" },
          h("strong", {}, `Similarity ${formatSimilarity(sim)}`),
          ` — the match threshold is ${formatSimilarity(threshold)} (the mark on the bar).`,
        ),
        answer.model ? h("p", { class: "muted" }, `Model: ${answer.model}`) : null,
      ),
    );
    announce(`${word}. Similarity ${formatSimilarity(sim)}, threshold ${formatSimilarity(threshold)}.`);
  }

  ctx.main.append(
    pageHead("Verify", "Are the people in two photos the same person?"),
    h(
      "form",
      { onsubmit: onSubmit, novalidate: true },
      h("div", { class: "two-col" }, slot("a", "Photo A"), slot("b", "Photo B")),
      h("div", { class: "actions start" }, compare),
    ),
    result,
  );

  return () => {
    controller?.abort();
    urls.clear();
  };
}
