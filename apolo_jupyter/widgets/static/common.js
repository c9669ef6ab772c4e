// Shared by the apolo_jupyter views; each view's module is appended to this text.

// The page's Jupyter configuration (JupyterLab and Notebook 7 embed it as
// <script id="jupyter-config-data">); null where no Jupyter server serves the
// page (VS Code, Colab, a static export).
function apoloPageConfig() {
  const el = document.getElementById("jupyter-config-data");
  if (!el) return null;
  try {
    return JSON.parse(el.textContent || "{}");
  } catch (e) {
    return null;
  }
}

function apoloCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

// POST to a route of our Jupyter server extension, authenticated the way
// JupyterLab's own requests are: the login cookie, the page's token if it has
// one, and the _xsrf cookie echoed in X-XSRFToken. It does not go through the
// kernel, so it works while a cell runs.
async function apoloPost(path) {
  const config = apoloPageConfig();
  if (!config || !path) return { ok: false, status: 0, message: "", server: false };
  let base = config.baseUrl || "/";
  if (!base.endsWith("/")) base += "/";
  const headers = { "Content-Type": "application/json" };
  if (config.token) headers["Authorization"] = "token " + config.token;
  const xsrf = apoloCookie("_xsrf");
  if (xsrf !== undefined) headers["X-XSRFToken"] = xsrf;
  try {
    const reply = await fetch(base + path, {
      method: "POST",
      headers,
      body: "{}",
      credentials: "same-origin",
      cache: "no-store",
    });
    let message = "";
    try {
      message = (await reply.json()).message || "";
    } catch (e) {
      message = reply.statusText;
    }
    return { ok: reply.ok, status: reply.status, message, server: true };
  } catch (e) {
    return { ok: false, status: 0, message: String(e), server: true };
  }
}

function apoloHasServer() {
  return apoloPageConfig() !== null;
}

function apoloDuration(ms) {
  const seconds = Math.max(Math.floor(ms / 1000), 0);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor(seconds / 60) % 60;
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

function apoloAge(ms) {
  const seconds = Math.max(Math.floor(ms / 1000), 0);
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) return `${Math.floor(seconds / size)}${unit}`;
  }
  return `${seconds}s`;
}

function apoloEl(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const APOLO_SVG_NS = "http://www.w3.org/2000/svg";

// An SVG element with the given attributes (numbers are written as strings).
function apoloSvg(tag, attrs = {}) {
  const node = document.createElementNS(APOLO_SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

// Calls `update` on every change of the named traits; returns the function that
// stops it (a view's render returns it, so a removed view stops listening).
function apoloOnChange(model, names, update) {
  for (const name of names) model.on(`change:${name}`, update);
  return () => {
    for (const name of names) model.off(`change:${name}`, update);
  };
}

// What Kill says where no Jupyter server route is available (VS Code, or a
// server without our extension): the kernel handles the click, but only once
// the running cell is done.
const APOLO_NO_ROUTE =
  "Kill waits for the running cell here: interrupt it first (the job keeps running), then Kill.";
