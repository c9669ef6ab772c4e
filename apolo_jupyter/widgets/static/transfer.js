// TransferProgress: a storage transfer's bar, as tqdm.notebook draws one.
// The kernel sends the numbers and the text; this only draws them.
function render({ model, el }) {
  el.classList.add("apolo-transfer");
  const description = document.createElement("span");
  description.className = "apolo-transfer-description";
  const bar = document.createElement("div");
  bar.className = "apolo-transfer-bar";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const fill = document.createElement("div");
  fill.className = "apolo-transfer-fill";
  bar.appendChild(fill);
  const percent = document.createElement("span");
  percent.className = "apolo-transfer-percent";
  const stats = document.createElement("span");
  stats.className = "apolo-transfer-stats";
  const message = document.createElement("div");
  message.className = "apolo-transfer-message";
  const row = document.createElement("div");
  row.className = "apolo-transfer-row";
  row.append(description, bar, percent, stats);
  el.append(row, message);

  function draw() {
    const value = Math.round(Math.min(1, Math.max(0, model.get("fraction"))) * 1000) / 10;
    description.textContent = model.get("description");
    fill.style.width = `${value}%`;
    bar.setAttribute("aria-valuenow", String(value));
    percent.textContent = `${Math.round(value)}%`;
    stats.textContent = model.get("stats");
    message.textContent = model.get("message");
    message.hidden = !model.get("message");
    el.dataset.state = model.get("state");
  }
  const names = ["description", "fraction", "stats", "state", "message"];
  for (const name of names) model.on(`change:${name}`, draw);
  draw();
  return () => {
    for (const name of names) model.off(`change:${name}`, draw);
  };
}

export default { render };
