// Recognise: photos (files or the camera) -> boxes with names drawn on a canvas over each;
// an unknown face can be named on the spot ("This is …", see assign.js).

import { api } from "../api.js";
import { assignForm } from "./assign.js";
import {
  announce,
  dropZone,
  errorNotice,
  errorText,
  formatSimilarity,
  h,
  icon,
  ICONS,
  pageHead,
  plural,
  spinner,
  UrlBag,
} from "../ui.js";

const COLORS = { identified: "#1fa34a", unknown: "#e0a100", ambiguous: "#d2552d" };

function cameraAvailable() {
  return Boolean(
    window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia,
  );
}

/** What to call one face of the answer: its label on the canvas and its line in the list. */
function describe(face) {
  const sim = formatSimilarity(face.similarity);
  if (face.decision === "identified" && face.person) {
    return {
      kind: "identified",
      label: `${face.person.name} ${sim}`,
      text: [h("strong", {}, face.person.name), ` — similarity ${sim}`],
      plain: `${face.person.name}, similarity ${sim}`,
    };
  }
  if (face.decision === "ambiguous") {
    const a = face.person && face.person.name;
    const r = face.runner_up || {};
    const b = r.name || (r.person && r.person.name);
    const why =
      a && b
        ? `too close to call between ${a} and ${b}`
        : b
          ? `as close to ${b} as to another enrolled person`
          : "too close to call between two enrolled people";
    return {
      kind: "ambiguous",
      label: "unknown",
      text: [h("strong", {}, "unknown"), ` — ${why}`],
      plain: `unknown, ${why}`,
    };
  }
  // The closest person even when the face is unknown: the API's `best` when it sends one,
  // else just how close the nearest enrolled person came.
  const best = face.best || face.candidate || null;
  const bestName = best && (best.name || (best.person && best.person.name));
  const bestSim = best && typeof best.similarity === "number" ? best.similarity : face.similarity;
  const closest =
    bestName && typeof bestSim === "number"
      ? `closest: ${bestName} (${formatSimilarity(bestSim)}), not similar enough`
      : typeof bestSim === "number"
        ? `no enrolled person is similar enough (the closest scored ${formatSimilarity(bestSim)})`
        : "no one is enrolled to compare with";
  return {
    kind: "unknown",
    label: "unknown",
    text: [h("strong", {}, "unknown"), ` — ${closest}`],
    plain: `unknown, ${closest}`,
  };
}

function overlap(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const hh = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && hh > 0 ? w * hh : 0;
}

/**
 * Where each face's label goes: above its box, below it, inside its top edge or shifted
 * sideways, whichever covers the least of the other faces' boxes and the labels already
 * placed; a label that collides everywhere is shortened to the face's number (the list
 * beside the photo says who it is).
 */
function placeLabels(g, boxes, shownWidth, shownHeight, fontPx) {
  const padX = 5;
  const padY = 3;
  const boxH = fontPx + padY * 2;
  const placed = [];
  const clampX = (x, w) => Math.max(0, Math.min(x, shownWidth - w));
  const clampY = (y) => Math.max(0, Math.min(y, shownHeight - boxH));
  // Wide faces first: they have the most room.
  const order = boxes.map((_, i) => i).sort((i, j) => boxes[j].w - boxes[i].w);
  for (const i of order) {
    const box = boxes[i];
    let best = null;
    for (const text of [box.label, String(i + 1)]) {
      const w = g.measureText(text).width + padX * 2;
      const candidates = [
        { x: box.x - 1, y: box.y - boxH },
        { x: box.x - 1, y: box.y + box.h + 1 },
        { x: box.x + 1, y: box.y + 1 },
        { x: box.x + box.w - w + 1, y: box.y - boxH },
        { x: box.x + box.w - w + 1, y: box.y + box.h + 1 },
      ].map((c) => ({ x: clampX(c.x, w), y: clampY(c.y), w, h: boxH, text }));
      for (const c of candidates) {
        let cost = 0;
        boxes.forEach((other, j) => {
          if (j !== i) cost += overlap(c, other) * 4;
        });
        for (const p of placed) if (p) cost += overlap(c, p) * 8;
        // Covering its own face is tolerable, but less good than sitting outside it.
        cost += overlap(c, box) * 0.25;
        if (text !== box.label) cost += 1 + w; // the full name is better when it fits
        if (!best || cost < best.cost) best = { ...c, cost };
      }
      if (best.cost === 0) break;
    }
    placed[i] = best;
  }
  return placed;
}

