// The active liveness check over a camera (POST /v1/liveness/sessions): a panel that shows
// the current instruction, the steps and the time left, and a run() that sends camera
// frames until the session passes or fails. Recognise uses it before identifying.
//
// Frames are taken FRAME_GAP_MS after the previous one was grabbed (at most 10 a second,
// so that the 100-150 ms of a short blink land on a frame) and sent in batches while the previous batch is
// measured (at most MAX_BATCH per request, the newest kept), as the camera delivers
// them (unmirrored: the session is made with mirrored=false).

import { api } from "../api.js";
import { announce, errorText, h } from "../ui.js";

const FRAME_GAP_MS = 100;
const MAX_BATCH = 4;
const FRAME_WIDTH = 640;

const FAILURES = {
  expired:
    "Time ran out before every step was done. (A photo or a still image never passes: each step needs movement.)",
  frames_out_of_order: "The camera frames arrived out of order. Try again.",
  identity_changed: "A different face appeared during the check.",
  spoof_detected: "The camera image looks like a photo or a screen, not a live face.",
  too_many_frames: "The check took too many frames. Try again.",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The video's current frame as a JPEG at most `maxWidth` wide, with its time in ms. */
export async function grabFrame(video, maxWidth = FRAME_WIDTH) {
  const scale = Math.min(1, maxWidth / video.videoWidth);
  const frame = document.createElement("canvas");
  frame.width = Math.round(video.videoWidth * scale);
  frame.height = Math.round(video.videoHeight * scale);
  frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
  const t = performance.now();
  const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
  return blob ? { blob, t } : null;
}

export function livenessPanel() {
  const instruction = h("p", { class: "liveness-instruction", id: "liveness-instruction" });
  const steps = h("ol", { class: "liveness-steps", id: "liveness-steps" });
  const status = h("p", { class: "muted", id: "liveness-status" });
  const element = h(
    "div",
    { class: "liveness stack", id: "liveness-challenge", hidden: true, "aria-live": "polite" },
    instruction,
    steps,
    status,
  );

  function render(p, instructions) {
    const passed = new Set(p.passed);
    steps.replaceChildren(
      ...p.challenges.map((c) => {
        const state = passed.has(c) ? "passed" : c === p.current ? "current" : "waiting";
        const mark = state === "passed" ? "✓" : state === "current" ? "→" : "·";
        return h(
          "li",
          { class: `step ${state}`, dataset: { challenge: c, state } },
          h("span", { class: "step-mark", "aria-hidden": "true" }, mark),
          ` ${instructions[c] || c}`,
          state === "passed" ? h("span", { class: "visually-hidden" }, " (done)") : "",
        );
      }),
    );
    instruction.textContent = p.instruction || "";
    const left = Math.max(0, Math.ceil(p.expires_in_s));
    const noFace = p.last_faces === 0 ? " No face is seen: look at the camera." : "";
    const many = p.last_faces > 1 ? " More than one face is seen: only you, please." : "";
    status.textContent = `${p.passed.length} of ${p.challenges.length} done · ${left} s left.${noFace}${many}`;
  }

  /**
   * Run one check on `video`. Resolves {state: "passed", token} or {state: "failed",
   * reason, message}, or null once `isCurrent()` turns false or `signal` aborts.
   * `onStarted` is called when the session exists and the first instruction shows.
   */
  async function run(video, { signal, isCurrent, onStarted = () => {} }) {
    let session;
    try {
      session = await api.startLiveness({ signal });
    } catch (exc) {
      if (exc.name === "AbortError" || !isCurrent()) return null;
      return { state: "failed", reason: "", message: errorText(exc) };
    }
    if (!isCurrent()) return null;
    const instructions = session.instructions || {};
    element.hidden = false;
    render(session, instructions);
    onStarted();
    announce(session.instruction);
    let progress = session;
    let queue = [];
    let grabbing = true;
    const grabber = (async () => {
      while (grabbing && isCurrent()) {
        const frame = await grabFrame(video);
        if (frame) queue.push(frame);
        if (queue.length > MAX_BATCH) queue = queue.slice(-MAX_BATCH);
        await sleep(FRAME_GAP_MS);
      }
    })();
    let failure = null;
    try {
      while (progress.state === "active" && isCurrent()) {
        if (!queue.length) {
          await sleep(FRAME_GAP_MS);
          continue;
        }
        const batch = queue;
        queue = [];
        const before = progress.current;
        progress = await api.sendLivenessFrames(session, batch, { signal });
        if (!isCurrent()) return null;
        render(progress, instructions);
        if (progress.current && progress.current !== before) announce(progress.instruction);
      }
    } catch (exc) {
      if (exc.name === "AbortError" || !isCurrent()) return null;
      failure = errorText(exc);
    } finally {
      grabbing = false;
    }
    await grabber;
    if (!isCurrent()) return null;
    if (progress.state === "passed" && !failure) {
      return { state: "passed", token: progress.liveness_token };
    }
    element.hidden = true;
    const reason = failure ? "" : progress.reason || "";
    return {
      state: "failed",
      reason,
      message: failure || FAILURES[reason] || "The liveness check failed.",
    };
  }

  return { element, run };
}
