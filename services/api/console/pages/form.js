// A small form toolkit: labelled fields that know their API key, and a 422 handler that
// puts each validation message next to the field its `loc` names.

import { clear, h, message } from "../dom.js";

export class Form {
  constructor() {
    this.fields = new Map(); // API key ("identity_mapping.ldap.url") -> {wrap, error}
    this.general = h("div", { class: "form-errors" });
  }

  // A labelled input; `key` is the body path the API reports errors under.
  field(key, label, input, hint) {
    const id = `f-${key.replace(/[^a-z0-9]+/gi, "-")}`;
    input.id = input.id || id;
    if (!input.name) input.name = key;
    const error = h("div", { class: "field-error", role: "alert" });
    const wrap = h("div", { class: "field", dataset: { field: key } },
      h("label", { for: input.id }, label), input,
      hint ? h("div", { class: "hint" }, hint) : null, error);
    this.fields.set(key, { wrap, error });
    return wrap;
  }

  // Errors for `key` also show at `target` (a group with no input of its own).
  alias(key, target) {
    this.fields.set(key, this.fields.get(target));
  }

  clearErrors() {
    clear(this.general);
    for (const { wrap, error } of this.fields.values()) {
      clear(error);
      wrap.classList.remove("invalid");
    }
  }

  // FastAPI's 422: [{loc: ["body", "smb", "server"], msg}]; the kind tag of the union and list
  // indexes are stripped by trying the longest known prefix of the path.
  showErrors(err) {
    this.clearErrors();
    const detail = Array.isArray(err.detail) ? err.detail : null;
    if (!detail) {
      this.general.append(message("error", err.message));
      return;
    }
    let first = null;
    for (const d of detail) {
      const loc = (d.loc || []).map(String).filter((p) => p !== "body");
      if (["smb", "sharepoint"].includes(loc[0])) loc.shift();
      let target = null;
      for (let n = loc.length; n > 0 && !target; n -= 1) target = this.fields.get(loc.slice(0, n).join("."));
      if (target) {
        target.error.append(h("div", {}, d.msg));
        target.wrap.classList.add("invalid");
        first = first || target.wrap;
      } else {
        this.general.append(message("error", loc.length ? `${loc.join(".")}: ${d.msg}` : d.msg));
      }
    }
    (first || this.general).scrollIntoView({ block: "center" });
  }
}

export function input(attrs = {}) {
  return h("input", { type: "text", ...attrs });
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map(([v, label]) =>
    h("option", { value: v, selected: v === value }, label)));
}

export function show(el, visible) {
  el.hidden = !visible;
}
