// docs/architecture.md against the tree: every lib/, runtime/ and sim/ file and folder it names exists, and every
// one that exists is named. Type declarations (*.d.ts) count like any other file: the map names them too.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const root = new URL("../../", import.meta.url).pathname;

/** The folders the map must cover completely. */
const MAPPED = ["lib", "runtime", "sim"];

/**
 * The paths under the mapped folders that a markdown page names: in backticks anywhere (`lib/http/app.ts`), or as
 * a whole heading (`### lib/http/`). Folders end with "/".
 */
export function namedPaths(markdown: string, roots = MAPPED): Set<string> {
  const path = `(?:${roots.join("|")})\\/[\\w.\\/-]*`;
  const names = new Set<string>();
  for (const m of markdown.matchAll(new RegExp("`(" + path + ")`", "g"))) names.add(m[1]!);
  for (const m of markdown.matchAll(new RegExp("^#{1,6} (" + path + ")\\s*$", "gm"))) names.add(m[1]!);
  return names;
}

/** Every file and folder below the mapped folders of `dir` (not the mapped folders themselves); hidden ones skipped. */
export function existingPaths(dir: string, roots = MAPPED): Set<string> {
  const found = new Set<string>();
  const walk = (rel: string) => {
    let entries: string[];
    try {
      entries = readdirSync(join(dir, rel));
    } catch {
      return; // a mapped folder that does not exist holds nothing to name
    }
    for (const name of entries) {
      if (name.startsWith(".")) continue;
      const child = `${rel}/${name}`;
      if (statSync(join(dir, child)).isDirectory()) {
        found.add(`${child}/`);
        walk(child);
      } else found.add(child);
    }
  };
  for (const r of roots) walk(r);
  return found;
}

/** What a page names that does not exist (stale), and what exists that it does not name (missing), both sorted. */
export function compareMap(dir: string, markdown: string, roots = MAPPED): { stale: string[]; missing: string[] } {
  const named = namedPaths(markdown, roots);
  const existing = existingPaths(dir, roots);
  const isThere = (p: string) => {
    try {
      return statSync(join(dir, p)).isDirectory() === p.endsWith("/");
    } catch {
      return false;
    }
  };
  return {
    stale: [...named].filter((p) => !isThere(p)).sort(),
    missing: [...existing].filter((p) => !named.has(p)).sort(),
  };
}

