// Pieces several pages share: state badges, the awaiting-admin summary, polling.

import { badge, h } from "../dom.js";

export function stateBadge(state) {
  return badge(state || "unknown", `state-${state}`);
}

export function flagBadges(flags) {
  const labels = { stale: "stale", suspicious_empty: "suspicious: empty" };
  return (flags || []).map((f) => badge(labels[f] || f, `flag-${f}`));
}

export function awaitingText(awaiting) {
  if (!awaiting) return "—";
  const parts = [];
  if (awaiting.conflicts) parts.push(`${awaiting.conflicts} conflict${awaiting.conflicts === 1 ? "" : "s"}`);
  if (awaiting.deletes_held) parts.push(`${awaiting.deletes_held} deletion${awaiting.deletes_held === 1 ? "" : "s"} held`);
  return parts.length ? parts.join(", ") : "—";
}

// Calls `fn` now and then every `delay(result)` ms while the page is shown.
export function poll(ctx, fn, delay) {
  const tick = async () => {
    if (!ctx.alive()) return;
    let result;
    try { result = await fn(); } catch (err) { if (ctx.alive()) ctx.fail(err); return; }
    if (ctx.alive()) setTimeout(tick, delay(result));
  };
  return tick();
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

// A one-shot notice shown at the top of the next page (e.g. after a delete navigates away).
let pendingFlash = null;
export function setFlash(kind, text) { pendingFlash = { kind, text }; }
export function takeFlash() { const f = pendingFlash; pendingFlash = null; return f; }
