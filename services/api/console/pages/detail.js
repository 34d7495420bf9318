// Connector detail: state and controls (polled: every second while a run is going), the
// monitoring figures of the seed (last success, day/week/month counts, queue depth, storage),
// the running sync's progress, and the Logs / Conflicts / Identities / Held deletions tabs.

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, fmtDuration, fmtTime, h, message, table, when } from "../dom.js";
import { awaitingText, flagBadges, poll, section, setFlash, stateBadge } from "./common.js";
import { activitySection } from "./charts.js";
import { conflictsTab } from "./conflicts.js";
import { credentialsSection } from "./credentials.js";
import { heldTab, identitiesTab, logsTab } from "./tabs.js";
import { windowLines } from "./connector_form.js";

const TABS = [["overview", "Overview"], ["logs", "Logs"], ["conflicts", "Conflicts"],
  ["identities", "Identities"], ["held", "Held deletions"]];
const COUNTERS = [["files_scanned", "Files scanned"], ["files_transferred", "Files transferred"],
  ["files_errored", "Files errored"], ["files_moved", "Files moved"], ["files_deleted", "Files deleted"],
  ["files_skipped", "Files skipped"], ["files_conflicted", "Files in conflict"],
  ["bytes_transferred", "Bytes transferred"]];

export async function detailPage(ctx, id, tab) {
  let c = await api.get(`/connectors/${q(id)}`);
  if (!ctx.alive()) return;
  const head = h("div", { class: "title-row" });
  const notice = h("div", { id: "action-message" });
  const confirmBox = h("div", { id: "delete-panel" });
  const tabs = h("nav", { class: "tabs" }, TABS.map(([key, label]) =>
    h("a", { href: `#/connectors/${q(id)}/${key}`, class: key === tab ? "active" : "", id: `tab-${key}` }, label)));
  const content = h("div", { id: "tab-content" });
  clear(ctx.main, head, notice, confirmBox, tabs, content);

  const act = async (what, fn) => {
    clear(notice);
    try {
      c = (await fn()) || c;
      if (ctx.alive()) notice.append(message("ok", what));
    } catch (err) {
      if (ctx.alive() && !(err instanceof ApiError && err.status === 401)) notice.append(message("error", err.message));
    }
    if (ctx.alive()) renderHead();
  };
  const renderHead = () => {
    const paused = c.status.state === "paused";
    clear(head,
      h("h1", {}, c.name, " ", h("span", { id: "state" }, stateBadge(c.status.state)),
        " ", flagBadges(c.status.flags)),
      h("div", { class: "actions" },
        paused
          ? h("button", { id: "resume", onclick: () => act("Resumed.", () => api.post(`/connectors/${q(id)}/resume`)) }, "Resume")
          : h("button", { id: "pause", onclick: () => act("Paused.", () => api.post(`/connectors/${q(id)}/pause`)) }, "Pause"),
        h("button", { id: "sync-now", disabled: paused, onclick: () => act("Sync requested.", async () => {
          await api.post(`/connectors/${q(id)}/sync`);
        }) }, "Sync now"),
        h("a", { id: "edit", class: "button", href: `#/connectors/${q(id)}/edit` }, "Edit"),
        h("button", { id: "delete", class: "danger", onclick: () => showDelete(ctx, c, confirmBox) }, "Delete")));
  };
  renderHead();

  if (tab !== "overview") {
    // The header keeps following the state; the tab's own data loads once (it has Refresh).
    poll(ctx, async () => { c = await api.get(`/connectors/${q(id)}`); if (ctx.alive()) renderHead(); return c; },
      () => 3000);
    const render = { logs: logsTab, conflicts: conflictsTab, identities: identitiesTab, held: heldTab }[tab];
    await render(ctx, c, content);
    return;
  }
  const overview = h("div", {});
  // Outside the polled part: a re-render must not wipe what the admin is typing.
  content.append(overview, activitySection(ctx, c),
    credentialsSection(c, (updated) => { c = updated; renderHead(); }));
  let stats = null;
  let statsAt = 0;
  let seen = "";
  await poll(ctx, async () => {
    c = await api.get(`/connectors/${q(id)}`);
    // Counters move while a run goes and when it ends: refetch then, else every 5 s.
    const run = c.status.run || {};
    const now = `${c.status.state}/${run.run_id}/${run.phase}`;
    if (Date.now() - statsAt > 5000 || c.status.state === "running" || now !== seen) {
      stats = await loadStats(c);
      statsAt = Date.now();
      seen = now;
    }
    if (ctx.alive()) {
      renderHead();
      clear(overview, runSection(c), monitoringSection(c, stats), configSection(c));
    }
    return c;
  }, (latest) => (latest.status.state === "running" ? 1000 : 4000));
}

