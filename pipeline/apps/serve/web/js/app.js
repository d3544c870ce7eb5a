// vapipe's operator page: cameras, a camera's lines and zones, events, adding cameras.
// Pages by the URL's hash: #/ (cameras), #/camera/NAME, #/events[?camera=NAME], #/add.

import * as api from "./api.js";
import { h, put, when } from "./dom.js";
import { Editor, itemsOf, tablesOf } from "./editor.js";
import { livePicture } from "./pictures.js";

const main = document.getElementById("main");
const live = new api.Live();
let leave = () => {}; // the current page's clean-up
const TYPES = ["line_cross", "zone_enter", "zone_exit", "track_end"];

// -- login -----------------------------------------------------------------------------

async function start() {
  let state;
  try {
    state = await api.session();
  } catch (error) {
    put(main, h("p", { class: "error", role: "alert", text: error.message }));
    return;
  }
  if (state.required && !state.authenticated) {
    showLogin();
    return;
  }
  document.getElementById("logout").hidden = !state.required;
  live.start();
  route();
}

function showLogin(message) {
  leave();
  leave = () => {};
  live.stop();
  const error = h("p", { class: "error", role: "alert", id: "login-error", text: message || "" });
  const token = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { class: "card login", id: "login" },
    h("h1", { text: "Log in" }),
    h("p", { text: "This service needs its access token ([http] token or VAPIPE_TOKEN)." }),
    h("label", { for: "token", text: "Token" }),
    token,
    h("button", { type: "submit", text: "Log in" }),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.login(token.value);
      token.value = "";
      start();
    } catch (failure) {
      error.textContent = failure.status === 401 ? "Wrong token." : failure.message;
    }
  });
  put(main, form);
  token.focus();
}

api.onUnauthorized(() => showLogin("Your session ended; log in again."));

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api.logout();
  } finally {
    start();
  }
});

live.on("state", (state) => {
  const words = { live: "● live", polling: "● polling", reconnecting: "○ reconnecting" };
  document.getElementById("live-state").textContent = words[state] || state;
});

// -- routing ---------------------------------------------------------------------------

function route() {
  if (!live.source) return; // logged out
  leave();
  leave = () => {};
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  let page = "cameras";
  if (parts[0] === "camera" && parts[1]) {
    page = "camera";
    leave = cameraPage(decodeURIComponent(parts.slice(1).join("/")));
  } else if (parts[0] === "events") {
    page = "events";
    leave = eventsPage(params);
  } else if (parts[0] === "add") {
    page = "add";
    leave = addPage();
  } else {
    leave = camerasPage();
  }
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);

/** The latest /api/streams body: from the event stream, or fetched once. */
async function currentStreams() {
  return live.last || (await api.streams());
}

function countsText(counts) {
  const parts = [];
  for (const [name, c] of Object.entries((counts && counts.lines) || {})) {
    parts.push(`${name}: in ${c.in} · out ${c.out}`);
  }
  for (const [name, c] of Object.entries((counts && counts.zones) || {})) {
    parts.push(`${name}: entered ${c.entered ?? 0} · now ${c.occupancy ?? 0}`);
  }
  return parts.join("; ") || "no lines or zones";
}

const fps = (view) => (typeof view.fps === "number" ? `${view.fps.toFixed(1)} fps` : "");

// -- cameras ---------------------------------------------------------------------------

