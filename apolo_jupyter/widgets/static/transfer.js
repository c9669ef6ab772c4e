// TransferProgress: a storage transfer's bar, as tqdm.notebook draws one.
// The kernel sends the numbers and the text; this only draws them.
function render({ model, el }) {
  el.classList.add("apolo-transfer");
  const description = apoloEl("span", "apolo-transfer-description");
  const bar = apoloEl("div", "apolo-transfer-bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const fill = apoloEl("div", "apolo-transfer-fill");
  bar.appendChild(fill);
  const percent = apoloEl("span", "apolo-transfer-percent");
  const stats = apoloEl("span", "apolo-transfer-stats");
  const message = apoloEl("div", "apolo-transfer-message");
  const row = apoloEl("div", "apolo-transfer-row");
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
  const stop = apoloOnChange(model, ["description", "fraction", "stats", "state", "message"], draw);
  draw();
  return stop;
}

export default { render };