// Stats come from /stats; if the API cannot give them, the share's usage still can be shown.
async function loadStats(c) {
  try {
    return await api.get(`/connectors/${q(c.id)}/stats`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    const share = await api.get(`/shares/${q(c.target_share)}`).catch(() => null);
    return { unavailable: err.message, share };
  }
}

function runSection(c) {
  const run = c.status.run;
  if (!run) return section("Current sync", h("p", { id: "run-phase" }, "No sync has run yet."));
  const p = c.status.progress;
  const done = run.phase === "finished";
  const failed = done && run.outcome === "failed";
  const listing = p.files_total === null;
  const jobs = failed ? "the run failed" : !listing ? `${run.jobs_done} of ${p.files_total} changes done`
    : `listing: ${p.files_listed} files (${fmtBytes(p.bytes_listed)}) found so far`;
  const pct = failed ? 0 : (p.percent ?? 0);
  const pace = !done && p.bytes_per_s ? [" · ", h("span", { id: "run-rate" }, `${fmtBytes(p.bytes_per_s)}/s`),
    p.eta_s !== null ? [" · about ", h("span", { id: "run-eta" }, fmtDuration(p.eta_s)), " left"] : null] : null;
  return section(done ? "Last sync" : "Current sync",
    h("p", {}, "Phase: ", h("strong", { id: "run-phase" }, run.phase || "—"),
      done ? [" · outcome: ", h("strong", { id: "run-outcome" }, run.outcome || "—")] : null,
      " · ", h("span", { id: "run-jobs" }, jobs), pace, " · started ", when(run.started_at),
      run.finished_at ? [" · finished ", when(run.finished_at)] : null),
    h("div", { class: `bar${listing && !done ? " indeterminate" : ""}`, role: "progressbar",
      "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" },
    h("div", { id: "run-bar", style: `width:${pct}%` })),
    !done && !listing ? h("p", { id: "run-percent" }, `${pct}% · ${fmtBytes(p.bytes_transferred)} of ${fmtBytes(p.bytes_total)}`) : null,
    h("dl", { class: "counters", id: "progress" }, COUNTERS.map(([k, label]) => [
      h("dt", {}, label),
      // Files scanned grows while the listing runs (files_listed), not only at its end.
      h("dd", { id: `progress-${k}` }, k === "bytes_transferred" ? fmtBytes(p[k])
        : k === "files_scanned" ? Math.max(p.files_listed ?? 0, p[k]) : p[k])])),
    run.error && !c.status.auth_error
      ? message("error", run.error_plain ? `${run.error_plain} (${run.error})` : run.error) : null,
    run.deletes_held ? message("warn", `${run.deletes_held} deletion(s) held for approval: see Held deletions.`) : null);
}

function monitoringSection(c, stats) {
  const s = c.status;
  const rows = [["Last successful sync", h("span", { id: "last-success" }, when(s.last_success_at))],
    ["Duration", fmtDuration(s.last_duration_s)], ["Next scheduled run", when(s.next_due_at)],
    ["Awaiting admin", awaitingText(s.awaiting_admin)]];
  // Plain words first; the server's own words behind "details".
  const explained = (plainText, raw, id) => h("div", { id },
    plainText ? h("div", { class: "plain" }, plainText) : null,
    plainText ? h("details", {}, h("summary", {}, "details"), h("code", {}, raw)) : raw);
  // Said once: not again when it is the last run's error or the refused credentials.
  if (s.last_error && s.last_error !== (s.run && s.run.error) && !s.auth_error) {
    rows.push(["Last error", explained(s.last_error_plain, s.last_error, "last-error")]);
  }
  if (s.auth_error) rows.push(["Credentials refused", explained(s.auth_error_plain, s.auth_error, "auth-error")]);
  const parts = [h("table", { class: "kv" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))))];
  if (stats && !stats.unavailable) {
    const per = stats.periods || {};
    const line = (label, key, fmt = (x) => x ?? "—") => h("tr", {}, h("th", {}, label),
      ["day", "week", "month"].map((d) => h("td", { class: "num" }, per[d] ? fmt(per[d][key]) : "—")));
    parts.push(h("table", { id: "stats" }, h("thead", {}, h("tr", {}, h("th", {}, ""),
      ["Last day", "Last week", "Last month"].map((x) => h("th", {}, x)))),
    h("tbody", {}, line("Files synced", "files_transferred"), line("Errors", "files_errored"),
      line("Deleted", "files_deleted"), line("Moved", "files_moved"), line("Conflicts", "files_conflicted"),
      line("Bytes synced", "bytes_transferred", fmtBytes))),
    h("p", {}, "Pending queue depth: ", h("strong", { id: "queue-depth" },
      stats.queue_depth === null || stats.queue_depth === undefined ? "unknown" : `${stats.queue_depth} job(s)`)));
  } else if (stats) {
    parts.push(message("warn", `Statistics unavailable: ${stats.unavailable}`));
  }
  const share = stats && stats.share;
  if (share) {
    const pct = share.quota_bytes ? Math.min(100, Math.round((100 * share.usage_bytes) / share.quota_bytes)) : null;
    parts.push(h("p", {}, "Storage in share ", h("a", { href: "#/shares" }, share.name), ": ",
      h("strong", { id: "storage-usage" }, fmtBytes(share.usage_bytes)),
      share.quota_bytes ? ` of ${fmtBytes(share.quota_bytes)} (${pct}%)` : " (no quota)"));
    if (pct !== null) parts.push(h("div", { class: "bar" }, h("div", { style: `width:${pct}%` })));
  }
  return section("Monitoring", parts);
}

