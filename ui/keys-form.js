// The gateway-keys card without the DOM: its forms, as typed, turned into the admin API's request bodies and back.
// Every field is a string (an input's value); the server validates what they become, and its errors are shown.

/** The limits a key may have, in the order the forms show them; each is absent or null when unlimited. */
export const LIMITS = ["rpm", "concurrency", "tokensPerDay"];

/** The create form when nothing is typed: a key with no limit and no expiry. */
export const EMPTY_FORM = Object.freeze({ name: "", rpm: "", concurrency: "", tokensPerDay: "", expiresAt: "" });

/**
 * A limit as typed, for the API: a number (-1 and 1.5 too), or the text itself when it is none; the server says what
 * is wrong with it, in the one place the limits are checked.
 */
function limitValue(text) {
  const s = text.trim();
  return Number.isFinite(Number(s)) ? Number(s) : s;
}

/**
 * A `datetime-local` value ("2027-01-31T09:30", the browser's time zone) as an ISO time in UTC; the text itself when
 * it is not a time, so the server names the field.
 */
export function isoFromLocal(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

/** An ISO time as a `datetime-local` value in the browser's time zone, to the minute ("" for none). */
export function localFromIso(iso) {
  const d = new Date(iso ?? NaN);
  if (Number.isNaN(d.getTime())) return "";
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** The body of `POST /admin/keys`: an empty limit or expiry is left out (unlimited, never expires). */
export function createBody(form) {
  const body = { name: form.name.trim() };
  for (const k of LIMITS) if (form[k].trim()) body[k] = limitValue(form[k]);
  if (form.expiresAt.trim()) body.expiresAt = isoFromLocal(form.expiresAt.trim());
  return body;
}

/** The change form of a listed key: its limits and expiry as the fields show them ("" for unlimited, never). */
export function keyForm(key) {
  const form = { expiresAt: localFromIso(key.expiresAt) };
  for (const k of LIMITS) form[k] = key[k] == null ? "" : String(key[k]);
  return form;
}

/**
 * The body of `PATCH /admin/keys/{name}`: only the fields changed from `key` (what another admin changed meanwhile
 * stays), an emptied one as null (unlimited, never expires). `{}` when nothing changed.
 */
export function changeBody(form, key) {
  const was = keyForm(key);
  const body = {};
  for (const k of LIMITS) {
    if (form[k].trim() !== was[k]) body[k] = form[k].trim() ? limitValue(form[k]) : null;
  }
  const at = form.expiresAt.trim();
  if (at !== was.expiresAt) body.expiresAt = at ? isoFromLocal(at) : null;
  return body;
}
