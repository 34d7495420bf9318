// Conflicts tab: each conflict's two versions side by side and the three ways to settle it.
// A decision sent is followed on its card (the conflict read again every second) until a
// transfer worker applied it, or found a side changed since detection: then the conflict is
// superseded, with the reason, and nothing was overwritten.

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, fmtTime, h, message } from "../dom.js";

const WINNERS = [["source", "Source"], ["scaidrive", "ScaiDrive"], ["keep_both", "Keep both"]];
const STATES = [["open", "Open"], ["resolved", "Resolved"], ["superseded", "Superseded"], ["", "All"]];
const FOLLOW_EVERY_MS = 1000;
const FOLLOW_FOR_MS = 120_000;

export async function conflictsTab(ctx, c, content) {
  const state = ctx.params.has("state") ? ctx.params.get("state") : "open";
  const list = h("div", { id: "conflicts" }, "Loading…");
  const filter = h("select", { id: "conflict-state", onchange: () =>
    ctx.go(`connectors/${encodeURIComponent(c.id)}/conflicts`, new URLSearchParams({ state: filter.value })) },
  STATES.map(([v, label]) => h("option", { value: v, selected: v === state }, label)));
  const load = async () => {
    try {
      const found = await api.get(`/conflicts?connector=${q(c.id)}${state ? `&state=${q(state)}` : ""}`);
      if (ctx.alive()) clear(list, found.length ? found.map((rec) => card(ctx, rec)) : h("p", { class: "empty" }, "No conflicts."));
    } catch (err) {
      if (ctx.alive() && !(err instanceof ApiError && err.status === 401)) clear(list, message("error", err.message));
    }
  };
  clear(content, h("div", { class: "title-row" }, h("h2", {}, "Conflicts"),
    h("div", { class: "field inline" }, h("label", { for: "conflict-state" }, "State"), filter),
    h("button", { class: "refresh", onclick: load }, "Refresh")), list);
  await load();
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const hintText = (rec) => `Detected ${fmtTime(rec.detected_at)} · state: ${rec.state}`;

function outcomeText(rec) {
  if (rec.state === "resolved") {
    return `Resolved: ${rec.winner} chosen by ${rec.resolved_by} at ${fmtTime(rec.resolved_at)}${rec.applied_at ? ", applied" : ", being applied"}`;
  }
  if (rec.state === "superseded") return `Superseded${rec.reason ? ` (${rec.reason})` : ""}: the next run detects it again.`;
  return "";
}

function card(ctx, rec) {
  const status = h("div", { class: "conflict-status" });
  const hint = h("p", { class: "hint" }, hintText(rec));
  const outcome = h("p", { class: "conflict-outcome", hidden: !outcomeText(rec) }, outcomeText(rec));
  const side = (v, key) => (v ? v[key] : null);
  const row = (label, key, fmt = (x) => x ?? "—") => h("tr", {}, h("th", {}, label),
    h("td", { class: "side-source" }, fmt(side(rec.source, key))),
    h("td", { class: "side-scaidrive" }, fmt(side(rec.scaidrive, key))));
  const show = (now) => {
    clear(hint, hintText(now));
    clear(outcome, outcomeText(now));
    outcome.hidden = !outcomeText(now);
    buttons.hidden = now.state !== "open"; // decided, or superseded: nothing left to pick
  };
  // The API only records the decision (202): whether it is applied or turns out stale (a side
  // changed since detection) is read back from the conflict.
  const follow = async (label) => {
    const until = Date.now() + FOLLOW_FOR_MS;
    while (Date.now() < until) {
      await sleep(FOLLOW_EVERY_MS);
      if (!ctx.alive() || !el.isConnected) return;
      let now;
      try { now = await api.get(`/conflicts/${q(rec.id)}`); } catch { continue; }
      if (!ctx.alive()) return;
      show(now);
      if (now.state === "superseded") {
        clear(status, message("error", `Not applied: ${now.reason || "a side changed since detection"}. Nothing was overwritten; the next run detects the conflict again.`));
        return;
      }
      if (now.applied_at) {
        clear(status, message("ok", `Applied on both sides: ${label} wins.`));
        return;
      }
    }
  };
  const resolve = (winner) => async () => {
    clear(status);
    for (const b of buttons.querySelectorAll("button")) b.disabled = true;
    const label = WINNERS.find(([w]) => w === winner)[1];
    let now;
    try {
      now = await api.post(`/conflicts/${q(rec.id)}/resolve`, { winner, resolved_by: ctx.session.name });
    } catch (err) {
      // 409: already resolved by someone else, or superseded: the API says which.
      status.append(message("error", err.message));
      const settled = err instanceof ApiError && err.status === 409; // nothing left to pick
      for (const b of buttons.querySelectorAll("button")) b.disabled = settled;
      return;
    }
    status.append(message("ok", `Decision sent: ${label} wins. It is applied on both sides shortly.`));
    show(now);
    await follow(label);
  };
  const open = rec.state === "open";
  const buttons = h("div", { class: "actions" }, open ? [h("span", {}, "Keep: "),
    WINNERS.map(([w, label]) => h("button", { class: `resolve resolve-${w}`, dataset: { winner: w }, onclick: resolve(w) }, label))] : null);
  const el = h("div", { class: "card conflict", dataset: { id: rec.id, path: rec.path } },
    h("h3", { class: "path" }, rec.path),
    hint,
    h("table", { class: "versions" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Source"), h("th", {}, "ScaiDrive"))),
      h("tbody", {}, row("Size", "size", fmtBytes), row("Modified", "mtime", fmtTime),
        row("Editor", "editor"), row("Etag", "etag"))),
    outcome, buttons, status);
  return el;
}
