// Activity charts on a connector's page: files synced and errored, bytes synced and the
// transfer queue's deepest (sampled by the scheduler every 15 s), per hour
// over the last day or week (GET /connectors/{id}/stats/hourly), drawn with uPlot (shipped as
// a static file in ../vendor: no build step). Refreshed every minute while the page is open.

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, h, message } from "../dom.js";
import uPlot from "../vendor/uPlot.esm.js";
import { poll, section } from "./common.js";

const COLORS = { files: "#2456c9", errors: "#b42318", bytes: "#17803d", queue: "#a15c00" };

export function activitySection(ctx, c) {
  const box = h("div", { id: "activity-chart", class: "chart" });
  const totals = h("p", { id: "activity-totals", class: "hint" });
  let period = "day";
  const choose = h("select", { id: "activity-period", onchange: () => { period = choose.value; load(); } },
    h("option", { value: "day" }, "Last 24 hours"), h("option", { value: "week" }, "Last 7 days"));
  const load = async () => {
    try {
      const rows = await api.get(`/connectors/${q(c.id)}/stats/hourly?period=${period}`);
      if (ctx.alive()) draw(box, totals, rows);
    } catch (err) {
      if (ctx.alive() && !(err instanceof ApiError && err.status === 401)) clear(box, message("error", err.message));
    }
    return null;
  };
  poll(ctx, load, () => 60_000);
  return section("Activity per hour", h("div", { class: "field inline" },
    h("label", { for: "activity-period" }, "Period"), choose), box, totals);
}

function draw(box, totals, rows) {
  const sum = (k) => rows.reduce((n, r) => n + r[k], 0);
  totals.textContent = `${sum("files_transferred")} files synced, ${sum("files_errored")} errors, `
    + `${fmtBytes(sum("bytes_transferred"))} in this period (UTC hours).`;
  box.dataset.points = String(rows.length);
  box.dataset.files = String(sum("files_transferred"));
  const data = [rows.map((r) => r.at), rows.map((r) => r.files_transferred),
    rows.map((r) => r.files_errored), rows.map((r) => r.bytes_transferred),
    rows.map((r) => r.queue_depth)];
  const width = Math.max(320, Math.min(900, box.parentElement ? box.parentElement.clientWidth - 32 : 640));
  const opts = {
    width, height: 220,
    scales: { x: { time: true }, files: { auto: true }, bytes: { auto: true } },
    axes: [{ stroke: "currentColor" },
      { scale: "files", label: "files", stroke: "currentColor" },
      { scale: "bytes", side: 1, label: "bytes", stroke: "currentColor", grid: { show: false },
        values: (_u, ticks) => ticks.map((t) => fmtBytes(t)) }],
    series: [{},
      { label: "Files synced", scale: "files", stroke: COLORS.files, width: 2 },
      { label: "Errors", scale: "files", stroke: COLORS.errors, width: 2 },
      { label: "Bytes synced", scale: "bytes", stroke: COLORS.bytes, width: 1, dash: [4, 3],
        value: (_u, v) => (v === null ? "—" : fmtBytes(v)) },
      { label: "Queue depth (deepest)", scale: "files", stroke: COLORS.queue, width: 1,
        spanGaps: false }],
  };
  clear(box);
  box.chart = new uPlot(opts, data, box);
}
