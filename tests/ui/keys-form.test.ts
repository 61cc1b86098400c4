// ui/keys-form.js: the gateway-keys card's forms as the admin API's request bodies, and the times they hold.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

// Imported by URL: for the type checker "../../ui/*" are the text files the server embeds (lib/web/embedded.d.ts).
const forms: any = await import(new URL("../../ui/keys-form.js", import.meta.url).href);

const form = (fields: Record<string, string> = {}) => ({ ...forms.EMPTY_FORM, ...fields });
const key = (fields: Record<string, unknown> = {}) => ({
  name: "alice",
  source: "admin",
  rpm: null,
  concurrency: null,
  tokensPerDay: null,
  expiresAt: null,
  ...fields,
});
// A local time of the browser (the test's time zone), as the datetime-local field holds it.
const LOCAL = "2027-01-31T09:30";
const LOCAL_ISO = new Date(2027, 0, 31, 9, 30).toISOString();

describe("createBody", () => {
  it("leaves out an empty limit or expiry: unlimited, never expires", () => {
    assert.deepEqual(forms.createBody(form({ name: " alice " })), { name: "alice" });
    assert.deepEqual(forms.createBody(form({ name: "a", rpm: "  ", expiresAt: "" })), { name: "a" });
  });

  it("sends the limits as numbers, 0 included, and the expiry as an ISO time in UTC", () => {
    assert.deepEqual(
      forms.createBody(form({ name: "a", rpm: "5", concurrency: "0", tokensPerDay: " 2000 ", expiresAt: LOCAL })),
      { name: "a", rpm: 5, concurrency: 0, tokensPerDay: 2000, expiresAt: LOCAL_ISO },
    );
  });

  it("sends a bad limit or time as it is, for the server to say what is wrong", () => {
    assert.deepEqual(
      forms.createBody(form({ name: "a", rpm: "1.5", concurrency: "-1", tokensPerDay: "many", expiresAt: "soon" })),
      { name: "a", rpm: 1.5, concurrency: -1, tokensPerDay: "many", expiresAt: "soon" },
    );
  });
});

describe("keyForm", () => {
  it("shows a key's limits as text and an unlimited one as empty", () => {
    assert.deepEqual(forms.keyForm(key({ rpm: 5, concurrency: 0 })), {
      rpm: "5",
      concurrency: "0",
      tokensPerDay: "",
      expiresAt: "",
    });
  });

  it("shows the expiry in the browser's time zone, to the minute", () => {
    assert.equal(forms.keyForm(key({ expiresAt: LOCAL_ISO })).expiresAt, LOCAL);
  });
});

describe("changeBody", () => {
  it("is empty when nothing changed, the expiry's seconds included", () => {
    const k = key({ rpm: 5, expiresAt: new Date(2027, 0, 31, 9, 30, 42).toISOString() });
    assert.deepEqual(forms.changeBody(forms.keyForm(k), k), {});
  });

  it("sends only the changed fields; an emptied limit or expiry as null", () => {
    const k = key({ rpm: 5, concurrency: 2, tokensPerDay: 100, expiresAt: LOCAL_ISO });
    const f = { ...forms.keyForm(k), rpm: "20", tokensPerDay: "", expiresAt: "" };
    assert.deepEqual(forms.changeBody(f, k), { rpm: 20, tokensPerDay: null, expiresAt: null });
  });

  it("sets a limit or an expiry a key did not have", () => {
    const k = key();
    assert.deepEqual(forms.changeBody({ ...forms.keyForm(k), concurrency: "0", expiresAt: LOCAL }, k), {
      concurrency: 0,
      expiresAt: LOCAL_ISO,
    });
  });
});

describe("localFromIso", () => {
  it("is empty for no time or a broken one", () => {
    assert.equal(forms.localFromIso(null), "");
    assert.equal(forms.localFromIso("not a time"), "");
  });
});