/** Draw the boxes of `answer` on `canvas`, which lies exactly over `img`. */
function drawBoxes(canvas, img, answer) {
  const shownWidth = img.clientWidth;
  const shownHeight = img.clientHeight;
  if (!shownWidth || !shownHeight) return;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(shownWidth * dpr);
  canvas.height = Math.round(shownHeight * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, shownWidth, shownHeight);
  const sourceWidth = answer.width || img.naturalWidth;
  const sourceHeight = answer.height || img.naturalHeight;
  const sx = shownWidth / sourceWidth;
  const sy = shownHeight / sourceHeight;
  const fontPx = Math.max(12, Math.min(18, Math.round(shownWidth / 32)));
  g.font = `600 ${fontPx}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  g.textBaseline = "top";
  const boxes = answer.faces.map((face) => {
    const [x1, y1, x2, y2] = face.bbox;
    const { kind, label } = describe(face);
    return { x: x1 * sx, y: y1 * sy, w: (x2 - x1) * sx, h: (y2 - y1) * sy, kind, label };
  });
  for (const box of boxes) {
    g.lineWidth = 3;
    g.strokeStyle = "rgba(0,0,0,0.55)";
    g.strokeRect(box.x, box.y, box.w, box.h);
    g.lineWidth = 2;
    g.strokeStyle = COLORS[box.kind];
    g.strokeRect(box.x, box.y, box.w, box.h);
  }
  const labels = placeLabels(g, boxes, shownWidth, shownHeight, fontPx);
  boxes.forEach((box, i) => {
    const l = labels[i];
    g.fillStyle = COLORS[box.kind];
    g.fillRect(l.x, l.y, l.w, l.h);
    g.fillStyle = box.kind === "identified" ? "#ffffff" : "#111111";
    g.fillText(l.text, l.x + 5, l.y + 4);
  });
  // Where things were drawn, in CSS pixels (for the browser test of label placement).
  canvas.dataset.labels = JSON.stringify(labels.map((l) => [l.x, l.y, l.w, l.h].map(Math.round)));
  canvas.dataset.boxes = JSON.stringify(boxes.map((b) => [b.x, b.y, b.w, b.h].map(Math.round)));
}

export async function renderRecognise(ctx) {
  const urls = new UrlBag();
  let stream = null;
  let controller = null;
  let resizeObserver = null;

  const zone = dropZone({
    id: "recognise-file",
    label: "Choose photos or drop them here",
    hint: "Everyone in them is looked up in the gallery. Several photos are done one by one.",
    multiple: true,
    onFiles: (files) => (files.length === 1 ? recogniseOne(files[0]) : recogniseMany(files)),
  });

  const video = h("video", { playsinline: true, muted: true, autoplay: true, "aria-label": "Camera preview" });
  const cameraPanel = h(
    "div",
    { class: "camera stack", hidden: true },
    video,
    h(
      "div",
      { class: "actions start" },
      h("button", { type: "button", class: "button primary", id: "take-photo", onclick: () => capture() }, "Take photo"),
      h("button", { type: "button", class: "button", onclick: () => stopCamera(true) }, "Stop camera"),
    ),
  );
  const cameraButton = cameraAvailable()
    ? h(
        "button",
        { type: "button", class: "button", id: "use-camera", onclick: () => startCamera() },
        icon(ICONS.camera),
        "Use the camera",
      )
    : null;
  const status = h("div", { id: "recognise-status" });
  const stageHolder = h("div", { id: "recognise-stage" });
  const list = h("ol", { class: "results-list", id: "recognise-results" });
  const resultRegion = h("div", { class: "stack", "aria-live": "polite" }, status, list);
  const batchList = h("ol", { class: "photo-list batch-list", id: "recognise-batch" });
  const batchStatus = h("p", { class: "muted", id: "recognise-batch-status", "aria-live": "polite" });
  const batchSection = h(
    "section",
    { class: "card", "aria-labelledby": "recognise-batch-title", hidden: true },
    h("h2", { id: "recognise-batch-title" }, "All photos"),
    batchStatus,
    batchList,
  );

  ctx.main.append(
    pageHead("Recognise", "Find out who is in a photo, or in several."),
    h(
      "div",
      { class: "card stack" },
      zone,
      cameraButton
        ? h("div", { class: "actions start" }, cameraButton)
        : h(
            "p",
            { class: "hint" },
            "The camera can be used when the page is opened over HTTPS or on localhost.",
          ),
      cameraPanel,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "recognise-title" },
      h("h2", { id: "recognise-title" }, "Result"),
      h("div", { class: "result-grid" }, stageHolder, resultRegion),
    ),
    batchSection,
  );
  status.append(h("p", { class: "muted" }, "No photo yet."));

  /** Ask the server who is in `file`; the faces come back sorted from left to right. */
  async function identify(file, signal) {
    const answer = await api.identify(file, { signal });
    const faces = [...(answer.faces || [])].sort((a, b) => a.bbox[0] - b.bbox[0]);
    return { ...answer, faces };
  }

  function summaryOf(answer) {
    const faces = answer.faces;
    const known = faces.filter((f) => describe(f).kind === "identified").length;
    return faces.length
      ? `${plural(faces.length, "face")} found: ${known} recognised, ${faces.length - known} unknown.`
      : "No face was found in this photo.";
  }

  async function recogniseOne(file) {
    controller?.abort();
    controller = new AbortController();
    batchSection.hidden = true;
    await recognise(file, controller.signal);
  }

  /** Several photos: each is recognised in turn and listed; any can be shown in full. */
  async function recogniseMany(files) {
    controller?.abort();
    controller = new AbortController();
    const signal = controller.signal;
    batchSection.hidden = false;
    const rows = files.map((file) => {
      const src = urls.add(file);
      const text = h("div", { class: "muted" }, "Waiting…");
      const show = h(
        "button",
        { type: "button", class: "button small", disabled: true, "aria-label": `Show ${file.name}` },
        "Show",
      );
      const li = h(
        "li",
        { class: "photo-item" },
        h("img", { src, alt: "" }),
        h("div", {}, h("div", { class: "name" }, file.name || "Photo"), text),
        show,
      );
      return { file, li, text, show, answer: null };
    });
    batchList.replaceChildren(...rows.map((r) => r.li));
    let done = 0;
    let faces = 0;
    let known = 0;
    for (const [i, row] of rows.entries()) {
      if (signal.aborted || !ctx.isCurrent()) return;
      batchStatus.replaceChildren(spinner("Recognising"), ` Recognising photo ${i + 1} of ${files.length}…`);
      row.text.replaceChildren(spinner("Recognising"), " Recognising…");
      try {
        row.answer = await identify(row.file, signal);
        const names = row.answer.faces.map((f) => describe(f).label);
        row.text.textContent = `${summaryOf(row.answer)}${names.length ? ` ${names.join(", ")}` : ""}`;
        row.show.disabled = false;
        row.show.addEventListener("click", () => {
          controller?.abort();
          controller = new AbortController();
          show(row.file, row.answer, controller.signal);
          stageHolder.scrollIntoView({ block: "nearest" });
        });
        faces += row.answer.faces.length;
        known += row.answer.faces.filter((f) => describe(f).kind === "identified").length;
        if (i === 0) show(row.file, row.answer, signal);
      } catch (exc) {
        if (exc.name === "AbortError" || !ctx.isCurrent()) return;
        row.text.replaceChildren(h("span", { class: "error-text" }, errorText(exc)));
      }
      done++;
    }
    const words =
      `${plural(done, "photo")} recognised: ${plural(faces, "face")}, ` +
      `${known} recognised, ${faces - known} unknown.`;
    batchStatus.textContent = words;
    announce(words);
  }

  async function recognise(file, signal) {
    resizeObserver?.disconnect();
    stageHolder.replaceChildren();
    list.replaceChildren();
    status.replaceChildren(h("p", { class: "muted" }, spinner("Recognising"), " Recognising…"));
    let answer;
    try {
      answer = await identify(file, signal);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      status.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
      return;
    }
    if (!ctx.isCurrent() || signal.aborted) return;
    await show(file, answer, signal);
  }

  /** Show one photo with its boxes, and the list of its faces ("This is …" on unknown ones). */
  async function show(file, answer, signal) {
    resizeObserver?.disconnect();
    const img = h("img", { src: urls.add(file), alt: "The photo being recognised" });
    const canvas = h("canvas", { role: "img", "aria-label": "Face boxes" });
    stageHolder.replaceChildren(h("div", { class: "stage" }, img, canvas));
    await img.decode().catch(() => undefined);
    if (!ctx.isCurrent() || signal.aborted) return;
    const faces = answer.faces;
    const described = faces.map(describe);
    const summary = summaryOf(answer);
    status.replaceChildren(h("p", {}, summary, faces.length > 1 ? " From left to right:" : ""));
    list.replaceChildren(
      ...described.map((d, i) => {
        const li = h(
          "li",
          { dataset: { decision: faces[i].decision } },
          h("span", { class: `swatch ${d.kind}`, "aria-hidden": "true" }),
          h("span", { class: "face-line" }, `Face ${i + 1}: `, d.text),
        );
        if (d.kind !== "identified") {
          const button = h(
            "button",
            { type: "button", class: "button small assign-button", "aria-expanded": "false" },
            "This is …",
          );
          button.setAttribute("aria-label", `Face ${i + 1}: this is …`);
          button.addEventListener("click", () => {
            const open = li.querySelector(".assign-form");
            if (open) {
              open.remove();
              button.setAttribute("aria-expanded", "false");
              return;
            }
            const { form, focus } = assignForm({
              file,
              face: faces[i],
              faceCount: faces.length,
              index: i,
              onCancel: () => {
                form.remove();
                button.setAttribute("aria-expanded", "false");
                button.focus();
              },
              onAssigned: (person) => {
                announce(`Face ${i + 1} enrolled for ${person.name}.`);
                // Recognise the photo again after a moment, so the new name shows on it.
                setTimeout(async () => {
                  if (!ctx.isCurrent()) return;
                  try {
                    const again = await identify(file, signal);
                    if (ctx.isCurrent() && !signal.aborted) await show(file, again, signal);
                  } catch {
                    // The enrolment message stays; the boxes stay as they were.
                  }
                }, 1200);
              },
            });
            li.append(form);
            button.setAttribute("aria-expanded", "true");
            focus();
          });
          li.querySelector(".face-line").append(" ", button);
        }
        return li;
      }),
    );
    canvas.setAttribute(
      "aria-label",
      faces.length
        ? `Boxes over the photo: ${described.map((d) => d.plain).join("; ")}`
        : "No face boxes",
    );
    const redraw = () => drawBoxes(canvas, img, answer);
    redraw();
    resizeObserver = new ResizeObserver(redraw);
    resizeObserver.observe(img);
    announce(summary + (faces.length ? ` ${described.map((d) => d.plain).join(". ")}.` : ""));
  }

  async function startCamera() {
    status.replaceChildren();
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
    } catch (exc) {
      const text =
        exc && exc.name === "NotAllowedError"
          ? "The browser was not allowed to use the camera."
          : exc && exc.name === "NotFoundError"
            ? "No camera was found."
            : `The camera could not be started (${(exc && exc.message) || exc}).`;
      status.replaceChildren(h("p", { class: "notice error", role: "alert" }, text));
      return;
    }
    if (!ctx.isCurrent()) {
      stopCamera(false);
      return;
    }
    video.srcObject = stream;
    cameraPanel.hidden = false;
    if (cameraButton) cameraButton.hidden = true;
    cameraPanel.querySelector("#take-photo").focus();
  }

  function stopCamera(focusButton) {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    cameraPanel.hidden = true;
    if (cameraButton) {
      cameraButton.hidden = false;
      if (focusButton) cameraButton.focus();
    }
  }

  async function capture() {
    if (!video.videoWidth) return;
    const frame = document.createElement("canvas");
    frame.width = video.videoWidth;
    frame.height = video.videoHeight;
    frame.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.92));
    stopCamera(true);
    if (blob) await recogniseOne(new File([blob], "camera.jpg", { type: "image/jpeg" }));
  }

  return () => {
    controller?.abort();
    resizeObserver?.disconnect();
    stopCamera(false);
    urls.clear();
  };
}
