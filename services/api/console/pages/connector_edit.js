// Edit a connector: every field of the create form (its target aside: a connector keeps its
// share), filled in from the connector, saved as a PATCH of what changed. Secrets are never
// shown: left empty, they stay as they are. The API validates (and checks an SMB server's
// credentials again); its 422 messages are shown at their fields.

import { api, ApiError, q } from "../api.js";
import { clear, h, message } from "../dom.js";
import { setFlash } from "./common.js";
import { Form } from "./form.js";
import { body, formParts, windowLines } from "./connector_form.js";

const SOURCE = { smb: ["server", "username", "domain", "smb_auth", "smb_encryption"],
  sharepoint: ["tenant_id", "client_id", "site_url", "library"] };
// Source fields whose change keeps what the next run lists (who logs on, and how).
const SAME_LISTING = ["username", "domain", "smb_auth", "smb_encryption"];
const SECRETS = ["password", "client_secret", "certificate", "certificate_password"];
const PRESETS = ["5m", "15m", "1h", "6h", "1d"];

export async function editConnectorPage(ctx, id) {
  const c = await api.get(`/connectors/${q(id)}`);
  if (!ctx.alive()) return;
  const form = new Form();
  const v = {};
  const F = (key, label, el, hint) => { v[key] = el; return form.field(key, label, el, hint); };
  const parts = formParts(F, form, c.kind);
  fill(v, c, parts.sync.querySelector("#f-schedule-preset"));
  parts.syncTwoWay();

  const submit = h("button", { type: "submit", class: "primary" }, "Save changes");
  const el = h("form", { class: "connector-form", id: "edit-form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    const patch = changes(c, body(c.kind, v, { editing: true }));
    if (!Object.keys(patch).length) { form.general.append(message("warn", "Nothing changed.")); return; }
    submit.disabled = true;
    try {
      await api.patch(`/connectors/${q(id)}`, patch);
      const resync = SOURCE[c.kind].some((k) => k in patch && !SAME_LISTING.includes(k));
      setFlash("ok", resync ? "Saved. The source changed: the next run lists it in full and "
        + "compares it with what ScaiDrive holds." : "Saved.");
      if (ctx.alive()) ctx.go(`connectors/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      form.showErrors(err);
    } finally {
      submit.disabled = false;
    }
  } }, form.general, parts.source, parts.sync, parts.twoWay, parts.throttles, parts.identity,
  h("div", { class: "actions" }, submit,
    h("a", { href: `#/connectors/${q(id)}`, class: "button" }, "Cancel")));
  clear(ctx.main, h("h1", {}, "Edit ", c.name), el);
}

function fill(v, c, preset) {
  const set = (k, value) => { if (v[k] && value !== null && value !== undefined) v[k].value = value; };
  for (const k of ["name", "sync_mode", "conflict_policy", "max_delete_percent", ...SOURCE[c.kind]]) set(k, c[k]);
  set("admin_emails", (c.admin_emails || []).join(", "));
  set("bandwidth_limit", c.bandwidth_limit);
  set("max_parallel_transfers", c.max_parallel_transfers);
  set("sync_windows.windows", windowLines(c.sync_windows));
  if (c.sync_windows) set("sync_windows.timezone", c.sync_windows.timezone);
  if (c.kind === "sharepoint") set("credential", c.credential);
  if (PRESETS.includes(c.schedule)) preset.value = c.schedule;
  else { preset.value = "cron"; set("schedule", c.schedule); }
  preset.dispatchEvent(new Event("change"));
  const m = c.identity_mapping || {};
  for (const k of ["strategy", "system_owner", "table", "name_threshold", "name_margin"]) set(`identity_mapping.${k}`, m[k]);
  for (const [k, value] of Object.entries(m.ldap || {})) set(`identity_mapping.ldap.${k}`, value);
  for (const k of ["sync_mode", "credential", "identity_mapping.strategy"]) {
    if (v[k]) v[k].dispatchEvent(new Event("change"));
  }
}

const LDAP_KEYS = ["url", "base_dn", "bind_dn", "sid_attribute", "mail_attribute", "name_attribute"];

// An identity mapping as the form edits it, comparable whatever the API added (defaults of
// fields the form hides for the strategy, empty strings for unset ones).
function formShape(m) {
  const o = { strategy: m.strategy || null, system_owner: m.system_owner || "system",
    table: m.table || null };
  if (["email", "name"].includes(m.strategy)) {
    o.ldap = Object.fromEntries(LDAP_KEYS.map((k) => [k, (m.ldap || {})[k] || null]));
  }
  if (m.strategy === "name") {
    o.name_threshold = Number(m.name_threshold);
    o.name_margin = Number(m.name_margin);
  }
  return JSON.stringify(o);
}

// The PATCH body: what differs from the connector; secrets only when typed in.
function changes(c, wanted) {
  const out = {};
  const norm = (x) => (x === "" || x === undefined ? null : x);
  const same = (a, b) => JSON.stringify(norm(a)) === JSON.stringify(norm(b));
  for (const k of ["name", "schedule", "sync_mode", "admin_emails", "conflict_policy",
    "max_delete_percent", "bandwidth_limit", "max_parallel_transfers", ...SOURCE[c.kind]]) {
    if (k in wanted && !same(wanted[k], c[k])) out[k] = wanted[k];
  }
  const sw = wanted.sync_windows;
  const swBefore = c.sync_windows;
  if (sw ? !swBefore || sw.timezone !== swBefore.timezone || sw.windows.join("\n") !== windowLines(swBefore)
    : swBefore) out.sync_windows = sw;
  for (const k of SECRETS) if (wanted[k]) out[k] = wanted[k];
  // The mapping is sent only if what the form shows of it changed (a new mapping relabels
  // every file on the next run): both sides cut to the fields the form edits.
  const mapping = wanted.identity_mapping;
  const typedPassword = mapping && mapping.ldap && mapping.ldap.bind_password;
  if (mapping && (typedPassword || formShape(mapping) !== formShape(c.identity_mapping || {}))) {
    out.identity_mapping = mapping;
  }
  return out;
}
