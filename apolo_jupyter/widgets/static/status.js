// JobStatusView: the Python model sends the status row as HTML it renders (the
// same HTML a saved notebook keeps), tqdm bars as HTML, the log tail as lines,
// resource samples as numbers, and a few flags. This module adds what needs a
// browser: the ticking clock, the Kill button (a POST to the Jupyter server, so
// it works while the cell waits), a sparkline of the last minute of CPU and
// memory (and GPU) while the job runs, and a log pane that follows the tail
// unless the user scrolled up.

const SPARK_W = 36; // the sparkline's size in CSS pixels (status.css says the same)
const SPARK_H = 16;

// The kernel sends a browser that opens the view the whole window of samples,
// then only the new rows ({seq, window, rows}: seq numbers the last row). This
// keeps the model's value whole, once per model, so every view of it (and one
// rendered later) reads the full window.
function initialize({ model }) {
  let seq = 0;
  let rows = [];
  function merge() {
    const spark = model.get("spark") || {};
    if (!spark.seq) {
      seq = 0;
      rows = [];
      return;
    }
    const fresh = spark.rows || [];
    rows = spark.seq - fresh.length === seq ? rows.concat(fresh) : fresh.slice();
    rows = rows.slice(-(spark.window || 60));
    seq = spark.seq;
    spark.rows = rows;
  }
  merge();
  model.on("change:spark", merge);
}

