// Test support: OpenAI's published OpenAPI document (a copy in tests/fixtures), its schemas as validators of our wire shapes.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Ajv2019 } from "ajv/dist/2019.js";

/** Where the document lives: the copy kept with the fixtures (CI has nothing beside the clone), or OPENAI_OPENAPI. */
const PATH = process.env.OPENAI_OPENAPI ?? new URL("../fixtures/openai-openapi.json.gz", import.meta.url).pathname;

let ajv: Ajv2019 | undefined;

function validator(): Ajv2019 {
  if (ajv) return ajv;
  const doc = JSON.parse(gunzipSync(readFileSync(PATH)).toString("utf8"));
  // Not strict: the document carries x-* keywords, `discriminator` and formats such as `unixtime` that are
  // annotations, not constraints.
  ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: false });
  ajv.addSchema({ $id: "openai", components: doc.components }, "openai");
  return ajv;
}

/** The errors of `value` against the published schema `name` (e.g. "Response"), or null when it conforms. */
export function specErrors(name: string, value: unknown): string | null {
  const v = validator();
  const check = v.getSchema(`openai#/components/schemas/${name}`);
  if (!check) throw new Error(`No schema ${name} in the OpenAI document`);
  if (check(value)) return null;
  return v.errorsText(check.errors, { separator: "\n" });
}

/** Throws unless `value` conforms to the published schema `name`. */
export function assertSpec(name: string, value: unknown): void {
  const errors = specErrors(name, value);
  if (errors) throw new Error(`Not a valid ${name}: ${errors}\n${JSON.stringify(value).slice(0, 2000)}`);
}
