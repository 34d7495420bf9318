// Conflicts tab: each conflict's two versions side by side and the three ways to settle it.
// A decision sent is followed on its card (the conflict read again every second) until a
// transfer worker applied it, or found a side changed since detection: then the conflict is
// superseded, with the reason, and nothing was overwritten. A conflict whose notices (the
// platform event, the admins' e-mail) failed for good says so, with a button to send them again;
// so does a decision that could not be applied (its job dead-lettered): "Apply again".

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

// Whether the conflict's notices went out: the event, and under manual review the e-mail.
const notified = (rec) => !rec.notify_failed && rec.published_detected && (rec.mailed || rec.policy !== "manual");
const noticeFailedText = (rec) => `Notification failed: ${rec.notify_failed}. The admins may not know about this conflict.`;

// The notification's line and its re-send button.
function noticeRow(ctx, rec) {
  const line = h("div", { class: "conflict-notice" });
  const show = (now) => {
    if (now.notify_failed) clear(line, message("error", noticeFailedText(now)), button);
    else if (notified(now)) clear(line, message("ok", "Notification sent."));
    else clear(line, message("ok", "Notification being sent…"));
  };
  const follow = async () => {
    const until = Date.now() + FOLLOW_FOR_MS;
    while (Date.now() < until) {
      await sleep(FOLLOW_EVERY_MS);
      if (!ctx.alive() || !line.isConnected) return;
      let now;
      try { now = await api.get(`/conflicts/${q(rec.id)}`); } catch { continue; }
      show(now);
      if (now.notify_failed || notified(now)) return;
    }
  };
  const resend = async () => {
    button.disabled = true;
    try {
      show(await api.post(`/conflicts/${q(rec.id)}/notify`, {}));
    } catch (err) {
      clear(line, message("error", err.message));
      return;
    } finally {
      button.disabled = false;
    }
    await follow();
  };
  const button = h("button", { class: "renotify", onclick: resend }, "Re-send notification");
  if (rec.notify_failed) show(rec);
  return line;
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
    outcome, noticeRow(ctx, rec), applyRow(rec, status, follow), buttons, status);
  return el;
}

const applyFailedText = (rec) => `The decision could not be applied: ${rec.apply_failed}. The file stays as it is on both sides until it is applied.`;

// A resolved conflict whose decision's job failed for good: the error and "Apply again", which
// sends the recorded decision once more; the card then follows it like a fresh decision.
function applyRow(rec, status, follow) {
  const line = h("div", { class: "conflict-apply" });
  if (!(rec.state === "resolved" && rec.apply_failed && !rec.applied_at)) return line;
  const again = async () => {
    button.disabled = true;
    clear(status);
    try {
      await api.post(`/conflicts/${q(rec.id)}/reapply`, {});
    } catch (err) {
      status.append(message("error", err.message));
      button.disabled = false;
      return;
    }
    clear(line);
    const label = WINNERS.find(([w]) => w === rec.winner)?.[1] ?? rec.winner;
    status.append(message("ok", `Decision sent again: ${label} wins. It is applied on both sides shortly.`));
    await follow(label);
  };
  const button = h("button", { class: "reapply", onclick: again }, "Apply again");
  clear(line, message("error", applyFailedText(rec)), button);
  return line;
}
