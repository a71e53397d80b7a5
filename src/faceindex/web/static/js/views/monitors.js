// Monitors: video sources the server watches (a camera, a stream, a file), and their live
// events ("appeared", "identified", "left"), polled with ?after=SEQ while the page is open.

import { api } from "../api.js";
import { announce, errorNotice, errorText, formatSimilarity, h, labelCells, pageHead, plural, spinner } from "../ui.js";

const POLL_MS = 2000;
const STATUS_BADGE = { running: "ok", starting: "warn", finished: "", stopped: "", failed: "bad" };

function when(unixSeconds) {
  if (typeof unixSeconds !== "number") return "–";
  return new Date(unixSeconds * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function eventText(ev) {
  const who = ev.person || "someone unknown";
  const sim = typeof ev.similarity === "number" ? ` (similarity ${formatSimilarity(ev.similarity)})` : "";
  const track = `track ${ev.track_id}`;
  if (ev.event === "identified") return `${who} identified${sim} · ${track}`;
  if (ev.event === "appeared") return `A face appeared${ev.person ? `: ${ev.person}` : ""} · ${track}`;
  if (ev.event === "left") return `${ev.person || "A face"} left · ${track}`;
  return `${ev.event}${ev.person ? `: ${ev.person}` : ""} · ${track}`;
}

export async function renderMonitors(ctx) {
  let listTimer = null;
  let eventsTimer = null;
  let watching = null; // {id, after}
  const tableBody = h("tbody", {});
  const listStatus = h("div", { id: "monitors-status", "aria-live": "polite" });
  const eventsList = h("ol", { class: "events-list", id: "monitor-events", reversed: true });
  const eventsTitle = h("h2", { id: "events-title", tabindex: "-1" }, "Live events");
  const eventsHint = h("p", { class: "muted", id: "events-hint" }, "Choose “Watch” on a monitor to follow its events here.");
  const eventsSection = h(
    "section",
    { class: "card", "aria-labelledby": "events-title" },
    eventsTitle,
    eventsHint,
    h("div", { "aria-live": "polite" }, eventsList),
  );

  const source = h("input", { type: "text", id: "monitor-source", autocomplete: "off", required: true, "aria-describedby": "monitor-source-hint" });
  const realtime = h("input", { type: "checkbox", id: "monitor-realtime" });
  const maxSeconds = h("input", { type: "number", id: "monitor-max", min: "1", max: "86400", step: "1", inputmode: "numeric" });
  const startStatus = h("div", { "aria-live": "polite" });
  const startForm = h(
    "form",
    { class: "stack", novalidate: true, onsubmit: (e) => start(e) },
    h(
      "div",
      { class: "field" },
      h("label", { for: "monitor-source" }, "Source"),
      source,
      h("p", { class: "hint", id: "monitor-source-hint" }, "A video file on the server, a camera number such as 0, or an rtsp:// or http:// address."),
    ),
    h("label", { class: "inline", for: "monitor-realtime" }, realtime, "Play a file at its own speed, like a camera"),
    h("div", { class: "field" }, h("label", { for: "monitor-max" }, "Stop after (seconds, optional)"), maxSeconds),
    h("div", { class: "actions start" }, h("button", { type: "submit", class: "button primary", id: "monitor-start" }, "Start monitor")),
    startStatus,
  );

  ctx.main.append(
    pageHead("Monitors", "Video the server watches, and who it sees there."),
    h(
      "section",
      { class: "card", "aria-labelledby": "monitors-title" },
      h("h2", { id: "monitors-title" }, "Monitors"),
      listStatus,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data cards", id: "monitors-table" },
          h("thead", {}, h("tr", {}, ["ID", "Source", "Status", "Frames", "Events", "Started", ""].map((t) => h("th", { scope: "col" }, t)))),
          tableBody,
        ),
      ),
    ),
    eventsSection,
    h(
      "section",
      { class: "card", "aria-labelledby": "start-title" },
      h("h2", { id: "start-title" }, "Start a monitor"),
      h("p", { class: "muted" }, "Starting and stopping monitors needs an API key with the admin scope."),
      startForm,
    ),
  );

  async function loadList() {
    clearTimeout(listTimer);
    let items;
    try {
      items = (await api.listMonitors()).items || [];
    } catch (exc) {
      if (!ctx.isCurrent()) return;
      listStatus.replaceChildren(errorNotice(exc));
      return;
    }
    if (!ctx.isCurrent()) return;
    listStatus.replaceChildren(
      h("p", { class: "muted" }, items.length ? plural(items.length, "monitor") + "." : "No monitor yet. Start one below."),
    );
    tableBody.replaceChildren(
      ...items.map((m) =>
        h(
          "tr",
          { dataset: { monitor: String(m.id) } },
          h("td", {}, String(m.id)),
          h("td", { class: "wrap" }, m.source),
          h(
            "td",
            {},
            h("span", { class: `badge ${STATUS_BADGE[m.status] ?? ""}` }, m.status),
            m.error ? h("div", { class: "error-text" }, m.error) : null,
          ),
          h("td", {}, String(m.frames)),
          h("td", {}, String(m.events)),
          h("td", {}, when(m.started_at)),
          h(
            "td",
            { class: "row-actions" },
            h("button", { type: "button", class: "button small", "aria-label": `Watch the events of monitor ${m.id}`, onclick: () => watch(m.id) }, "Watch"),
            ["running", "starting"].includes(m.status)
              ? h("button", { type: "button", class: "button small danger", "aria-label": `Stop monitor ${m.id}`, onclick: () => stop(m.id) }, "Stop")
              : null,
          ),
        ),
      ),
    );
    labelCells(tableBody.closest("table"));
    if (items.some((m) => ["running", "starting"].includes(m.status))) {
      listTimer = setTimeout(loadList, POLL_MS * 2);
    }
  }

  async function watch(id) {
    clearTimeout(eventsTimer);
    watching = { id, after: 0 };
    eventsTitle.textContent = `Live events of monitor ${id}`;
    eventsHint.textContent = "Newest first; new events appear as they happen.";
    eventsList.replaceChildren();
    eventsTitle.focus();
    await poll();
  }

  async function poll() {
    clearTimeout(eventsTimer);
    if (!watching || !ctx.isCurrent()) return;
    const current = watching;
    try {
      const page = await api.monitorEvents(current.id, current.after);
      if (current !== watching || !ctx.isCurrent()) return;
      const items = page.items || [];
      current.after = page.next ?? current.after;
      for (const ev of items) {
        eventsList.prepend(
          h("li", { class: `event ${ev.event}`, dataset: { seq: String(ev.seq) } }, h("span", { class: "muted" }, `#${ev.seq} `), eventText(ev)),
        );
      }
      while (eventsList.children.length > 300) eventsList.lastChild.remove();
      if (!eventsList.children.length) eventsHint.textContent = "No event yet; waiting for faces…";
      else eventsHint.textContent = `${plural(eventsList.children.length, "event")}, newest first.`;
    } catch (exc) {
      if (!ctx.isCurrent()) return;
      eventsHint.replaceChildren(errorNotice(exc));
      return; // stop polling after an error; "Watch" starts again
    }
    eventsTimer = setTimeout(poll, POLL_MS);
  }

  async function start(event) {
    event.preventDefault();
    startStatus.replaceChildren();
    const src = source.value.trim();
    if (!src) {
      startStatus.append(h("p", { class: "notice error", role: "alert" }, "Enter a source."));
      source.focus();
      return;
    }
    const body = { source: src, realtime: realtime.checked };
    const max = Number(maxSeconds.value);
    if (maxSeconds.value && max > 0) body.max_seconds = max;
    const button = startForm.querySelector("button[type=submit]");
    button.disabled = true;
    startStatus.replaceChildren(h("p", { class: "muted" }, spinner("Starting"), " Starting…"));
    try {
      const m = await api.startMonitor(body);
      startStatus.replaceChildren(h("p", { class: "notice ok" }, `Monitor ${m.id} started.`));
      announce(`Monitor ${m.id} started.`);
      await loadList();
      await watch(m.id);
    } catch (exc) {
      startStatus.replaceChildren(errorNotice(exc));
      announce(errorText(exc));
    } finally {
      button.disabled = false;
    }
  }

  async function stop(id) {
    try {
      await api.stopMonitor(id);
      announce(`Monitor ${id} stopped.`);
    } catch (exc) {
      listStatus.replaceChildren(errorNotice(exc));
      return;
    }
    await loadList();
  }

  await loadList();
  return () => {
    clearTimeout(listTimer);
    clearTimeout(eventsTimer);
    watching = null;
  };
}
