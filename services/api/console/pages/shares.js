// Shares (Storage → Shares): usage against quota, create, delete (refused while a connector
// targets the share: the API's 409 says which).

import { api, ApiError, q } from "../api.js";
import { clear, fmtBytes, fmtTime, h, message, table } from "../dom.js";
import { Form, input, select } from "./form.js";

const UNITS = [["", "no quota"], ["1048576", "MB"], ["1073741824", "GB"], ["1099511627776", "TB"]];

export async function sharesPage(ctx) {
  const list = h("div", { id: "shares-table" }, "Loading…");
  const status = h("div", { id: "shares-status" });
  const form = new Form();
  const name = input({ placeholder: "lowercase-letters-digits" });
  const amount = input({ type: "number", min: 0, step: "any", id: "f-quota" });
  const unit = select(UNITS, "", { id: "f-quota-unit", "aria-label": "Quota unit" });
  const create = h("form", { class: "inline-form", id: "create-share-form", onsubmit: async (ev) => {
    ev.preventDefault();
    form.clearErrors();
    clear(status);
    const body = { name: name.value.trim() };
    if (unit.value && amount.value !== "") body.quota_bytes = Math.round(Number(amount.value) * Number(unit.value));
    try {
      await api.post("/shares", body);
      name.value = "";
      amount.value = "";
      status.append(message("ok", `Share ${body.name} created.`));
      await load();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) form.showErrors(err);
    }
  } }, form.field("name", "New share name", name), form.field("quota_bytes", "Quota", amount), unit,
  h("button", { type: "submit", class: "primary" }, "Create share"), form.general);

  const remove = (share, cell) => () => {
    const note = h("div", {});
    clear(cell, h("span", {}, `Delete ${share.name} and all its files? `),
      h("button", { class: "danger confirm-delete", onclick: async () => {
        try {
          await api.del(`/shares/${q(share.name)}`);
          status.replaceChildren(message("ok", `Share ${share.name} deleted.`));
          await load();
        } catch (err) {
          clear(note, message("error", err.message));
        }
      } }, "Delete"), h("button", { onclick: load }, "Cancel"), note);
  };
  const load = async () => {
    const shares = await api.get("/shares");
    if (!ctx.alive()) return;
    clear(list, table(["Name", "Fed by", "Usage", "Quota", "Created", ""], shares.map((s) => {
      const cell = h("td", { class: "row-actions" });
      cell.append(h("button", { class: "delete-share", onclick: remove(s, cell) }, "Delete"));
      const pct = s.quota_bytes ? ` (${Math.round((100 * s.usage_bytes) / s.quota_bytes)}%)` : "";
      const feeds = (s.connectors || []).map((c, i) => [i ? ", " : "",
        h("a", { href: `#/connectors/${q(c.id)}` }, c.name)]);
      return h("tr", { dataset: { name: s.name } }, h("td", {}, s.name),
        h("td", { class: "fed-by" }, feeds.length ? feeds : h("span", { class: "empty" }, "no connector")),
        h("td", { class: "num" }, fmtBytes(s.usage_bytes) + pct),
        h("td", { class: "num" }, s.quota_bytes ? fmtBytes(s.quota_bytes) : "none"),
        h("td", {}, s.created_at ? fmtTime(new Date(s.created_at * 1000).toISOString()) : "—"), cell);
    }), "No shares yet."));
  };
  clear(ctx.main, h("h1", {}, "Shares"), section(create), status, list);
  await load();
}

function section(...children) {
  return h("section", { class: "card" }, h("h2", {}, "Create a share"), children);
}