function configSection(c) {
  const rows = [["Kind", c.kind === "sharepoint" ? "SharePoint" : "SMB"]];
  if (c.kind === "smb") {
    rows.push(["Server", c.server], ["Username", c.username], ["Domain", c.domain || "—"]);
  } else {
    rows.push(["Tenant ID", c.tenant_id], ["Application", c.client_id],
      ["Credential", c.credential === "certificate" ? "certificate" : "client secret"],
      ["Site URL", c.site_url], ["Library", c.library]);
  }
  rows.push(["Target share", c.target_share + (c.target_prefix ? ` / ${c.target_prefix}` : "")],
    ["Sync mode", c.sync_mode === "two_way" ? "two-way" : "one-way"], ["Schedule", c.schedule],
    ["Identity mapping", c.identity_mapping ? c.identity_mapping.strategy : "—"],
    ["Bandwidth limit", c.bandwidth_limit ? String(c.bandwidth_limit) : "none"],
    ["Max parallel transfers", c.max_parallel_transfers ? String(c.max_parallel_transfers) : "no limit"],
    ["Sync windows", c.sync_windows
      ? `${windowLines(c.sync_windows).replaceAll("\n", "; ")} (${c.sync_windows.timezone})` : "any time"]);
  if (c.sync_mode === "two_way") {
    rows.push(["Admin emails", (c.admin_emails || []).join(", ") || "—"],
      ["Conflict policy", c.conflict_policy], ["Max delete percent", `${c.max_delete_percent}%`]);
  }
  return section("Configuration", h("table", { class: "kv" },
    h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v ?? "—"))))));
}

// The seed's two ways out: drop the connector and keep its share, or drop the share too.
function showDelete(ctx, c, box) {
  const status = h("div", {});
  const run = async (withShare) => {
    clear(status);
    try {
      await api.del(`/connectors/${q(c.id)}`);
    } catch (err) {
      status.append(message("error", err.message));
      return;
    }
    if (withShare) {
      try {
        await api.del(`/shares/${q(c.target_share)}`);
      } catch (err) {
        setFlash("error", `Connector ${c.name} deleted, but share ${c.target_share} was not: ${err.message}`);
        ctx.go("shares");
        return;
      }
      setFlash("ok", `Connector ${c.name} and share ${c.target_share} deleted.`);
    } else {
      setFlash("ok", `Connector ${c.name} deleted; share ${c.target_share} and its files are kept.`);
    }
    ctx.go("connectors");
  };
  clear(box, h("div", { class: "card danger-zone" },
    h("h2", {}, `Delete connector ${c.name}?`),
    h("p", {}, "Pause first if a sync is running. Choose what happens to the target share ", h("strong", {}, c.target_share), ":"),
    h("div", { class: "actions" },
      h("button", { id: "delete-keep", onclick: () => run(false) }, "Delete connector, keep the share and its files"),
      h("button", { id: "delete-all", class: "danger", onclick: () => run(true) }, "Delete connector and the share with all its files"),
      h("button", { id: "delete-cancel", onclick: () => clear(box) }, "Cancel")),
    status));
}
