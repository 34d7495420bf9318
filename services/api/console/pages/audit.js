// Audit log, newest first: who did what to which connector; filter by event.

import { api, q } from "../api.js";
import { clear, fmtTime, h, table } from "../dom.js";

const EVENTS = ["connector.created", "connector.updated", "connector.deleted", "connector.paused",
  "connector.resumed", "connector.auth_failed", "connector.auth_restored", "connector.deletes_held",
  "connector.deletes_approved", "connector.deletes_rejected", "conflict.resolved",
  "conflict.superseded"];
const BASE_FIELDS = new Set(["event", "connector_id", "connector_name", "kind", "actor", "at"]);

export async function auditPage(ctx) {
  const event = ctx.params.get("event") || "";
  const events = EVENTS.includes(event) || !event ? EVENTS : [...EVENTS, event];
  const filter = h("select", { id: "event-filter", onchange: () =>
    ctx.go("audit", new URLSearchParams(filter.value ? { event: filter.value } : {})) },
  h("option", { value: "" }, "All events"),
  events.map((e) => h("option", { value: e, selected: e === event }, e)));
  const rows = await api.get(`/audit?limit=500${event ? `&event=${q(event)}` : ""}`);
  if (!ctx.alive()) return;
  clear(ctx.main, h("div", { class: "title-row" }, h("h1", {}, "Audit log"),
    h("div", { class: "field inline" }, h("label", { for: "event-filter" }, "Event"), filter)),
  h("div", { id: "audit-table" }, table(["Event", "Connector", "Actor", "When", "Details"], rows.map((r) => h("tr", {},
    h("td", {}, r.event),
    h("td", {}, r.connector_id ? h("a", { href: `#/connectors/${encodeURIComponent(r.connector_id)}` },
      r.connector_name || r.connector_id) : "—"),
    h("td", {}, r.actor ?? "—"),
    h("td", {}, fmtTime(r.at)),
    h("td", { class: "details" }, details(r)))), "No audit entries.")));
}

function details(r) {
  return Object.entries(r).filter(([k]) => !BASE_FIELDS.has(k))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
    .join(" · ") || "—";
}
