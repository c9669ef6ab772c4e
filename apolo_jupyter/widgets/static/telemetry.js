// TelemetryChart: CPU, memory and (when present) GPU of a job over time, as SVG.
// Points come from the Python side as [time, cpu cores, memory bytes, gpu %, gpu bytes].
const W = 600;
const H = 64;

function mib(bytes) {
  return bytes / 1048576;
}

function fmtBytes(bytes) {
  if (bytes >= 1073741824) return (bytes / 1073741824).toFixed(2) + " GiB";
  return mib(bytes).toFixed(1) + " MiB";
}

function panel(root, cls, title) {
  const box = apoloEl("div", "apolo-top-panel " + cls);
  const label = apoloEl("div", "apolo-top-label");
  const value = apoloEl("b");
  label.append(apoloEl("span", "", title), value);
  const svg = apoloSvg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const grid = apoloSvg("line", { class: "grid", x1: 0, x2: W, y1: H / 2, y2: H / 2 });
  const area = apoloSvg("path", { class: "area" });
  const path = apoloSvg("path", { class: "line" });
  svg.append(grid, area, path);
  box.append(label, svg);
  root.append(box);
  return { box, value, area, path };
}

function draw(p, points, index, scale, text) {
  const shown = points.filter((pt) => pt[index] !== null && pt[index] !== undefined);
  p.box.style.display = shown.length || index < 3 ? "" : "none";
  if (!shown.length) {
    p.value.textContent = "–";
    p.path.setAttribute("d", "");
    p.area.setAttribute("d", "");
    return;
  }
  const t0 = points[0][0];
  const t1 = Math.max(points[points.length - 1][0], t0 + 1);
  const top = Math.max(scale(shown), 1e-9);
  let d = "";
  for (const pt of shown) {
    const x = ((pt[0] - t0) / (t1 - t0)) * W;
    const y = H - 2 - (pt[index] / top) * (H - 4);
    d += (d ? "L" : "M") + x.toFixed(1) + "," + y.toFixed(1);
  }
  p.path.setAttribute("d", d);
  const first = ((shown[0][0] - t0) / (t1 - t0)) * W;
  const last = ((shown[shown.length - 1][0] - t0) / (t1 - t0)) * W;
  p.area.setAttribute("d", `${d}L${last.toFixed(1)},${H}L${first.toFixed(1)},${H}Z`);
  p.value.textContent = text(shown[shown.length - 1][index], top);
}

function render({ model, el }) {
  const root = apoloEl("div", "apolo-top");
  const head = apoloEl("div", "apolo-top-head");
  const job = apoloEl("span", "apolo-top-job");
  const state = apoloEl("span", "apolo-top-state");
  head.append(apoloEl("b", "", "top"), job, state);
  root.append(head);
  const cpu = panel(root, "cpu", "CPU (cores)");
  const mem = panel(root, "mem", "Memory (resident)");
  const gpu = panel(root, "gpu", "GPU duty cycle");
  const gpumem = panel(root, "gpumem", "GPU memory");
  el.append(root);

  const peak = (i) => (pts) => Math.max(...pts.map((p) => p[i]));
  function update() {
    const points = model.get("points") || [];
    job.textContent = model.get("job_id");
    state.textContent = model.get("state");
    draw(cpu, points, 1, (pts) => Math.max(1, peak(1)(pts)), (v, top) =>
      `${v.toFixed(2)} (scale ${top.toFixed(1)})`);
    draw(mem, points, 2, (pts) => peak(2)(pts) * 1.1, (v) => fmtBytes(v));
    draw(gpu, points, 3, () => 100, (v) => `${v}%`);
    draw(gpumem, points, 4, (pts) => peak(4)(pts) * 1.1, (v) => fmtBytes(v));
    el.dataset.samples = String(points.length);
  }
  const stop = apoloOnChange(model, ["points", "state", "job_id"], update);
  update();
  return stop;
}

export default { render };
