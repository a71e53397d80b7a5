// Protect a photo: the privacy cloak. One photo in, the cloaked photo out (before/after side
// by side, a download link), and per face how alike each recogniser still finds it.

import { api } from "../api.js";
import {
  announce,
  dropZone,
  errorNotice,
  errorText,
  h,
  pageHead,
  plural,
  spinner,
  UrlBag,
} from "../ui.js";

const STRENGTHS = [
  ["low", "Low: least visible"],
  ["medium", "Medium (recommended)"],
  ["high", "High: strongest, most visible"],
];

/** "photo.jpg" -> "photo-cloaked.jpg", with the suffix of the answer's type. */
function cloakedName(name, mediaType) {
  const suffix = { "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp" }[mediaType];
  const stem = (name || "photo").replace(/\.[^.]*$/, "") || "photo";
  return `${stem}-cloaked${suffix || ".png"}`;
}

/** Three decimals: dlib's threshold (0.929) sits close to its scores. */
function similarity(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(3) : "–";
}

function base64Blob(text, type) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type });
}

export async function renderCloak(ctx) {
  const urls = new UrlBag();
  let chosen = null;
  let controller = null;

  const submit = h(
    "button",
    { type: "submit", class: "button primary", id: "cloak-submit", disabled: true },
    "Protect photo",
  );
  const select = h(
    "select",
    { id: "cloak-strength", name: "strength" },
    STRENGTHS.map(([value, label]) =>
      h("option", { value, selected: value === "medium" ? "" : undefined }, label),
    ),
  );
  select.value = "medium";
  const before = h("img", { class: "preview", alt: "", hidden: true, id: "cloak-before" });
  const name = h("p", { class: "muted", id: "cloak-name" }, "No photo chosen.");
  const result = h("div", { id: "cloak-result", "aria-live": "polite" });

  const zone = dropZone({
    id: "cloak-file",
    label: "Choose a photo or drop it here",
    hint: "Every face in it is protected; the rest of the photo is left as it is.",
    onFiles: ([file]) => {
      if (before.src) urls.revoke(before.src);
      chosen = file;
      before.src = urls.add(file);
      before.alt = `Original: ${file.name || "chosen photo"}`;
      before.hidden = false;
      name.textContent = file.name || "Photo chosen.";
      submit.disabled = false;
      result.replaceChildren();
      announce("Photo chosen.");
    },
  });

  async function onSubmit(event) {
    event.preventDefault();
    if (!chosen) return;
    controller?.abort();
    controller = new AbortController();
    submit.disabled = true;
    result.replaceChildren(
      h(
        "p",
        { class: "muted" },
        spinner("Protecting"),
        " Protecting the photo… this takes a few seconds per face.",
      ),
    );
    try {
      const answer = await api.cloak(chosen, select.value, { signal: controller.signal });
      if (!ctx.isCurrent()) return;
      showAnswer(answer);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      result.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      submit.disabled = !chosen;
    }
  }

  function faceRow(face, i) {
    const models = Object.keys(face.similarity_after || {});
    return h(
      "li",
      { class: "cloak-face" },
      h("strong", {}, `Face ${i + 1}: `),
      models
        .map(
          (m) =>
            `${m} ${similarity(face.similarity_before[m])} → ` +
            `${similarity(face.similarity_after[m])}`,
        )
        .join("; "),
      face.ssim != null ? ` · SSIM ${Number(face.ssim).toFixed(3)}` : "",
      face.psnr != null ? ` · PSNR ${Number(face.psnr).toFixed(1)} dB` : "",
    );
  }

  function showAnswer(answer) {
    const blob = base64Blob(answer.image_base64, answer.media_type);
    const url = urls.add(blob);
    const filename = cloakedName(chosen && chosen.name, answer.media_type);
    const faces = answer.faces || [];
    result.replaceChildren(
      h(
        "div",
        { class: "card verify-slot", id: "cloak-answer" },
        h("h2", {}, "Protected photo"),
        h("img", { class: "preview", src: url, alt: "The protected photo", id: "cloak-after" }),
        h(
          "p",
          {},
          h(
            "a",
            { class: "button primary", href: url, download: filename, id: "cloak-download" },
            `Download ${filename}`,
          ),
        ),
        h(
          "p",
          { id: "cloak-summary" },
          `${plural(faces.length, "face")} protected (${answer.strength}, ` +
            `${Number(answer.seconds).toFixed(1)} s). Similarity of each face to its ` +
            "original, before → after, per recogniser (lower is better protected):",
        ),
        h("ul", { id: "cloak-faces" }, faces.map(faceRow)),
        h(
          "p",
          { class: "hint" },
          "The cloak makes today's recognisers stop linking this photo to your other photos. " +
            "It is not a guarantee: recognisers trained to undo it, or future models, may " +
            "still recognise you. Never share the original.",
        ),
      ),
    );
    announce(`${plural(faces.length, "face")} protected. The download link is ready.`);
  }

  ctx.main.append(
    pageHead(
      "Protect a photo",
      "Cloak the faces in a photo before you share it, so face recognition no longer links it to you.",
    ),
    h(
      "form",
      { onsubmit: onSubmit, novalidate: true },
      h(
        "div",
        { class: "two-col" },
        h(
          "section",
          { class: "card verify-slot", "aria-labelledby": "cloak-title" },
          h("h2", { id: "cloak-title" }, "Original photo"),
          zone,
          name,
          before,
        ),
        h(
          "section",
          { class: "card" },
          h("h2", {}, "Strength"),
          h("label", { for: "cloak-strength" }, "How strong a change"),
          select,
          h("div", { class: "actions start" }, submit),
          result,
        ),
      ),
    ),
  );

  return () => {
    controller?.abort();
    urls.clear();
  };
}
