// Recognise: one photo (file or camera) -> boxes with names drawn on a canvas over it.

import { api } from "../api.js";
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
  return {
    kind: "unknown",
    label: "unknown",
    text: [h("strong", {}, "unknown"), " — no enrolled person is similar enough"],
    plain: "unknown",
  };
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
  const fontPx = Math.max(13, Math.min(18, Math.round(shownWidth / 32)));
  g.font = `600 ${fontPx}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  g.textBaseline = "top";
  for (const face of answer.faces) {
    const [x1, y1, x2, y2] = face.bbox;
    const x = x1 * sx;
    const y = y1 * sy;
    const w = (x2 - x1) * sx;
    const hgt = (y2 - y1) * sy;
    const { kind, label } = describe(face);
    const color = COLORS[kind];
    g.lineWidth = 3;
    g.strokeStyle = "rgba(0,0,0,0.55)";
    g.strokeRect(x, y, w, hgt);
    g.lineWidth = 2;
    g.strokeStyle = color;
    g.strokeRect(x, y, w, hgt);
    const padX = 5;
    const padY = 3;
    const textWidth = g.measureText(label).width;
    const boxW = textWidth + padX * 2;
    const boxH = fontPx + padY * 2;
    let lx = Math.min(Math.max(0, x - 1), shownWidth - boxW);
    lx = Math.max(0, lx);
    // Above the box when there is room, else just below its top edge.
    const ly = y - boxH >= 0 ? y - boxH : Math.min(y + hgt, shownHeight - boxH);
    g.fillStyle = color;
    g.fillRect(lx, ly, boxW, boxH);
    g.fillStyle = kind === "identified" ? "#ffffff" : "#111111";
    g.fillText(label, lx + padX, ly + padY + 1);
  }
}

export async function renderRecognise(ctx) {
  const urls = new UrlBag();
  let stream = null;
  let controller = null;
  let resizeObserver = null;

  const zone = dropZone({
    id: "recognise-file",
    label: "Choose a photo or drop it here",
    hint: "Everyone in it is looked up in the gallery.",
    onFiles: ([file]) => recognise(file),
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

  ctx.main.append(
    pageHead("Recognise", "Find out who is in a photo."),
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
  );
  status.append(h("p", { class: "muted" }, "No photo yet."));

  async function recognise(file) {
    controller?.abort();
    controller = new AbortController();
    resizeObserver?.disconnect();
    const img = h("img", { src: urls.add(file), alt: "The photo being recognised" });
    const canvas = h("canvas", { role: "img", "aria-label": "Face boxes" });
    const stage = h("div", { class: "stage" }, img, canvas);
    stageHolder.replaceChildren(stage);
    list.replaceChildren();
    status.replaceChildren(h("p", { class: "muted" }, spinner("Recognising"), " Recognising…"));
    let answer;
    try {
      [answer] = await Promise.all([
        api.identify(file, { signal: controller.signal }),
        img.decode().catch(() => undefined),
      ]);
    } catch (exc) {
      if (exc.name === "AbortError" || !ctx.isCurrent()) return;
      status.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
      return;
    }
    if (!ctx.isCurrent()) return;
    const faces = [...(answer.faces || [])].sort((a, b) => a.bbox[0] - b.bbox[0]);
    answer = { ...answer, faces };
    const described = faces.map(describe);
    const known = described.filter((d) => d.kind === "identified").length;
    const summary = faces.length
      ? `${plural(faces.length, "face")} found: ${known} recognised, ${faces.length - known} unknown.`
      : "No face was found in this photo.";
    status.replaceChildren(h("p", {}, summary, faces.length > 1 ? " From left to right:" : ""));
    list.replaceChildren(
      ...described.map((d, i) =>
        h(
          "li",
          { dataset: { decision: faces[i].decision } },
          h("span", { class: `swatch ${d.kind}`, "aria-hidden": "true" }),
          h("span", {}, `Face ${i + 1}: `, d.text),
        ),
      ),
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
    if (blob) await recognise(new File([blob], "camera.jpg", { type: "image/jpeg" }));
  }

  return () => {
    controller?.abort();
    resizeObserver?.disconnect();
    stopCamera(false);
    urls.clear();
  };
}
