// Connectors list: one row per connector with its state, health flags and what waits for an admin.

import { api } from "../api.js";
import { clear, h, table, when } from "../dom.js";
import { awaitingText, flagBadges, poll, stateBadge } from "./common.js";

export async function connectorsPage(ctx) {
  const body = h("div", { id: "connectors-table" }, "Loading…");
  clear(ctx.main,
    h("div", { class: "title-row" }, h("h1", {}, "Connectors"),
      h("a", { class: "button primary", href: "#/connectors/new", id: "new-connector" },
        "New connector")),
    body);
  await poll(ctx, async () => {
    const items = await api.get("/connectors");
    if (!ctx.alive()) return items;
    clear(body, table(
      ["Name", "Kind", "State", "Last success", "Errors today", "Flags", "Awaiting admin"],
      items.map((c) => h("tr", { dataset: { id: c.id } },
        h("td", {}, h("a", { href: `#/connectors/${encodeURIComponent(c.id)}` }, c.name)),
        h("td", {}, c.kind === "sharepoint" ? "SharePoint" : "SMB"),
        h("td", {}, stateBadge(c.status.state)),
        h("td", {}, when(c.status.last_success_at)),
        h("td", { class: "num" }, c.status.errors_today ?? "—"),
        h("td", {}, flagBadges(c.status.flags)),
        h("td", {}, awaitingText(c.status.awaiting_admin)))),
      "No connectors yet: create one with New connector."));
    return items;
  }, (items) => (items.some((c) => c.status.state === "running") ? 2000 : 5000));
}
