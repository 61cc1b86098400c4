// The runtime's pieces lib/start.ts takes: sockets, fetch, the journal and state stores, token files, stdout, clock, ids.
import { readFileSync } from "node:fs";
import type { RuntimeParts } from "../lib/start.ts";
import { dial, runtimeFetch } from "./dial.ts";
import { openJournal } from "./journal.ts";
import { runtimeName } from "./serve.ts";
import { openState } from "./state.ts";
import { stdoutWriter } from "./stdout.ts";

/**
 * The parts of the runtime this process runs on. `env` locates the default journal directory (runtime/journal.ts).
 * The log goes to stdout without blocking (runtime/stdout.ts); platform entries pass a `writeLog` of their own.
 */
export function runtimeParts(env: Record<string, string | undefined>): RuntimeParts {
  return {
    name: runtimeName(),
    dial,
    fetch: runtimeFetch(),
    openJournal: (config) => openJournal(config, env),
    openState,
    readFile: (path) => readFileSync(path, "utf8"),
    writeLog: stdoutWriter(),
    sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
    now: Date.now,
    id: () => crypto.randomUUID().replaceAll("-", ""),
  };
}

/** A log writer for platforms that collect console output (Deno Deploy, Vercel): console.log per batch. */
export const consoleWriter = (text: string) => console.log(text.slice(0, -1));
