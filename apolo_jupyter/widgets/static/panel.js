// JobsPanel: a real table. Rows arrive one by one from the kernel (pushed as
// jobs change) and are updated in place, keyed by job id; ages tick here, and
// Kill posts to the Jupyter server, so it works while a cell runs.

const GLYPHS = {
  created: "○", pending: "◔", suspended: "⏸", running: "▶",
  succeeded: "✓", failed: "✗", cancelled: "■", unknown: "?",
};
// The same as _jobs_panel.COLUMNS (the saved table).
const COLUMNS = [
  ["id", "ID"], ["name", "Name"], ["status", "Status"], ["image", "Image"],
  ["preset", "Preset"], ["age", "Age"], ["act", ""],
];

function render({ model, el }) {
  el.classList.add("apolo-w", "apolo-panel");
  const table = apoloEl("table");
  const colgroup = apoloEl("colgroup");
  const headRow = apoloEl("tr");
  for (const [key, label] of COLUMNS) {
    colgroup.append(apoloEl("col", `apolo-c-${key}`));
    const th = apoloEl("th", "", label);
    th.scope = "col";
    headRow.append(th);
  }
  const thead = apoloEl("thead");
  thead.append(headRow);
  const tbody = apoloEl("tbody");
  table.append(colgroup, thead, tbody);
  const empty = apoloEl("div", "apolo-empty");
  const more = apoloEl("div", "apolo-more");
  const message = apoloEl("div", "apolo-error");
  message.setAttribute("role", "alert");
  message.hidden = true;
  el.append(table, more, empty, message);

  const rows = new Map(); // job id -> {tr, cells, data}
  const killing = new Set(); // kills asked for from here
  let offset = 0;

  function showMessage(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  async function onKill(id) {
    if (killing.has(id)) return;
    killing.add(id);
    update(rows.get(id));
    const base = model.get("kill_base");
    const reply = base ? await apoloPost(`${base}${encodeURIComponent(id)}/kill`) : { server: false };
    if (reply.ok) return;
    if (reply.server && reply.status !== 404 && reply.status !== 0) {
      killing.delete(id);
      showMessage(`could not kill ${id}: ${reply.message || reply.status}`);
      update(rows.get(id));
      return;
    }
    model.send({ event: "kill", job_id: id });
    showMessage(`Asked the kernel to kill ${id}; it does so once the running cell is done.`);
  }

  async function copy(id, button) {
    try {
      await navigator.clipboard.writeText(id);
    } catch (e) {
      const area = apoloEl("textarea");
      area.value = id;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "copied";
    setTimeout(() => (button.textContent = "copy"), 1200);
  }

  function create(data) {
    const tr = apoloEl("tr");
    tr.dataset.jobId = data.id;
    const cells = {};
    for (const [key] of COLUMNS) {
      cells[key] = apoloEl("td", `apolo-${key}`);
      tr.append(cells[key]);
    }
    const idBox = apoloEl("span", "apolo-id");
    const idText = apoloEl("code", "", data.short);
    idText.title = data.id;
    const copyButton = apoloEl("button", "apolo-button apolo-copy", "copy");
    copyButton.title = `copy ${data.id}`;
    copyButton.addEventListener("click", () => copy(data.id, copyButton));
    idBox.append(idText, copyButton);
    cells.id.append(idBox);
    const badge = apoloEl("span", "apolo-badge");
    cells.status.append(badge);
    const image = apoloEl("code");
    cells.image.append(image);
    const kill = apoloEl("button", "apolo-button apolo-kill", "Kill");
    kill.title = `kill ${data.id}`;
    kill.addEventListener("click", () => onKill(data.id));
    cells.act.append(kill);
    const row = { tr, cells, badge, image, kill, data };
    rows.set(data.id, row);
    tbody.append(tr);
    return row;
  }

  function update(row) {
    const { data, cells, badge, image, kill } = row;
    cells.name.textContent = data.name;
    cells.name.title = data.name;
    image.textContent = data.image;
    cells.image.title = data.command ? `${data.image}: ${data.command}` : data.image;
    badge.className = `apolo-badge apolo-st-${data.status}`;
    badge.textContent = `${GLYPHS[data.status] || "?"} ${data.status}`;
    cells.status.title = data.reason ? `${data.status}: ${data.reason}` : data.status;
    cells.preset.textContent = data.preset;
    age(row);
    if (!data.live) killing.delete(data.id);
    kill.hidden = !data.live;
    kill.disabled = killing.has(data.id);
    kill.textContent = killing.has(data.id) ? "killing…" : "Kill";
    kill.title = model.get("kill_base") && apoloHasServer() ? `kill ${data.id}` : APOLO_NO_ROUTE;
  }

  function age(row) {
    const { data, cells } = row;
    if (!data.created_ms) {
      cells.age.textContent = "-";
      return;
    }
    cells.age.textContent = apoloAge(Date.now() + offset - data.created_ms);
  }

  function renderRows() {
    offset = (model.get("now_ms") || Date.now()) - Date.now();
    const list = model.get("rows") || [];
    const listed = new Set(list.map((data) => data.id));
    for (const [id, row] of rows) {
      if (!listed.has(id)) {  // past the row limit now: counted under the table
        row.tr.remove();
        rows.delete(id);
      }
    }
    for (const data of list) {
      const row = rows.get(data.id) || create(data);
      if (JSON.stringify(row.data) !== JSON.stringify(data) || !row.rendered) {
        row.data = data;
        row.rendered = true;
        update(row);
      }
      tbody.append(row.tr);  // in the kernel's order: newest first
    }
    table.hidden = list.length === 0;
    empty.hidden = list.length !== 0;
    empty.textContent = model.get("empty_text") || "";
    more.textContent = model.get("more") || "";
    more.hidden = !more.textContent;
  }

  renderRows();
  model.on("change:rows", renderRows);
  model.on("change:more", renderRows);
  const timer = setInterval(() => rows.forEach(age), 1000);
  return () => clearInterval(timer);
}

export default { render };
