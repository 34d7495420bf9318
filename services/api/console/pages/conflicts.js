// Conflicts tab: each conflict's two versions side by side and the three ways to settle it.

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, fmtTime, h, message } from "../dom.js";

const WINNERS = [["source", "Source"], ["scaidrive", "ScaiDrive"], ["keep_both", "Keep both"]];
const STATES = [["open", "Open"], ["resolved", "Resolved"], ["superseded", "Superseded"], ["", "All"]];

export async function conflictsTab(ctx, c, content) {
  const state = ctx.params.has("state") ? ctx.params.get("state") : "open";
  const list = h("div", { id: "conflicts" }, "Loading…");
  const filter = h("select", { id: "conflict-state", onchange: () =>
    ctx.go(`connectors/${encodeURIComponent(c.id)}/conflicts`, new URLSearchParams({ state: filter.value })) },
  STATES.map(([v, label]) => h("option", { value: v, selected: v === state }, label)));
  const load = async () => {
    try {
      const found = await api.get(`/conflicts?connector=${q(c.id)}${state ? `&state=${q(state)}` : ""}`);
      if (ctx.alive()) clear(list, found.length ? found.map((rec) => card(ctx, rec, load)) : h("p", { class: "empty" }, "No conflicts."));
    } catch (err) {
      if (ctx.alive() && !(err instanceof ApiError && err.status === 401)) clear(list, message("error", err.message));
    }
  };
  clear(content, h("div", { class: "title-row" }, h("h2", {}, "Conflicts"),
    h("div", { class: "field inline" }, h("label", { for: "conflict-state" }, "State"), filter),
    h("button", { class: "refresh", onclick: load }, "Refresh")), list);
  await load();
}

function card(ctx, rec, reload) {
  const status = h("div", { class: "conflict-status" });
  const side = (v, key) => (v ? v[key] : null);
  const row = (label, key, fmt = (x) => x ?? "—") => h("tr", {}, h("th", {}, label),
    h("td", { class: "side-source" }, fmt(side(rec.source, key))),
    h("td", { class: "side-scaidrive" }, fmt(side(rec.scaidrive, key))));
  const resolve = (winner) => async () => {
    clear(status);
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    try {
      await api.post(`/conflicts/${q(rec.id)}/resolve`, { winner, resolved_by: ctx.session.name });
      status.append(message("ok", `Decision sent: ${WINNERS.find(([w]) => w === winner)[1]} wins. It is applied on both sides shortly.`));
    } catch (err) {
      // 409: already resolved by someone else, or stale (a side changed): the API says which.
      status.append(message("error", err.message));
      const settled = err instanceof ApiError && err.status === 409; // nothing left to pick
      for (const b of buttons.querySelectorAll("button")) b.disabled = settled;
    }
  };
  const open = rec.state === "open";
  const buttons = h("div", { class: "actions" }, open ? [h("span", {}, "Keep: "),
    WINNERS.map(([w, label]) => h("button", { class: `resolve resolve-${w}`, dataset: { winner: w }, onclick: resolve(w) }, label))] : null);
  const outcome = rec.state === "resolved"
    ? `Resolved: ${rec.winner} chosen by ${rec.resolved_by} at ${fmtTime(rec.resolved_at)}${rec.applied_at ? ", applied" : ", being applied"}`
    : rec.state === "superseded" ? `Superseded${rec.reason ? ` (${rec.reason})` : ""}: the next run detects it again.` : null;
  return h("div", { class: "card conflict", dataset: { id: rec.id, path: rec.path } },
    h("h3", { class: "path" }, rec.path),
    h("p", { class: "hint" }, `Detected ${fmtTime(rec.detected_at)} · state: ${rec.state}`),
    h("table", { class: "versions" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Source"), h("th", {}, "ScaiDrive"))),
      h("tbody", {}, row("Size", "size", fmtBytes), row("Modified", "mtime", fmtTime),
        row("Editor", "editor"), row("Etag", "etag"))),
    outcome ? h("p", {}, outcome) : null, buttons, status);
}
