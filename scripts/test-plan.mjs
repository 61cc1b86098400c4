// What `npm test` runs where, and what it knowingly does not run: the one list scripts/test.mjs checks every run
// against. docs/architecture.md ("The test run") explains the rule.

/**
 * The end-to-end files a deployment run (the binary, the Node bundle, `deno serve deploy.ts`) does not repeat: those
 * whose subject is the same code under every entry, which the Bun and Deno runs cover (the sweep of kept
 * conversations, response chains, native multi-turn, the Responses API, the openai SDK's use, token counting, token
 * expiry, upstream chaos), and the demo, which runs from source by definition (`npm run demo`). What an entry changes
 * stays in every run: start-up and configuration, signals and shutdown (kept conversations deleted, supervisors,
 * PM2), the journal and the file system, the bundling of the state backends (admin, shared pool and journal), the
 * server and its listener (connections, fd-limit, strict, edge, streams, log), the upstream dialer (hostile
 * upstream, proxy), and one chat of every kind (gateway).
 */
export const SOURCE_ONLY_E2E = [
  "sweep.test.ts",
  "previous-response.test.ts",
  "multiturn.test.ts",
  "responses.test.ts",
  "openai-sdk.test.ts",
  "usage.test.ts",
  "expiry.test.ts",
  "chaos.test.ts",
  "demo.test.ts",
];

/**
 * Files that measure time under load: each runs alone, with no other job beside it (at the start for the runs from
 * source, at the end for the deployment runs, so that no slot waits for them).
 */
export const ALONE = ["tests/e2e/fd-limit.test.ts"];

/** Deno KV exists only under Deno: every run but the Deno one leaves these out. */
const KV = "Deno KV exists only under Deno, and these runs' test process is Bun's: the Deno run covers it";
const NO_SIGNALS = "Deno Deploy sends no signals to an isolate (E2E_NO_SIGNALS)";
const PLATFORM = "the platform's server owns the connections under deno serve (E2E_PLATFORM_SERVES)";

/**
 * Tests a run knowingly leaves out, and why. `runs` matches the run's name (bun, deno, node, deploy: binary,
 * deploy: node bundle, deploy: deno serve, deploy: artifacts); `file` the test file; `test` (optional) the test's
 * full name ("describe > ... > it"). Whatever a run does not run and no entry names is a failure of that run: a test
 * never vanishes silently.
 */
export const NOT_RUN = [
  // The most specific entries first: the first that matches gives the reason.
  {
    runs: /^(bun|deploy: binary|deploy: node bundle)$/,
    file: "tests/e2e/journal.test.ts",
    test: /^crash journal in Deno KV, deploy\.ts under deno serve/,
    why: "deploy.ts runs under deno serve only: the Bun run, the binary and the bundle have no deploy.ts",
  },
  {
    runs: /^deploy: (binary|node bundle)$/,
    file: "tests/e2e/shared-journal.test.ts",
    test: /Deno KV/,
    why: "three deno serve instances: the Deno run and the deno serve run cover it",
  },
  {
    runs: /^(bun|deno|deploy: deno serve)$/,
    file: "tests/e2e/supervisors.test.ts",
    test: /^under PM2/,
    why: "PM2 runs the built entries: the deployment runs of the binary and of the Node bundle",
  },
  {
    runs: /^deploy: (binary|node bundle)$/,
    file: "tests/e2e/supervisors.test.ts",
    test: /> (npm start|deno task)/,
    why: "npm start and deno task launch the source: the Bun and Deno runs stop them; a build has no launcher",
  },
  // Under `deno serve`, as on Deno Deploy.
  { runs: /^deploy: deno serve$/, file: "tests/e2e/connections.test.ts", why: PLATFORM },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/fd-limit.test.ts", why: PLATFORM },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/strict.test.ts", test: /^HTTP\/1\.1 strictness/, why: PLATFORM },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/healthcheck.test.ts", test: /exits 0 while/, why: PLATFORM },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/journal.test.ts", test: /^crash journal >/, why: NO_SIGNALS },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/shared-journal.test.ts", why: NO_SIGNALS },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/log.test.ts", why: NO_SIGNALS },
  { runs: /^deploy: deno serve$/, file: "tests/e2e/shutdown.test.ts", why: NO_SIGNALS },
  {
    runs: /^deploy: deno serve$/,
    file: /./,
    test: /process ends|shutdown|SIGHUP|SIGTERM|SIGINT|supervisor|signals?\b/i,
    why: NO_SIGNALS,
  },
  {
    runs: /^deploy: deno serve$/,
    file: "tests/e2e/admin.test.ts",
    test: /ADMIN_KEY and a tokens file/,
    why: "deno serve runs as on Deno Deploy, without --allow-write: the admin API keeps changes in memory there",
  },
  // Deno KV, under every run whose test process is Bun's.
  { runs: /^(bun|deploy: .*)$/, file: "tests/runtime/kv.test.ts", why: KV },
  { runs: /^(bun|deploy: .*)$/, file: "tests/state/kv.test.ts", why: KV },
  { runs: /^(bun|deploy: .*)$/, file: /./, test: /Deno KV|\(kv\)/, why: KV },
  // The built artifacts.
  {
    runs: /^deploy: artifacts$/,
    file: "tests/deploy/artifacts.check.ts",
    test: /qemu/,
    why: "no qemu-aarch64 and arm64 glibc on this machine (the arm64 binary is still built and checked as ELF)",
  },
];

/** The entry of NOT_RUN that explains `test` of `file` not running in `run`, or undefined. */
export function whyNotRun(run, file, test) {
  return NOT_RUN.find((e) =>
    e.runs.test(run) &&
    (typeof e.file === "string" ? e.file === file : e.file.test(file)) &&
    (!e.test || e.test.test(test))
  );
}
