// Recognise: photos (files or the camera) -> boxes with names drawn on a canvas over each;
// an unknown face can be named on the spot ("This is …", see assign.js).

import { api } from "../api.js";
import { assignForm } from "./assign.js";
import { grabFrame, livenessPanel } from "./liveness.js";
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

/** Intersection over union of two [x1, y1, x2, y2] boxes. */
function iou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const hh = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || hh <= 0) return 0;
  const inter = w * hh;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** The attributes (from /v1/analyze) of the face at `bbox`, or null. */
function attributesFor(analysis, bbox) {
  if (!analysis || !analysis.faces) return null;
  let best = null;
  let bestIou = 0.3;
  for (const face of analysis.faces) {
    const o = iou(face.bbox, bbox);
    if (o > bestIou) {
      best = face;
      bestIou = o;
    }
  }
  return best;
}

/** One face's estimated attributes in words: "age about 52 (44–60) · male · happy · …". */
function attributeText(a) {
  const parts = [];
  if (typeof a.age === "number") {
    const range = a.age_range ? ` (${Math.round(a.age_range[0])}–${Math.round(a.age_range[1])})` : "";
    parts.push(`age about ${Math.round(a.age)}${range}`);
  }
  if (a.gender) parts.push(`${a.gender.label}`);
  if (a.expression) parts.push(a.expression.label);
  if (a.pose) {
    const yaw = Math.round(a.pose.yaw);
    parts.push(
      Math.abs(yaw) < 10
        ? "facing the camera"
        : `head turned ${Math.abs(yaw)}° towards the photo's ${yaw > 0 ? "right" : "left"}`,
    );
  }
  return parts.join(" · ");
}

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
  let challengeRun = 0; // bumped to stop a running liveness check
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
  const liveBox = h("input", { type: "checkbox", id: "camera-liveness", checked: true });
  const liveness = livenessPanel();
  const takeButton = h(
    "button",
    { type: "button", class: "button primary", id: "take-photo", onclick: () => takePhoto() },
    "Take photo",
  );
  const cameraPanel = h(
    "div",
    { class: "camera stack", hidden: true },
    video,
    liveness.element,
    h(
      "label",
      { class: "check", for: "camera-liveness" },
      liveBox,
      " Check that a live person is in front of the camera first (a few moves: blink, turn, smile…)",
    ),
    h(
      "div",
      { class: "actions start" },
      takeButton,
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
  const attrsNote = h(
    "p",
    { class: "hint", id: "attributes-note", hidden: true },
    "Age, gender, expression and head pose are a model's estimates from this photo, " +
      "not facts about the person; they can be wrong, and are never stored.",
  );
  const resultRegion = h("div", { class: "stack", "aria-live": "polite" }, status, list, attrsNote);
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
  async function identify(file, signal, livenessToken = "") {
    const answer = await api.identify(file, { signal, livenessToken });
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

  async function recogniseOne(file, { livenessToken = "" } = {}) {
    controller?.abort();
    controller = new AbortController();
    batchSection.hidden = true;
    await recognise(file, controller.signal, livenessToken);
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

  async function recognise(file, signal, livenessToken = "") {
    resizeObserver?.disconnect();
    stageHolder.replaceChildren();
    list.replaceChildren();
    attrsNote.hidden = true;
    status.replaceChildren(h("p", { class: "muted" }, spinner("Recognising"), " Recognising…"));
    let answer;
    // The attributes are asked for alongside; without them the names still show.
    const analysis = api.analyze(file, { signal }).catch(() => null);
    try {
      answer = await identify(file, signal, livenessToken);
      answer = { ...answer, analysis: await analysis, live: Boolean(livenessToken) };
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
    if (answer.live) {
      status.prepend(
        h(
          "p",
          { class: "notice ok", id: "liveness-result", dataset: { state: "passed" } },
          "Liveness check passed: a live person was in front of the camera.",
        ),
      );
    }
    const attrs = faces.map((f) => attributesFor(answer.analysis, f.bbox));
    list.replaceChildren(
      ...described.map((d, i) => {
        const li = h(
          "li",
          { dataset: { decision: faces[i].decision } },
          h("span", { class: `swatch ${d.kind}`, "aria-hidden": "true" }),
          h("span", { class: "face-line" }, `Face ${i + 1}: `, d.text),
        );
        const words = attrs[i] ? attributeText(attrs[i]) : "";
        if (words) li.append(h("div", { class: "face-attrs muted" }, `Estimated: ${words}`));
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
    attrsNote.hidden = !attrs.some(Boolean);
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
    challengeRun += 1;
    takeButton.disabled = false;
    liveness.element.hidden = true;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    cameraPanel.hidden = true;
    if (cameraButton) {
      cameraButton.hidden = false;
      if (focusButton) cameraButton.focus();
    }
  }

  function takePhoto() {
    if (liveBox.checked) runChallenge();
    else capture();
  }

  /** Run a liveness challenge on the camera, then recognise a frame with its token. */
  async function runChallenge() {
    if (!video.videoWidth) return;
    const run = ++challengeRun;
    const current = () => run === challengeRun && ctx.isCurrent();
    controller?.abort();
    controller = new AbortController();
    takeButton.disabled = true;
    status.replaceChildren(h("p", { class: "muted" }, spinner("Starting"), " Starting the liveness check…"));
    const result = await liveness.run(video, {
      signal: controller.signal,
      isCurrent: current,
      onStarted: () =>
        status.replaceChildren(h("p", { class: "muted" }, "Follow the instructions over the camera.")),
    });
    if (!result || !current()) return;
    if (result.state === "passed") {
      const frame = await grabFrame(video, 1280);
      stopCamera(true);
      if (frame) {
        const file = new File([frame.blob], "camera.jpg", { type: "image/jpeg" });
        await recogniseOne(file, { livenessToken: result.token });
      }
      return;
    }
    takeButton.disabled = false;
    const words = `Liveness check failed: ${result.message} Nobody was recognised.`;
    status.replaceChildren(
      h(
        "p",
        {
          class: "notice error",
          role: "alert",
          id: "liveness-result",
          dataset: { state: "failed", reason: result.reason },
        },
        words,
      ),
    );
    announce(words);
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
