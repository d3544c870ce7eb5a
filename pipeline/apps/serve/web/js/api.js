// The service's HTTP API and its event stream (docs/api.md). The browser logs in with a
// session cookie (POST /api/session); the token is never kept by the page.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const listeners = { unauthorized: [] };

export function onUnauthorized(callback) {
  listeners.unauthorized.push(callback);
}

/** Call the API; the parsed JSON (null for an empty body); ApiError with the API's message. */
export async function call(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, `the service cannot be reached (${error.message})`);
  }
  const text = await reply.text();
  let data = null;
  if (text && (reply.headers.get("Content-Type") || "").includes("json")) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!reply.ok) {
    if (reply.status === 401 && !path.startsWith("/api/session")) {
      listeners.unauthorized.forEach((f) => f());
    }
    const message = (data && data.error) || `${method} ${path}: HTTP ${reply.status}`;
    throw new ApiError(reply.status, message);
  }
  return data;
}

/** `{required, authenticated}`; a service without sessions needs none. */
export async function session() {
  try {
    return await call("GET", "/api/session");
  } catch (error) {
    if (error.status === 404) return { required: false, authenticated: true };
    throw error;
  }
}

export const login = (token) => call("POST", "/api/session", { token });
export const logout = () => call("DELETE", "/api/session");

export const streams = () => call("GET", "/api/streams");
export const stream = (name) => call("GET", `/api/streams/${encodeURIComponent(name)}`);
export const addStream = (table) => call("POST", "/api/streams", table);
export const removeStream = (name) =>
  call("DELETE", `/api/streams/${encodeURIComponent(name)}`);
export const replaceStream = (name, table) =>
  call("PUT", `/api/streams/${encodeURIComponent(name)}`, table);

/** Events newest first; filters: camera, type, label, start, end (unix s), limit. */
export function events(filters) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(filters || {})) {
    if (value !== "" && value !== null && value !== undefined) query.set(key, String(value));
  }
  return call("GET", `/api/events?${query}`).then((data) => data.events || []);
}

export const liveUrl = (name) => `/api/streams/${encodeURIComponent(name)}/live.mjpg`;
export const snapshotUrl = (name) =>
  `/api/streams/${encodeURIComponent(name)}/snapshot.jpg?t=${Date.now()}`;

/** The server-sent event stream: `streams` (the /api/streams body) and `event` messages. */
export class Live {
  constructor() {
    this.handlers = { streams: new Set(), event: new Set(), state: new Set() };
    this.source = null;
    this.last = null;
  }

  start() {
    if (this.source) return;
    const source = new EventSource("/api/events/stream");
    this.source = source;
    source.addEventListener("open", () => this.emit("state", "live"));
    source.addEventListener("error", () => this.emit("state", "reconnecting"));
    source.addEventListener("streams", (message) => {
      this.sawStreams = true;
      this.last = JSON.parse(message.data);
      this.emit("streams", this.last);
    });
    // A service without the event stream: poll /api/streams once a second instead.
    this.poll = setInterval(async () => {
      if (this.sawStreams || !this.source) return;
      try {
        this.last = await streams();
        this.emit("streams", this.last);
        this.emit("state", "polling");
      } catch {
        // the next try
      }
    }, 1000);
    source.addEventListener("event", (message) => this.emit("event", JSON.parse(message.data)));
  }

  stop() {
    if (this.source) this.source.close();
    clearInterval(this.poll);
    this.source = null;
  }

  on(kind, handler) {
    this.handlers[kind].add(handler);
    return () => this.handlers[kind].delete(handler);
  }

  emit(kind, value) {
    for (const handler of [...this.handlers[kind]]) handler(value);
  }
}
