// New connector: the seed's SMB and SharePoint forms, with an inline "create share" and the
// two-way fields. The API validates; its 422 messages are shown at the fields they name.

import { api, ApiError } from "../api.js";
import { clear, h, message } from "../dom.js";
import { Form, input, select, show } from "./form.js";

const SCHEDULES = [["5m", "Every 5 minutes"], ["15m", "Every 15 minutes"], ["1h", "Hourly"],
  ["6h", "Every 6 hours"], ["1d", "Daily"], ["cron", "Custom (cron expression)"]];
const POLICIES = [["manual", "Manual review (admin picks the winner)"], ["newer", "Newer wins"],
  ["source_wins", "Source wins"], ["scaidrive_wins", "ScaiDrive wins"]];
const STRATEGIES = [["system_owner", "Everything to the system owner"],
  ["table", "Explicit mapping table"], ["email", "By email (directory lookup)"],
  ["name", "By name (fuzzy, directory lookup)"]];

export async function newConnectorPage(ctx, kind) {
  const shares = await api.get("/shares");
  if (!ctx.alive()) return;
  const form = new Form();
  const v = {}; // inputs by API key
  const F = (key, label, el, hint) => { v[key] = el; return form.field(key, label, el, hint); };

  const { source, sync, twoWay, throttles, identity } = formParts(F, form, kind);
  const target = targetFields(F, form, shares);

  const submit = h("button", { type: "submit", class: "primary" }, "Create connector");
  const results = h("ul", { class: "checks", id: "test-results", "aria-live": "polite" });
  const test = h("button", { type: "button", id: "test-connection", onclick: async () => {
    form.clearErrors();
    clear(results, h("li", {}, "Testing…"));
    test.disabled = true;
    try {
      const out = await api.post("/connectors/test", body(kind, v));
      clear(results, ...out.checks.map((c) => h("li", { class: c.ok ? "ok" : "failed",
        title: c.detail || "" }, `${c.ok ? "✓" : "✗"} ${c.message}`)));
    } catch (err) {
      clear(results);
      if (err instanceof ApiError && err.status === 401) return;
      form.showErrors(err);
    } finally {
      test.disabled = false;
    }
  } }, "Test connection");
  const el = h("form", { class: "connector-form", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    submit.disabled = true;
    try {
      const created = await api.post("/connectors", body(kind, v));
      if (ctx.alive()) ctx.go(`connectors/${encodeURIComponent(created.id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      form.showErrors(err);
    } finally {
      submit.disabled = false;
    }
  } }, form.general, source, target, sync, twoWay, throttles, identity,
  h("div", { class: "actions" }, submit, test,
    h("a", { href: "#/connectors", class: "button" }, "Cancel")), results);

  const tab = (k, label) => h("a", { href: `#/connectors/new/${k}`, class: k === kind ? "active" : "" }, label);
  clear(ctx.main, h("h1", {}, kind === "smb" ? "New SMB connector" : "New SharePoint connector"),
    h("nav", { class: "tabs" }, tab("smb", "SMB"), tab("sharepoint", "SharePoint")), el);
}

// The fieldsets both the create and the edit page show (the target is the create page's own).
export function formParts(F, form, kind) {
  const source = kind === "smb" ? smbFields(F) : sharePointFields(F);
  const sync = syncFields(F, form);
  const identity = identityFields(F, form, kind);
  const twoWay = h("fieldset", { id: "two-way-fields" }, h("legend", {}, "Two-way"),
    F("admin_emails", "Admin emails", h("textarea", { rows: 2 }),
      "Who is emailed about conflicts: one address per line or comma-separated."),
    F("conflict_policy", "Conflict policy", select(POLICIES, "manual")),
    F("max_delete_percent", "Max delete percent", input({ type: "number", min: 0, max: 100, value: "50" }),
      "A run that would delete more than this share of either side's files holds the deletions for approval."));
  const mode = sync.querySelector("select[name='sync_mode']");
  const syncTwoWay = () => show(twoWay, mode.value === "two_way");
  mode.addEventListener("change", syncTwoWay);
  syncTwoWay();
  return { source, sync, twoWay, throttles: throttleFields(F, form), identity, syncTwoWay };
}

// Bandwidth, files in flight and sync windows: each holds across every transfer worker.
function throttleFields(F, form) {
  const group = h("fieldset", { id: "throttle-fields" }, h("legend", {}, "Throttles"),
    F("bandwidth_limit", "Bandwidth limit", input({ placeholder: "e.g. 20M, 512k or 08:00,2M 18:00,off" }),
      "Bytes per second this connector may move, across all workers (k, M, G); a timetable "
      + "changes it by the time of day. Empty or off: no limit."),
    F("max_parallel_transfers", "Max parallel transfers", input({ type: "number", min: 1, max: 1000 }),
      "At most this many of its files in flight at once. Empty: no limit."),
    F("sync_windows.windows", "Sync windows", h("textarea", { rows: 3, placeholder: "mon-fri 19:00-07:00\nweekend 00:00-24:00" }),
      "One window per line: the days and hours when runs may start and files move (a window "
      + "may cross midnight). Outside them, runs wait. Empty: any time."),
    F("sync_windows.timezone", "Time zone of the windows", input({ value: "UTC", placeholder: "Europe/Berlin" }),
      "Also the time zone of a bandwidth timetable."));
  form.alias("sync_windows", "sync_windows.windows");
  return group;
}

// A connector's windows as the form's lines ("mon,tue 19:00-07:00").
export function windowLines(sw) {
  return sw ? sw.windows.map((w) => `${w.days.join(",")} ${w.start}-${w.end}`).join("\n") : "";
}

function smbFields(F) {
  return h("fieldset", {}, h("legend", {}, "SMB source"),
    F("name", "Name", input()),
    F("server", "Server", input({ placeholder: "\\\\fileserver.example.com\\share or smb://fileserver/share/path" })),
    F("username", "Username", input({ autocomplete: "off" }), "Service account that can read (and write, if two-way)."),
    F("password", "Password", input({ type: "password", autocomplete: "new-password" })),
    F("domain", "Domain", input(), "Active Directory domain, if applicable."),
    F("smb_auth", "Logon", select([["ntlm", "NTLM"], ["kerberos", "Kerberos"]], "ntlm"),
      "Kerberos where the domain restricts NTLM: give the Domain as its DNS name (corp.example.com)."),
    F("smb_encryption", "Encryption", select([["auto", "Whenever the server offers it"],
      ["required", "Required: refuse a server without it"], ["off", "Not asked for"]], "auto"),
      "Messages are always signed."));
}

function sharePointFields(F) {
  const secret = F("client_secret", "Client secret", input({ type: "password", autocomplete: "new-password" }));
  const pem = h("textarea", { rows: 6, placeholder: "-----BEGIN PRIVATE KEY----- … -----BEGIN CERTIFICATE----- …" });
  const file = h("input", { type: "file", accept: ".pem,.crt,.key,.txt", onchange: async () => {
    if (file.files[0]) pem.value = await file.files[0].text();
  } });
  const cert = h("div", {}, F("certificate", "Certificate (PEM: private key and certificate)", pem),
    h("div", { class: "field" }, h("label", {}, "…or load it from a file"), file),
    F("certificate_password", "Certificate password", input({ type: "password", autocomplete: "new-password" })));
  const kind = select([["client_secret", "Client secret"], ["certificate", "Certificate"]], "client_secret");
  const toggle = () => { show(secret, kind.value === "client_secret"); show(cert, kind.value === "certificate"); };
  kind.addEventListener("change", toggle);
  toggle();
  return h("fieldset", {}, h("legend", {}, "SharePoint source"),
    F("name", "Name", input()),
    F("tenant_id", "Tenant ID", input({ placeholder: "00000000-0000-0000-0000-000000000000" })),
    F("client_id", "Application (client) ID", input({ placeholder: "the Entra ID application's GUID" })),
    F("credential", "Credential", kind), secret, cert,
    F("site_url", "Site URL", input({ placeholder: "https://contoso.sharepoint.com/sites/team" })),
    F("library", "Library", input({ value: "Documents" })));
}

function targetFields(F, form, shares) {
  const share = select([["", "— choose a share —"], ...shares.map((s) => [s.name, s.name])], "");
  const newName = input({ id: "new-share-name", placeholder: "new-share-name" });
  const status = h("div", { class: "inline-status" });
  const create = h("button", { type: "button", id: "create-share", onclick: async () => {
    clear(status);
    try {
      const made = await api.post("/shares", { name: newName.value.trim() });
      share.append(h("option", { value: made.name }, made.name));
      share.value = made.name;
      newName.value = "";
      status.append(message("ok", `Share ${made.name} created.`));
    } catch (err) {
      status.append(message("error", err.message));
    }
  } }, "Create share");
  return h("fieldset", {}, h("legend", {}, "Target"),
    F("target_share", "Target share", share),
    h("div", { class: "field inline" }, h("label", { for: "new-share-name" }, "…or create a share"),
      newName, create, status),
    F("target_prefix", "Folder in the share (optional)", input()));
}

function syncFields(F, form) {
  const mode = select([["one_way", "One-way (source → ScaiDrive)"], ["two_way", "Two-way"]], "one_way");
  const preset = select(SCHEDULES, "15m", { id: "f-schedule-preset" });
  const cron = input({ id: "f-schedule", placeholder: "*/30 * * * *" });
  const wrap = F("schedule", "Cron expression", cron);
  const toggle = () => show(wrap, preset.value === "cron");
  preset.addEventListener("change", toggle);
  toggle();
  return h("fieldset", {}, h("legend", {}, "Sync"),
    F("sync_mode", "Sync mode", mode),
    h("div", { class: "field" }, h("label", { for: "f-schedule-preset" }, "Schedule"), preset), wrap);
}

function identityFields(F, form, kind) {
  const strategy = select(kind === "smb" ? STRATEGIES : [["system_owner", "By the mail claim (default)"]], "system_owner");
  const ldap = h("fieldset", { id: "ldap-fields" }, h("legend", {}, "Directory (LDAP)"),
    F("identity_mapping.ldap.url", "LDAP URL", input({ placeholder: "ldaps://dc.example.com" })),
    F("identity_mapping.ldap.base_dn", "Base DN", input({ placeholder: "dc=example,dc=com" })),
    F("identity_mapping.ldap.bind_dn", "Bind DN", input()),
    F("identity_mapping.ldap.bind_password", "Bind password", input({ type: "password", autocomplete: "new-password" })),
    F("identity_mapping.ldap.sid_attribute", "SID attribute", input({ value: "sambaSID" }), "objectSid for Active Directory."),
    F("identity_mapping.ldap.mail_attribute", "Mail attribute", input({ value: "mail" })),
    F("identity_mapping.ldap.name_attribute", "Name attribute", input({ value: "displayName" })));
  const byName = h("div", {},
    F("identity_mapping.name_threshold", "Name match threshold", input({ type: "number", value: "85", min: 50, max: 100 })),
    F("identity_mapping.name_margin", "Name match margin", input({ type: "number", value: "5", min: 0, max: 50 })));
  const toggle = () => {
    show(ldap, ["email", "name"].includes(strategy.value));
    show(byName, strategy.value === "name");
  };
  strategy.addEventListener("change", toggle);
  toggle();
  const group = h("fieldset", {}, h("legend", {}, "Identity mapping"),
    F("identity_mapping.strategy", "Strategy", strategy),
    F("identity_mapping.system_owner", "System owner", input({ value: "system" }),
      "Owner of files whose principal cannot be mapped."),
    F("identity_mapping.table", "Mapping table", h("textarea", { rows: 4, placeholder: "S-1-5-21-…-1104,alice" }),
      kind === "smb" ? "CSV lines smb-sid,scaidrive-user-id; checked first." : "CSV lines principal,scaidrive-user-id; wins over the mail claim."),
    ldap, byName);
  form.alias("identity_mapping", "identity_mapping.strategy");
  form.alias("identity_mapping.ldap", "identity_mapping.ldap.url");
  return group;
}

// The POST body from the inputs: optional fields left empty are left out (API defaults apply).
// `editing`: no target fields (a connector keeps its share), and no kind.
export function body(kind, v, { editing = false } = {}) {
  const val = (k) => (v[k] ? v[k].value.trim() : "");
  const out = editing ? { name: val("name"), sync_mode: val("sync_mode") }
    : { kind, name: val("name"), target_share: val("target_share"),
      target_prefix: val("target_prefix"), sync_mode: val("sync_mode") };
  const preset = document.getElementById("f-schedule-preset").value;
  out.schedule = preset === "cron" ? val("schedule") : preset;
  if (kind === "smb") {
    Object.assign(out, { server: val("server"), username: val("username"),
      password: v.password.value, domain: val("domain"), smb_auth: val("smb_auth"),
      smb_encryption: val("smb_encryption") });
  } else {
    Object.assign(out, { tenant_id: val("tenant_id"), client_id: val("client_id"),
      site_url: val("site_url"), library: val("library") });
    if (val("credential") === "certificate") {
      out.certificate = v.certificate.value;
      if (v.certificate_password.value) out.certificate_password = v.certificate_password.value;
    } else {
      out.client_secret = v.client_secret.value;
    }
  }
  const mapping = { strategy: val("identity_mapping.strategy"),
    system_owner: val("identity_mapping.system_owner") || "system" };
  if (val("identity_mapping.table")) mapping.table = v["identity_mapping.table"].value;
  if (["email", "name"].includes(mapping.strategy)) {
    mapping.ldap = {};
    for (const k of ["url", "base_dn", "bind_dn", "sid_attribute", "mail_attribute", "name_attribute"]) {
      mapping.ldap[k] = val(`identity_mapping.ldap.${k}`);
    }
    const pw = v["identity_mapping.ldap.bind_password"].value;
    if (pw) mapping.ldap.bind_password = pw;
  }
  if (mapping.strategy === "name") {
    mapping.name_threshold = Number(val("identity_mapping.name_threshold"));
    mapping.name_margin = Number(val("identity_mapping.name_margin"));
  }
  out.identity_mapping = mapping;
  out.bandwidth_limit = val("bandwidth_limit") || null;
  out.max_parallel_transfers = val("max_parallel_transfers") ? Number(val("max_parallel_transfers")) : null;
  const windows = val("sync_windows.windows").split("\n").map((l) => l.trim()).filter(Boolean);
  out.sync_windows = windows.length
    ? { timezone: val("sync_windows.timezone") || "UTC", windows } : null;
  if (out.sync_mode === "two_way") {
    out.admin_emails = val("admin_emails").split(/[\s,;]+/).filter(Boolean);
    out.conflict_policy = val("conflict_policy");
    out.max_delete_percent = Number(val("max_delete_percent"));
  }
  return out;
}
