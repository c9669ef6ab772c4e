// JobStatusView: the Python model sends the status row as HTML it renders (the
// same HTML a saved notebook keeps), tqdm bars as HTML, the log tail as lines,
// and a few flags. This module adds what needs a browser: the ticking clock,
// the Kill button (a POST to the Jupyter server, so it works while the cell
// waits), and a log pane that follows the tail unless the user scrolled up.

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
    tick();
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
  const timer = setInterval(tick, 1000);
  return () => clearInterval(timer);
}

export default { render };
