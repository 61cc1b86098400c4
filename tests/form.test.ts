// lib/form.ts: the form encoding, as URLSearchParams serialises it, and its length counted without encoding.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formEncode, formLength, formQuery } from "../lib/form.ts";

describe("formEncode, formQuery, formLength", () => {
  it("give byte for byte (formLength: the length of) what URLSearchParams serialises, for any text (lone surrogates, spaces, !'()~ included)", () => {
    const text = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({
        unit: fc.constantFrom(
          "a",
          " ",
          "!",
          "'",
          "(",
          ")",
          "~",
          "*",
          "-",
          ".",
          "_",
          "+",
          "&",
          "=",
          "%",
          "\ud800",
          "世",
          "😊",
        ),
      }),
    );
    fc.assert(
      fc.property(text, (v) => {
        const encoded = new URLSearchParams({ v }).toString().slice(2);
        assert.equal(formEncode(v), encoded);
        assert.equal(formLength(v), encoded.length);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string({ unit: "binary" })), (fields) => {
        assert.equal(formQuery(fields), new URLSearchParams(fields).toString());
      }),
      { numRuns: 300 },
    );
  });
});