describe("compareMap", () => {
  it("finds named paths that do not exist and existing paths that are not named", () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-map-"));
    try {
      const files = ["lib/a.ts", "lib/x/b.ts", "lib/x/c.d.ts", "lib/.hidden", "runtime/r.ts", "sim/s.ts", "ui/u.js"];
      for (const f of files) {
        mkdirSync(join(dir, dirname(f)), { recursive: true });
        writeFileSync(join(dir, f), "");
      }
      const page = [
        "# Map",
        "`lib/a.ts` and `lib/gone.ts`; `ui/u.js` is outside the mapped folders.",
        "### lib/x/",
        "| `lib/x/b.ts` | a file |",
        "`lib/a.ts/` names a file as a folder; lib/x/c.d.ts without backticks is not a name.",
        "`sim/s.ts`",
      ].join("\n");
      assert.deepEqual(compareMap(dir, page), {
        stale: ["lib/a.ts/", "lib/gone.ts"],
        missing: ["lib/x/c.d.ts", "runtime/r.ts"],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts a mapped folder that does not exist as empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-map-"));
    try {
      assert.deepEqual(compareMap(dir, "`sim/simulator.ts`"), { stale: ["sim/simulator.ts"], missing: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("docs/architecture.md", () => {
  it("names every file and folder under lib/, runtime/ and sim/, and only ones that exist", () => {
    const { stale, missing } = compareMap(root, readFileSync(join(root, "docs/architecture.md"), "utf8"));
    assert.deepEqual(stale, [], `docs/architecture.md names paths that do not exist: ${stale.join(", ")}`);
    assert.deepEqual(missing, [], `docs/architecture.md does not name: ${missing.join(", ")}`);
  });
});

/** The layer tree of a page's "## Layers" block: each path with the column it stands at (deeper is lower). */
export function layerTree(markdown: string): { path: string; column: number }[] {
  const block = /## Layers\s+```\n([\s\S]*?)```/.exec(markdown)?.[1] ?? "";
  const out: { path: string; column: number }[] = [];
  for (const line of block.split("\n")) {
    const m = /^([\s└├─│]*)([\w./]+(?:, [\w./]+)*)/.exec(line);
    if (!m) continue;
    for (const path of m[2]!.split(", ")) out.push({ path, column: m[1]!.length });
  }
  return out;
}

/** The relative imports and re-exports of a TypeScript file's text, as paths from the repository's root. */
function importsOf(file: string, text: string): string[] {
  return [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"(\.{1,2}\/[^"]+)"/gm)].map((m) =>
    join(dirname(file), m[1]!)
  );
}

/**
 * The imports that break the tree: one climbing to a layer above its file's, or crossing to a sibling at the same
 * depth. The entries may import anything; `runtime/` anything of `lib/`.
 */
export function layerViolations(
  tree: { path: string; column: number }[],
  files: string[],
  read = (file: string) => readFileSync(join(root, file), "utf8"),
): string[] {
  const groupOf = (file: string) =>
    tree.filter((n) => (n.path.endsWith("/") ? file.startsWith(n.path) : file === n.path))
      .sort((a, b) => b.path.length - a.path.length)[0];
  const entries = new Set(tree.filter((n) => n.column === tree[0]!.column).slice(0, 3).map((n) => n.path));
  const out: string[] = [];
  for (const file of files) {
    const from = groupOf(file);
    if (!from || entries.has(from.path)) continue;
    for (const target of importsOf(file, read(file))) {
      const to = groupOf(target);
      if (!to || to === from) continue;
      if (from.path === "runtime/" && target.startsWith("lib/")) continue;
      if (to.column < from.column) out.push(`${file} climbs to ${target}`);
      else if (to.column === from.column) out.push(`${file} crosses to its sibling ${target}`);
    }
  }
  return out.sort();
}

describe("the layers of docs/architecture.md", () => {
  const markdown = readFileSync(join(root, "docs/architecture.md"), "utf8");
  const tree = layerTree(markdown);

  it("its tree names the entries, runtime/, lib/'s folders and leaves, and sim/", () => {
    const paths = tree.map((n) => n.path);
    for (const p of ["server.ts", "runtime/", "lib/start.ts", "lib/http/", "lib/chat/", "lib/errors.ts", "sim/"]) {
      assert.ok(paths.includes(p), p);
    }
    const column = (p: string) => tree.find((n) => n.path === p)!.column;
    assert.ok(column("lib/chat/") > column("lib/http/") && column("lib/errors.ts") > column("lib/state/"));
  });

  it("no file of lib/, runtime/ or the entries imports from a layer above its own or from a sibling", () => {
    const files = [...existingPaths(root, ["lib", "runtime"])].filter((f) => f.endsWith(".ts"))
      .concat(["server.ts", "deploy.ts", "api/index.ts"]);
    assert.deepEqual(layerViolations(tree, files), []);
  });

  it("would catch a climb and a sibling import", () => {
    const fake = [
      "## Layers\n\n```",
      "server.ts, deploy.ts, api/index.ts   entries",
      "  └─ lib/http/                      edge",
      "       ├─ lib/openai/               translation",
      "       └─ lib/upstream/             client",
      "            └─ lib/errors.ts        leaf",
      "```",
    ].join("\n");
    const t = layerTree(fake);
    assert.deepEqual(t.map((n) => [n.path, n.column]), [
      ["server.ts", 0],
      ["deploy.ts", 0],
      ["api/index.ts", 0],
      ["lib/http/", 5],
      ["lib/openai/", 10],
      ["lib/upstream/", 10],
      ["lib/errors.ts", 15],
    ]);
    const sources: Record<string, string> = {
      "server.ts": 'import { x } from "./lib/upstream/a.ts";',
      "lib/http/app.ts": 'import { x } from "../upstream/a.ts";\nimport { e } from "../errors.ts";',
      "lib/upstream/a.ts": 'import { h } from "../http/app.ts";\nexport { p } from "../openai/p.ts";',
      "lib/errors.ts": 'import type { T } from "./upstream/a.ts";',
    };
    assert.deepEqual(layerViolations(t, Object.keys(sources), (f) => sources[f]!), [
      "lib/errors.ts climbs to lib/upstream/a.ts",
      "lib/upstream/a.ts climbs to lib/http/app.ts",
      "lib/upstream/a.ts crosses to its sibling lib/openai/p.ts",
    ]);
  });
});