function camerasPage() {
  const grid = h("div", { class: "grid", id: "cameras" });
  const cards = new Map();
  put(
    main,
    h("h1", { text: "Cameras" }),
    grid,
  );
  const update = (body) => {
    const names = new Set();
    for (const view of body.streams || []) {
      names.add(view.name);
      let card = cards.get(view.name);
      if (!card) {
        const picture = livePicture(view.name);
        card = {
          picture,
          state: h("span", { class: "state" }),
          fps: h("span", { class: "fps" }),
          counts: h("p", { class: "counts" }),
        };
        card.node = h(
          "article",
          { class: "card camera", "data-camera": view.name },
          h("a", { href: `#/camera/${encodeURIComponent(view.name)}`, class: "picture-link" }, picture),
          h(
            "h2",
            {},
            h("a", { href: `#/camera/${encodeURIComponent(view.name)}`, text: view.name }),
          ),
          h("p", { class: "figures" }, card.state, " ", card.fps),
          card.counts,
        );
        cards.set(view.name, card);
        grid.append(card.node);
      }
      card.state.textContent = view.state;
      card.state.dataset.state = view.state;
      card.fps.textContent = fps(view);
      card.counts.textContent = countsText(view.counts);
    }
    for (const [name, card] of cards) {
      if (!names.has(name)) {
        card.picture.stop();
        card.node.remove();
        cards.delete(name);
      }
    }
    if (!cards.size && !grid.querySelector(".empty")) {
      grid.append(h("p", { class: "muted empty" }, "No cameras. ", h("a", { href: "#/add", text: "Add one." })));
    } else if (cards.size) {
      grid.querySelector(".empty")?.remove();
    }
  };
  currentStreams().then(update, (e) => grid.append(h("p", { class: "error", text: e.message })));
  const off = live.on("streams", update);
  return () => {
    off();
    for (const card of cards.values()) card.picture.stop();
  };
}

// -- one camera: picture, editor --------------------------------------------------------

function cameraPage(name) {
  const status = h("p", { class: "figures", id: "camera-status" });
  const message = h("p", { class: "message", id: "editor-message", role: "alert" });
  const picture = livePicture(name);
  const frame = h("div", { class: "frame" }, picture);
  const panel = h("section", { class: "panel", "aria-label": "Editor" });
  put(
    main,
    h(
      "div",
      { class: "title" },
      h("h1", { text: name }),
      h("a", { href: `#/events?camera=${encodeURIComponent(name)}`, text: "Events of this camera" }),
    ),
    status,
    h("div", { class: "camera-layout" }, frame, panel),
  );
  let editor = null;
  let table = null;
  let dirty = false;
  let alive = true;
  const ratio = setInterval(() => {
    if (picture.naturalWidth) frame.style.aspectRatio = `${picture.naturalWidth} / ${picture.naturalHeight}`;
  }, 500);
  const showStatus = (view) => {
    status.textContent = `${view.state} · ${fps(view)} · ${view.frames_processed ?? 0} frames · ${countsText(view.counts)}`;
    status.dataset.state = view.state;
    if (editor) editor.setCounts(view.counts);
  };
  const build = (view) => {
    table = view.config || {};
    editor = new Editor(picture, itemsOf(table), () => {
      dirty = true;
      save.disabled = false;
    });
    frame.append(editor.svg);
    editor.onMode = (mode) => {
      for (const b of panel.querySelectorAll(".tool")) {
        b.setAttribute("aria-pressed", b.dataset.mode === mode ? "true" : "false");
      }
    };
    const tool = (mode, label) =>
      h("button", {
        type: "button",
        class: "tool",
        "data-mode": mode,
        "aria-pressed": mode === "select" ? "true" : "false",
        text: label,
        onclick: () => editor.setMode(mode),
      });
    const save = h("button", { type: "button", id: "save", class: "primary", text: "Save", disabled: true });
    save.addEventListener("click", async () => {
      let geometry;
      try {
        geometry = tablesOf(editor.items);
      } catch (error) {
        message.textContent = error.message;
        message.className = "message error";
        return;
      }
      const body = { ...table, ...geometry };
      delete body.source; // the API keeps the saved one (the page only sees it masked)
      delete body.name;
      save.disabled = true;
      message.className = "message";
      message.textContent = "Saving…";
      try {
        const view = await api.replaceStream(name, body);
        table = (view && view.config) || { ...table, ...geometry };
        dirty = false;
        message.textContent = "Saved: the camera counts on the new lines and zones.";
        message.className = "message ok";
      } catch (error) {
        message.textContent = error.message;
        message.className = "message error";
        save.disabled = false;
      }
    });
    const remove = h("button", {
      type: "button",
      class: "danger",
      id: "remove",
      text: "Remove camera",
      onclick: async () => {
        if (!confirm(`Remove the camera ${name}? It is taken out of the config file.`)) return;
        try {
          await api.removeStream(name);
          location.hash = "#/";
        } catch (error) {
          message.textContent = error.message;
          message.className = "message error";
        }
      },
    });
    put(
      panel,
      h("h2", { text: "Lines and zones" }),
      h(
        "div",
        { class: "tools", role: "group", "aria-label": "Drawing tool" },
        tool("select", "Select"),
        tool("line", "Draw line"),
        tool("zone", "Draw zone"),
      ),
      h(
        "div",
        { class: "tools" },
        h("button", { type: "button", text: "Add line", onclick: () => editor.addDefault("line") }),
        h("button", { type: "button", text: "Add zone", onclick: () => editor.addDefault("zone") }),
      ),
      editor.hint,
      editor.list,
      h("p", { class: "muted", text: "A line counts in when a track crosses it the way its arrow points." }),
      h("div", { class: "tools" }, save, remove),
      message,
    );
    editor.renderList();
    showStatus(view);
  };
  api.stream(name).then(
    (view) => alive && build(view),
    (error) => put(panel, h("p", { class: "error", role: "alert", text: error.message })),
  );
  const off = live.on("streams", (body) => {
    const view = (body.streams || []).find((v) => v.name === name);
    if (view) showStatus(view);
    if (view && !dirty && table && editor && !editor.drag && !editor.draft.length) {
      table = view.config || table; // keep the table fresh; the editor keeps its geometry
    }
  });
  const beforeUnload = (event) => {
    if (dirty) event.preventDefault();
  };
  window.addEventListener("beforeunload", beforeUnload);
  return () => {
    alive = false;
    off();
    clearInterval(ratio);
    picture.stop();
    window.removeEventListener("beforeunload", beforeUnload);
  };
}

