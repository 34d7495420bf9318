// Detail tabs: per-file failures (Logs), the identity mapping report, held deletions.

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, fmtTime, h, message, table } from "../dom.js";

// Renders a titled panel with a Refresh button; returns {loaded (the first load), reload}.
function refreshable(ctx, content, title, load) {
  const body = h("div", {}, "Loading…");
  const run = async () => {
    try {
      const nodes = await load();
      if (ctx.alive()) clear(body, nodes);
    } catch (err) {
      if (ctx.alive() && !(err instanceof ApiError && err.status === 401)) clear(body, message("error", err.message));
    }
  };
  clear(content, h("div", { class: "title-row" }, h("h2", {}, title),
    h("button", { class: "refresh", onclick: run }, "Refresh")), body);
  return { loaded: run(), reload: run };
}

// Failures with a cause filter; the cause is kept in the hash so a filtered view can be shared.
export function logsTab(ctx, c, content) {
  const chosen = ctx.params.get("cause") || "";
  return refreshable(ctx, content, "Per-file failures", async () => {
    const all = await api.get(`/connectors/${q(c.id)}/failures`);
    const rows = chosen ? all.filter((f) => f.cause === chosen) : all;
    const causes = [...new Set(all.map((f) => f.cause))].sort();
    if (chosen && !causes.includes(chosen)) causes.push(chosen);
    const filter = h("select", { id: "cause-filter", onchange: () => {
      const params = new URLSearchParams(filter.value ? { cause: filter.value } : {});
      ctx.go(`connectors/${encodeURIComponent(c.id)}/logs`, params);
    } }, h("option", { value: "" }, `All causes (${all.length})`),
    causes.map((cause) => h("option", { value: cause, selected: cause === chosen },
      `${cause} (${all.filter((f) => f.cause === cause).length})`)));
    return [h("div", { class: "field inline" }, h("label", { for: "cause-filter" }, "Cause"), filter),
      table(["Path", "Cause", "Stage", "Message", "Time"], rows.map((f) => h("tr", {},
        h("td", { class: "path" }, f.path), h("td", {}, f.cause), h("td", {}, f.stage),
        h("td", {}, f.message), h("td", {}, fmtTime(f.at)))), "No failures recorded.")];
  }).loaded;
}

export function identitiesTab(ctx, c, content) {
  return refreshable(ctx, content, "Identity mapping report", async () => {
    const rows = await api.get(`/connectors/${q(c.id)}/identities`);
    return table(["Source principal", "ScaiDrive user", "Mapped by", "Score", "Files", "Size"],
      rows.map((r) => h("tr", {}, h("td", {}, r.source_principal ?? "—"), h("td", {}, r.user_id),
        h("td", {}, r.method), h("td", { class: "num" }, r.score ?? "—"),
        h("td", { class: "num" }, r.files), h("td", { class: "num" }, fmtBytes(r.bytes)))),
      "No files synced yet.");
  }).loaded;
}

export function heldTab(ctx, c, content) {
  const status = h("div", { id: "held-status" });
  const decide = (decision) => async () => {
    clear(status);
    try {
      const res = await api.post(`/connectors/${q(c.id)}/held-deletes/${decision}`);
      status.append(message("ok", decision === "approve"
        ? `${res.count} deletion(s) approved: the next run deletes them.`
        : `${res.count} deletion(s) rejected: the next run restores the files.`));
    } catch (err) {
      status.append(message("error", err.message));
    }
    await reload();
  };
  let reload;
  const panel = refreshable(ctx, content, "Held deletions", async () => {
    const held = await api.get(`/connectors/${q(c.id)}/held-deletes`);
    const sides = { source: "on the source", scaidrive: "in ScaiDrive" };
    return [h("p", {}, `${held.count} deletion(s) held back by a run that would have deleted more than ${c.max_delete_percent}% of a side.`),
      held.count ? h("div", { class: "actions" },
        h("button", { id: "approve-deletes", onclick: decide("approve") }, "Approve: delete them"),
        h("button", { id: "reject-deletes", onclick: decide("reject") }, "Reject: restore them")) : null,
      status,
      table(["Path", "Deleted"], held.files.map((f) => h("tr", {},
        h("td", { class: "path" }, f.path), h("td", {}, sides[f.side] || f.side))), "No deletions are held.")];
  });
  reload = panel.reload;
  return panel.loaded;
}
