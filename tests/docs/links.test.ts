// README.md and docs/*.md lead somewhere: every relative link reaches a file (and its anchor), every repository
// file named in backticks exists, and every `npm run` / `deno task` names a script or task that exists.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const root = new URL("../../", import.meta.url).pathname;
const docs = readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md"));
const pages = ["README.md", ...docs.map((f) => `docs/${f}`)];
const text = (page: string) => readFileSync(join(root, page), "utf8");

/** The page without its fenced code blocks, where nothing is a link or a heading. */
export function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "").replace(/\s/g, "-");
}

/** The anchors a page offers: its headings' slugs (repeats numbered as GitHub does) and explicit `<a id>`s. */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(markdown).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  for (const m of markdown.matchAll(/<a (?:id|name)="([^"]+)"/g)) out.add(m[1]!);
  return out;
}

/** Relative link targets of a page, as written (`docs/deploy.md#render`, `#token-pool`, `playground.png`). */
export function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** Where a link from `page` leads: a repository path and an anchor (empty for none); null when it leaves the repo. */
export function resolveLink(page: string, target: string): { file: string; anchor: string } | null {
  const [path = "", anchor = ""] = target.split("#", 2);
  const file = path ? normalize(join(dirname(page), decodeURIComponent(path))) : page;
  return file.startsWith("..") ? null : { file, anchor };
}

/** Folders at the top of the repository whose files the pages name by path. */
const REPO_DIRS = ["lib", "runtime", "sim", "ui", "tests", "scripts", "bench", "docs", "api", ".ci", ".github"];

/** Repository paths named in backticks: under a known top-level folder, or a top-level file with an extension. */
export function repoPaths(markdown: string): string[] {
  const out: string[] = [];
  for (const m of markdown.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1]!;
    if (/[*$~<>{}]/.test(p) || p.startsWith("/")) continue;
    const top = p.split("/")[0]!;
    const topFile = /^[\w-]+\.(?:ts|mjs|json|ya?ml|md)$|^Dockerfile$|^\.dockerignore$/;
    if (p.includes("/") ? REPO_DIRS.includes(top) : topFile.test(p)) out.push(p);
  }
  return out;
}

describe("the markdown helpers", () => {
  it("slug makes GitHub's anchors", () => {
    assert.equal(slug("Single binary (linux-x64 and linux-arm64)"), "single-binary-linux-x64-and-linux-arm64");
    assert.equal(slug("Size, start-up and memory"), "size-start-up-and-memory");
    assert.equal(slug("`stop` and `max_tokens`"), "stop-and-max_tokens");
  });
  it("anchors skips code blocks and numbers repeated headings", () => {
    const page = '# A\n## A\n```ini\n# not a heading\n```\n<a id="x"></a>\n';
    assert.deepEqual([...anchors(page)].sort(), ["a", "a-1", "x"]);
  });
  it("links keeps relative targets outside code, and resolveLink reads them from the page's folder", () => {
    const page = "[a](deploy.md#render) ![i](playground.png) [w](https://x.test) [s](#top)\n```\n[c](nope.md)\n```\n";
    assert.deepEqual(links(page), ["deploy.md#render", "playground.png", "#top"]);
    const readme = { file: "README.md", anchor: "configuration" };
    assert.deepEqual(resolveLink("docs/x.md", "../README.md#configuration"), readme);
    assert.deepEqual(resolveLink("docs/x.md", "#top"), { file: "docs/x.md", anchor: "top" });
    assert.equal(resolveLink("docs/x.md", "../../elsewhere.md"), null);
  });
  it("repoPaths takes repository paths and leaves commands, globs and outside paths", () => {
    const page = "`lib/config.ts` `server.ts` `Dockerfile` `npm start` `tests/http/*.test.ts` `~/.local/state` " +
      "`/etc/x.ts` `x: 1`";
    assert.deepEqual(repoPaths(page), ["lib/config.ts", "server.ts", "Dockerfile"]);
  });
});

describe("README.md and docs/*.md", () => {
  const scripts: Record<string, string> = JSON.parse(text("package.json")).scripts;
  const tasks: Record<string, unknown> = JSON.parse(text("deno.json")).tasks;

  for (const page of pages) {
    it(`${page}: every relative link reaches a file, and its anchor`, () => {
      for (const target of links(text(page))) {
        const to = resolveLink(page, target);
        assert.ok(to, `${page} links ${target}, outside the repository`);
        assert.ok(existsSync(join(root, to.file)), `${page} links ${target}: ${to.file} does not exist`);
        if (to.anchor) {
          assert.ok(to.file.endsWith(".md"), `${page} links ${target}: an anchor in a file that is not markdown`);
          assert.ok(anchors(text(to.file)).has(to.anchor), `${page} links ${target}: ${to.file} has no #${to.anchor}`);
        }
      }
    });

    it(`${page}: every repository file it names exists`, () => {
      const missing = repoPaths(text(page)).filter((p) => !existsSync(join(root, p)));
      assert.deepEqual(missing, [], `${page} names files that do not exist`);
    });

    it(`${page}: every npm script and deno task it names exists`, () => {
      const page_ = text(page);
      for (const m of page_.matchAll(/\bnpm (?:run ([\w:-]+)|(start|test)\b)/g)) {
        const name = m[1] ?? m[2]!;
        assert.ok(scripts[name], `${page} says npm ${m[1] ? "run " : ""}${name}: package.json has no such script`);
      }
      for (const m of page_.matchAll(/\bdeno task (\w+)/g)) assert.ok(tasks[m[1]!], `${page} says deno task ${m[1]}`);
    });
  }
});