// -- events ----------------------------------------------------------------------------

function toSeconds(local) {
  return local ? Math.floor(new Date(local).getTime() / 1000) : "";
}

function eventsPage(params) {
  const filters = {
    camera: params.get("camera") || "",
    type: params.get("type") || "",
    label: params.get("label") || "",
    start: params.get("start") || "",
    end: params.get("end") || "",
  };
  const camera = h("select", { id: "filter-camera", name: "camera" }, h("option", { value: "", text: "all cameras" }));
  const type = h(
    "select",
    { id: "filter-type", name: "type" },
    h("option", { value: "", text: "all types" }),
    ...TYPES.map((t) => h("option", { value: t, text: t })),
  );
  const label = h("input", { id: "filter-label", name: "label", type: "text", value: filters.label, placeholder: "vehicle" });
  const startAt = h("input", { id: "filter-start", name: "start", type: "datetime-local", value: filters.start });
  const endAt = h("input", { id: "filter-end", name: "end", type: "datetime-local", value: filters.end });
  type.value = filters.type;
  const form = h(
    "form",
    { class: "filters", id: "filters" },
    h("label", {}, "Camera ", camera),
    h("label", {}, "Type ", type),
    h("label", {}, "Label ", label),
    h("label", {}, "From ", startAt),
    h("label", {}, "To ", endAt),
    h("button", { type: "submit", text: "Filter" }),
  );
  const player = h("video", { id: "player", controls: true, preload: "auto", hidden: true, playsinline: true });
  const playing = h("p", { class: "muted", id: "playing" });
  const list = h("ol", { class: "events", id: "events", "aria-live": "polite" });
  const message = h("p", { class: "error", role: "alert" });
  put(
    main,
    h("h1", { text: filters.camera ? `Events of ${filters.camera}` : "Events" }),
    form,
    h("div", { class: "player" }, player, playing),
    message,
    list,
  );
  currentStreams().then((body) => {
    for (const view of body.streams || []) camera.append(h("option", { value: view.name, text: view.name }));
    camera.value = filters.camera;
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    const values = {
      camera: camera.value,
      type: type.value,
      label: label.value.trim(),
      start: startAt.value,
      end: endAt.value,
    };
    for (const [key, value] of Object.entries(values)) if (value) query.set(key, value);
    location.hash = `#/events${query.size ? `?${query}` : ""}`;
  });
  const matches = (event) =>
    (!filters.camera || event.stream === filters.camera) &&
    (!filters.type || event.type === filters.type) &&
    (!filters.label || event.label === filters.label) &&
    (!filters.start || event.captured_at >= toSeconds(filters.start)) &&
    (!filters.end || event.captured_at <= toSeconds(filters.end));
  const play = (event) => {
    player.hidden = false;
    player.src = event.clip_url;
    playing.textContent = `${event.stream} · ${event.type} · ${when(event.captured_at)}`;
    player.play().catch(() => {}); // autoplay may be refused; the controls remain
  };
  const row = (event) => {
    const what = [event.type, event.label, event.track_id != null ? `#${event.track_id}` : ""];
    if (event.line) what.push(`line ${event.line} ${event.direction || ""}`);
    if (event.zone) what.push(`zone ${event.zone}`);
    const thumb = event.snapshot_url
      ? h("img", { class: "thumb", src: event.snapshot_url, alt: `snapshot of ${event.label || "the object"}`, loading: "lazy" })
      : h("span", { class: "thumb none", "aria-hidden": "true" });
    const clip = event.clip_url
      ? h("button", { type: "button", class: "play", text: "Play clip", onclick: () => play(event) })
      : h("span", { class: "muted", text: "no clip" });
    const node = h(
      "li",
      { class: "event", "data-type": event.type, "data-camera": event.stream },
      thumb,
      h(
        "div",
        {},
        h("p", {}, h("time", { text: when(event.captured_at) }), " ", h("strong", { text: event.stream })),
        h("p", { class: "what", text: what.filter(Boolean).join(" ") }),
      ),
      clip,
    );
    if (event.clip_url) {
      node.tabIndex = -1;
      node.addEventListener("click", (e) => {
        if (e.target.tagName !== "BUTTON") play(event);
      });
    }
    return node;
  };
  const query = { ...filters, start: toSeconds(filters.start), end: toSeconds(filters.end), limit: 200 };
  api.events(query).then(
    (events) => {
      list.append(...events.map(row));
      if (!events.length) list.append(h("li", { class: "muted empty", text: "No events yet." }));
    },
    (error) => {
      message.textContent = error.message;
    },
  );
  const off = live.on("event", (event) => {
    if (!matches(event)) return;
    list.querySelector(".empty")?.remove();
    list.prepend(row(event));
    while (list.children.length > 500) list.lastChild.remove();
  });
  return () => {
    off();
    player.pause();
    player.removeAttribute("src");
  };
}

