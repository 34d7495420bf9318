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

// Failures grouped by path across runs, with a cause filter and a search (both kept in the hash
// so a filtered view can be shared), each cause in plain words with the server's message as the
// detail; CSV export of the same view, and "Retry failed files now" (a run).
export function logsTab(ctx, c, content) {
  const chosen = ctx.params.get("cause") || "";
  const searched = ctx.params.get("q") || "";
  const go = (cause, text) => ctx.go(`connectors/${encodeURIComponent(c.id)}/logs`,
    new URLSearchParams({ ...(cause ? { cause } : {}), ...(text ? { q: text } : {}) }));
  return refreshable(ctx, content, "Per-file failures", async () => {
    const all = await api.get(`/connectors/${q(c.id)}/failures?group=path`);
    const params = new URLSearchParams({ group: "path", ...(chosen ? { cause: chosen } : {}),
      ...(searched ? { q: searched } : {}) });
    const rows = await api.get(`/connectors/${q(c.id)}/failures?${params}`);
    const causes = [...new Set(all.map((f) => f.cause))].sort();
    if (chosen && !causes.includes(chosen)) causes.push(chosen);
    const filter = h("select", { id: "cause-filter", onchange: () => go(filter.value, search.value) },
      h("option", { value: "" }, `All causes (${all.length})`),
      causes.map((cause) => h("option", { value: cause, selected: cause === chosen },
        `${cause} (${all.filter((f) => f.cause === cause).length})`)));
    const search = h("input", { id: "failure-search", type: "search", value: searched,
      placeholder: "Path or message", onchange: () => go(filter.value, search.value) });
    const exported = h("a", { id: "failures-csv", class: "button", download: "",
      href: `/api/v1/connectors/${q(c.id)}/failures?${params}&format=csv&limit=10000` }, "Export CSV");
    const status = h("span", { id: "retry-status" });
    const retry = h("button", { id: "retry-failed", disabled: !all.length, onclick: async () => {
      try {
        const out = await api.post(`/connectors/${q(c.id)}/failures/retry`);
        clear(status, message("ok", `A run started: ${out.paths} failed file(s) will be tried again.`));
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) clear(status, message("error", err.message));
      }
    } }, "Retry failed files now");
    return [h("div", { class: "field inline" }, h("label", { for: "cause-filter" }, "Cause"), filter,
      h("label", { for: "failure-search" }, "Search"), search, exported, retry), status,
      table(["Path", "What happened", "Cause", "Times", "First seen", "Last seen", "Detail"],
        rows.map((f) => h("tr", {},
          h("td", { class: "path" }, f.path), h("td", {}, f.plain), h("td", {}, f.cause),
          h("td", {}, String(f.count)), h("td", {}, fmtTime(f.first_seen)),
          h("td", {}, fmtTime(f.last_seen)), h("td", { class: "detail" }, f.message))),
        "No failures recorded.")];
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