function apoloSize(bytes) {
  for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["kB", 1e3]]) {
    if (bytes >= scale) {
      const value = bytes / scale;
      return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${unit}`;
    }
  }
  return `${bytes} B`;
}

function sparkItem(kind) {
  const item = apoloEl("span", `apolo-spark-item apolo-spark-${kind}`);
  const svg = apoloSvg("svg", {
    viewBox: `0 0 ${SPARK_W} ${SPARK_H}`,
    width: SPARK_W,
    height: SPARK_H,
    "aria-hidden": "true",
  });
  const area = apoloSvg("path", { class: "apolo-spark-area" });
  const line = apoloSvg("polyline", { class: "apolo-spark-line" });
  const dot = apoloSvg("circle", { class: "apolo-spark-dot", r: "1.75" });
  svg.append(area, line, dot);
  const value = apoloEl("span", "apolo-spark-value");
  item.append(svg, value);
  return { item, area, line, dot, value };
}

// Draw values (oldest first) right-aligned in a window of `window` slots, so
// the newest sample is always at the right edge, beside its figure.
function drawSpark(p, values, top, window) {
  const n = values.length;
  const x0 = 1;
  const x1 = SPARK_W - 2;
  const step = (x1 - x0) / Math.max(window - 1, 1);
  const points = values.map((v, i) => {
    const x = x1 - (n - 1 - i) * step;
    const y = SPARK_H - 1.5 - Math.min(Math.max(v / top, 0), 1) * (SPARK_H - 4);
    return [x.toFixed(1), y.toFixed(1)];
  });
  p.line.setAttribute("points", points.map(([x, y]) => `${x},${y}`).join(" "));
  const [fx] = points[0];
  const [lx, ly] = points[n - 1];
  p.area.setAttribute("d", `M${fx},${SPARK_H}L${points.join("L")}L${lx},${SPARK_H}Z`);
  p.dot.setAttribute("cx", lx);
  p.dot.setAttribute("cy", ly);
}

function render({ model, el }) {
  el.classList.add("apolo-w", "apolo-status");
  const head = apoloEl("div", "apolo-head-box");
  const message = apoloEl("div", "apolo-error");
  message.setAttribute("role", "alert");
  message.hidden = true;
  const bars = apoloEl("div", "apolo-bars-box");
  const log = apoloEl("div", "apolo-log");
  const logHead = apoloEl("div", "apolo-log-head");
  const body = apoloEl("div", "apolo-log-body");
  body.setAttribute("role", "log");
  body.tabIndex = 0;
  const more = apoloEl("button", "apolo-button apolo-log-more");
  more.hidden = true;
  log.append(logHead, body, more);
  el.append(head, message, bars, log);

  const spark = apoloEl("span", "apolo-spark");
  spark.setAttribute("role", "img");
  const cpu = sparkItem("cpu");
  const mem = sparkItem("mem");
  const gpu = sparkItem("gpu");
  spark.append(cpu.item, mem.item, gpu.item);

  const kill = apoloEl("button", "apolo-button apolo-kill", "■ Kill");
  const killHint = apoloEl("span", "apolo-hint");
  let killing = false; // clicked here, the kill is on its way
  let offset = 0; // kernel clock minus browser clock

  function ui() {
    return model.get("ui") || {};
  }

  function renderKill() {
    const state = ui();
    const slot = head.querySelector(".apolo-actions");
    if (!slot) return;
    const offered = state.can_kill && !state.finished;
    if (!offered) {
      kill.remove();
      killHint.remove();
      return;
    }
    const busy = killing || state.killing;
    kill.textContent = busy ? "killing…" : "■ Kill";
    kill.disabled = busy;
    const route = state.kill_path && apoloHasServer();
    kill.title = route ? "kill the job now" : APOLO_NO_ROUTE;
    killHint.textContent = route || busy ? "" : "waits for the running cell";
    slot.append(killHint, kill);
  }

  function showMessage(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  async function onKill() {
    if (killing) return;
    killing = true;
    showMessage("");
    renderKill();
    const state = ui();
    const reply = state.kill_path ? await apoloPost(state.kill_path) : { ok: false, server: false };
    if (reply.ok) return; // the status changes as soon as the platform says so
    if (reply.server && reply.status !== 404 && reply.status !== 0) {
      killing = false; // the platform refused: say why, let the user try again
      showMessage(`could not kill the job: ${reply.message || reply.status}`);
      renderKill();
      return;
    }
    // No route (no Jupyter server here, or it does not know this kernel):
    // ask the kernel, which acts once the running cell is done.
    model.send({ event: "kill" });
    showMessage(
      "Asked the kernel to kill the job; it does so once the running cell is done " +
        "(interrupt the cell to stop waiting: the job keeps running until killed).",
    );
  }
  kill.addEventListener("click", onKill);

  function renderHead() {
    head.innerHTML = model.get("head") || "";
    offset = (ui().now_ms || Date.now()) - Date.now();
    if (ui().finished) {
      killing = false;
      showMessage("");
    }
    renderKill();
    renderSpark();
    tick();
  }

  // The last minute of CPU (cores), memory and GPU (when the samples have it),
  // at the right of the status row, before Kill, while the job runs. They wrap
  // together: on a narrow page both go under the steps and the clock.
  function renderSpark() {
    const rows = (model.get("spark") || {}).rows || [];
    const slot = head.querySelector(".apolo-actions");
    if (!ui().running || !rows.length || !slot) {
      spark.remove();
      return;
    }
    const window = (model.get("spark") || {}).window || 60;
    const last = rows[rows.length - 1];
    const column = (i) => rows.map((r) => r[i]);
    const peak = (values) => Math.max(...values);
    const cpus = column(0);
    drawSpark(cpu, cpus, Math.max(1, peak(cpus)), window);
    cpu.value.textContent = `CPU ${last[0].toFixed(2)}`;
    const mems = column(1);
    drawSpark(mem, mems, Math.max(peak(mems) * 1.1, 1), window);
    mem.value.textContent = apoloSize(last[1]);
    const duty = rows.filter((r) => r[2] !== null && r[2] !== undefined).map((r) => r[2]);
    gpu.item.hidden = last[2] === null || last[2] === undefined;
    let label = `CPU ${last[0].toFixed(2)} cores, memory ${apoloSize(last[1])}`;
    if (!gpu.item.hidden) {
      drawSpark(gpu, duty, 100, window);
      let text = `GPU ${last[2]}%`;
      if (last[3] !== null && last[3] !== undefined) text += ` · ${apoloSize(last[3])}`;
      gpu.value.textContent = text;
      label += `, ${text}`;
    }
    spark.setAttribute("aria-label", label);
    spark.title =
      `${label}. Drawn: the last ${rows.length} sample${rows.length === 1 ? "" : "s"} ` +
      `(one a second), peak CPU ${peak(cpus).toFixed(2)} · ${apoloSize(peak(mems))}`;
    if (slot.firstChild !== spark) slot.prepend(spark);
  }

  function tick() {
    const clock = head.querySelector(".apolo-clock");
    if (!clock) return;
    const kind = clock.dataset.kind;
    if (kind !== "elapsed" && kind !== "waiting") return;
    const now = Date.now() + offset;
    let text = `${kind} ${apoloDuration(now - Number(clock.dataset.since))}`;
    if (clock.dataset.life) {
      text += ` · life span left ${apoloDuration(Number(clock.dataset.life) - now)}`;
    }
    clock.textContent = text;
  }

  // -- the log pane -------------------------------------------------------------
  let domFirst = 0; // the line number of body's first child
  let follow = true; // at the bottom: keep following the tail
  let unseen = 0;

  function atBottom() {
    return body.scrollHeight - body.scrollTop - body.clientHeight < 4;
  }
  body.addEventListener("scroll", () => {
    follow = atBottom();
    if (follow) {
      unseen = 0;
      more.hidden = true;
    }
  });
  more.addEventListener("click", () => {
    body.scrollTop = body.scrollHeight;
    follow = true;
    unseen = 0;
    more.hidden = true;
  });

  function renderLog() {
    const data = model.get("log") || {};
    const lines = data.lines || [];
    const first = data.first || 0;
    const total = data.total || 0;
    log.hidden = total === 0;
    if (total > lines.length) {
      logHead.textContent = `last ${lines.length} of ${total.toLocaleString("en")} lines — `;
      logHead.append(apoloEl("code", "", data.hint || ""), " for all");
    } else {
      logHead.textContent = `${total} line${total === 1 ? "" : "s"} of output`;
    }
    let count = body.children.length;
    if (first < domFirst || first > domFirst + count) {
      body.textContent = "";
      domFirst = first;
      count = 0;
    }
    while (domFirst < first && body.firstChild) {
      body.firstChild.remove();
      domFirst += 1;
      count -= 1;
    }
    let added = 0;
    lines.forEach((line, i) => {
      const at = first + i - domFirst;
      if (at < count) {
        const node = body.children[at];
        if (node.textContent !== line) node.textContent = line;
      } else {
        body.append(apoloEl("div", "apolo-log-line", line));
        added += 1;
      }
    });
    while (body.children.length > lines.length) body.lastChild.remove();
    if (follow) {
      body.scrollTop = body.scrollHeight;
    } else if (added) {
      unseen += added;
      more.textContent = `↓ ${unseen} new line${unseen === 1 ? "" : "s"}`;
      more.hidden = false;
    }
  }

  function renderBars() {
    bars.innerHTML = model.get("bars") || "";
  }

  renderHead();
  renderBars();
  renderLog();
  model.on("change:head", renderHead);
  model.on("change:ui", renderHead);
  model.on("change:bars", renderBars);
  model.on("change:log", renderLog);
  model.on("change:spark", renderSpark);
  const timer = setInterval(tick, 1000);
  return () => clearInterval(timer);
}

export default { initialize, render };