// -- add a camera ----------------------------------------------------------------------

function addPage() {
  const name = h("input", { id: "new-name", name: "name", required: true, pattern: "[A-Za-z0-9._-]+", placeholder: "gate" });
  const source = h("input", { id: "new-source", name: "source", required: true, placeholder: "rtsp://user:pass@camera/stream" });
  const kind = h(
    "select",
    { id: "new-class", name: "class" },
    h("option", { value: "", text: "default" }),
    h("option", { value: "live", text: "live" }),
    h("option", { value: "batch", text: "batch" }),
  );
  const track = h("input", { id: "new-track", name: "track", type: "checkbox", checked: true });
  const message = h("p", { class: "message", role: "alert", id: "add-message" });
  const form = h(
    "form",
    { class: "card add", id: "add" },
    h("h1", { text: "Add a camera" }),
    h("label", { for: "new-name", text: "Name" }),
    name,
    h("label", { for: "new-source", text: "URL (RTSP, HTTP, or a file under [http] media_root)" }),
    source,
    h("label", { for: "new-class", text: "Class" }),
    kind,
    h("label", { class: "check" }, track, " track objects (needed for lines and zones)"),
    h("button", { type: "submit", class: "primary", text: "Add" }),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const table = { name: name.value.trim(), source: source.value.trim(), track: track.checked };
    if (kind.value) table.class = kind.value;
    message.className = "message";
    message.textContent = "Adding…";
    try {
      await api.addStream(table);
      location.hash = `#/camera/${encodeURIComponent(table.name)}`;
    } catch (error) {
      message.textContent = error.message;
      message.className = "message error";
    }
  });
  put(main, form);
  name.focus();
  return () => {};
}

start();
