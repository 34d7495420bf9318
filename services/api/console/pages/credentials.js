// Updating a connector's credentials (the seed: "update the secret on the connector config
// page and syncs resume"). A PATCH re-checks them; it also lifts auth_failed.

import { api, ApiError, q } from "../api.js";
import { clear, h, message } from "../dom.js";
import { Form, input } from "./form.js";

export function credentialsSection(c, onSaved) {
  const form = new Form();
  const status = h("div", {});
  const v = {};
  const F = (key, label, el) => { v[key] = el; return form.field(key, label, el); };
  const fields = c.kind === "smb"
    ? [F("username", "Username", input({ value: c.username || "", autocomplete: "off" })),
      F("password", "New password", input({ type: "password", autocomplete: "new-password" }))]
    : [F("client_secret", "New client secret", input({ type: "password", autocomplete: "new-password" })),
      F("certificate", "…or a new certificate (PEM)", h("textarea", { rows: 4 })),
      F("certificate_password", "Certificate password", input({ type: "password", autocomplete: "new-password" }))];
  const el = h("form", { id: "credentials-form", onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    clear(status);
    const body = {};
    for (const [k, el2] of Object.entries(v)) if (el2.value) body[k] = k === "username" ? el2.value.trim() : el2.value;
    if (body.username === c.username) delete body.username;
    if (!Object.keys(body).length) { status.append(message("error", "Nothing to update.")); return; }
    try {
      const updated = await api.patch(`/connectors/${q(c.id)}`, body);
      for (const el2 of Object.values(v)) if (el2.type === "password" || el2.tagName === "TEXTAREA") el2.value = "";
      status.append(message("ok", "Credentials updated."));
      onSaved(updated);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) form.showErrors(err);
    }
  } }, form.general, fields, h("div", { class: "actions" },
    h("button", { type: "submit" }, "Update credentials")), status);
  return h("section", { class: "card" }, h("h2", {}, "Credentials"),
    c.status.state === "auth_failed"
      ? message("error", "The source refuses the current credentials: syncs are stopped until they are updated.")
      : h("p", { class: "hint" }, "Stored encrypted and never shown. Saving checks them against the source."),
    el);
}
