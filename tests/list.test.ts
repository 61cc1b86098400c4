import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { commaList, parseTokenList } from "../lib/list.ts";

describe("commaList", () => {
  it("trims entries, drops empty ones and keeps each once, in first-seen order", () => {
    assert.deepEqual(commaList(" b , a,,b ,c, "), ["b", "a", "c"]);
    assert.deepEqual(commaList(""), []);
    assert.deepEqual(commaList(" , ,"), []);
  });
});

describe("parseTokenList", () => {
  it("reads lines and commas, ignores blanks and comments, drops duplicates", () => {
    assert.deepEqual(parseTokenList("a\n# note\n b , c\r\n\na # again\n"), ["a", "b", "c"]);
  });
});
