// /api/v1 over the session cookie. Mutating requests carry the header the API requires
// against cross-site requests; any 401 sends the user back to the login form.

const BASE = "/api/v1";
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

function describe(status, detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return `request failed (HTTP ${status})`;
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (MUTATING.has(method)) headers["X-Requested-With"] = "scaidrive-console";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(BASE + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401 && !quiet401) onUnauthorized();
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) throw new ApiError(resp.status, data && typeof data === "object" ? data.detail : data);
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  patch: (path, body) => request("PATCH", path, body),
  del: (path) => request("DELETE", path),
};

export const q = encodeURIComponent;
