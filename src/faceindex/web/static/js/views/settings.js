// Settings: the decision thresholds in words (as the false-match rate they were calibrated
// for), and a backup of the whole gallery (export and import, admin scope).

import { api } from "../api.js";
import { announce, errorNotice, errorText, formatSimilarity, h, pageHead, plural, spinner } from "../ui.js";

/** 0.0001 -> "1 in 10,000 (0.01 %)". */
export function rateText(rate) {
  if (typeof rate !== "number" || !(rate > 0)) return "–";
  const oneIn = Math.round(1 / rate);
  const pct = rate * 100;
  return `1 in ${oneIn.toLocaleString("en")} (${pct < 0.01 ? pct.toPrecision(1) : +pct.toFixed(3)} %)`;
}

export async function renderSettings(ctx) {
  const thresholds = h("div", { id: "threshold-info" }, h("p", { class: "muted" }, spinner("Loading"), " Loading…"));
  const exportStatus = h("div", { id: "export-status", "aria-live": "polite" });
  const importFile = h("input", { type: "file", id: "import-file", "aria-describedby": "import-hint" });
  const importStatus = h("div", { id: "import-status", "aria-live": "polite" });
  const exportButton = h("button", { type: "button", class: "button", id: "export-gallery", onclick: () => doExport() }, "Download an export");
  const importForm = h(
    "form",
    { class: "stack", novalidate: true, onsubmit: (e) => doImport(e) },
    h(
      "div",
      { class: "field" },
      h("label", { for: "import-file" }, "Export file to import"),
      importFile,
      h("p", { class: "hint", id: "import-hint" }, "People already here with the same name are merged; templates already here are skipped."),
    ),
    h("div", { class: "actions start" }, h("button", { type: "submit", class: "button primary", id: "import-gallery" }, "Import")),
    importStatus,
  );

  ctx.main.append(
    pageHead("Settings", "How sure the server must be before it names someone, and gallery backups."),
    h("section", { class: "card", "aria-labelledby": "threshold-title" }, h("h2", { id: "threshold-title" }, "Decision threshold"), thresholds),
    h(
      "section",
      { class: "card", "aria-labelledby": "backup-title" },
      h("h2", { id: "backup-title" }, "Gallery backup"),
      h("p", {}, "Export the whole gallery (people and face templates) to a file, or import one from another server. Both need an API key with the admin scope."),
      h("div", { class: "actions start" }, exportButton),
      exportStatus,
      importForm,
    ),
  );

  try {
    const s = await api.evalSummary();
    if (!ctx.isCurrent()) return;
    const calibrated = s.calibrated_threshold ?? s.default_threshold ?? null;
    const rows = [
      [
        "Verification threshold",
        `${formatSimilarity(s.threshold)} similarity — ` +
          (typeof s.target_fmr === "number"
            ? `calibrated so that two different people are taken for one in about ${rateText(s.target_fmr)} comparisons`
            : "set by hand: not calibrated to a false-match rate"),
      ],
      ["Target false-match rate", typeof s.target_fmr === "number" ? rateText(s.target_fmr) : "none (threshold set by hand)"],
    ];
    if (typeof calibrated === "number") rows.push(["Calibrated default", formatSimilarity(calibrated)]);
    rows.push(
      ["Identification threshold", `${formatSimilarity(s.identify_threshold)} similarity (to name someone in Recognise)`],
      ["Margin over the runner-up", formatSimilarity(s.margin)],
      ["How a person's faces count", s.rule === "max" ? "the best-matching face (max)" : s.rule],
      ["Model", s.model + (s.gallery_model && s.gallery_model !== s.model ? ` (the gallery was built with ${s.gallery_model})` : "")],
      ["Gallery", `${plural(s.people, "person", "people")}, ${plural(s.templates, "face template")}`],
    );
    thresholds.replaceChildren(
      h("dl", { class: "details wide" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h(
        "p",
        { class: "hint" },
        "A lower threshold names more people but mistakes more strangers for someone; the server's ",
        h("code", {}, "--threshold"),
        " and ",
        h("code", {}, "--target-fmr"),
        " options change it.",
      ),
    );
  } catch (exc) {
    if (!ctx.isCurrent()) return;
    thresholds.replaceChildren(errorNotice(exc));
  }

  async function doExport() {
    exportButton.disabled = true;
    exportStatus.replaceChildren(h("p", { class: "muted" }, spinner("Exporting"), " Preparing the export…"));
    try {
      const { blob, filename } = await api.exportGallery();
      const name = filename || `faceindex-gallery-${new Date().toISOString().slice(0, 10)}.json`;
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const size = blob.size < 1024 * 1024 ? `${Math.max(1, Math.round(blob.size / 1024))} KB` : `${(blob.size / 1024 / 1024).toFixed(1)} MB`;
      exportStatus.replaceChildren(h("p", { class: "notice ok" }, `Export downloaded: ${name} (${size}). It holds face templates: keep it safe.`));
      announce("Export downloaded.");
    } catch (exc) {
      exportStatus.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      exportButton.disabled = false;
    }
  }

  async function doImport(event) {
    event.preventDefault();
    const file = importFile.files[0];
    if (!file) {
      importStatus.replaceChildren(h("p", { class: "notice error", role: "alert" }, "Choose an export file."));
      importFile.focus();
      return;
    }
    const button = importForm.querySelector("button[type=submit]");
    button.disabled = true;
    importStatus.replaceChildren(h("p", { class: "muted" }, spinner("Importing"), ` Importing ${file.name}…`));
    try {
      const r = await api.importGallery(file);
      const words =
        `Imported ${file.name}: ${plural(r.people_created ?? 0, "person", "people")} added, ` +
        `${r.people_merged ?? 0} merged with people already here, ` +
        `${plural(r.templates_added ?? 0, "face template")} added, ${r.skipped ?? 0} skipped.`;
      importStatus.replaceChildren(h("p", { class: "notice ok", id: "import-result" }, words));
      announce(words);
      importFile.value = "";
    } catch (exc) {
      importStatus.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      button.disabled = false;
    }
  }
}
