// Test support: the real server as a child process, under the runtime running the tests.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { runtimeName } from "../../runtime/serve.ts";
import { eventually, type RunningSim, startSim } from "./sim.ts";

/** False where the way of running has no process signals (Deno Deploy's `deno serve`). */
export const signalsApply = process.env.E2E_NO_SIGNALS !== "1";
/** False where the platform's server, not lib/http/server.ts, owns the connections (`deno serve`, as on Deno Deploy). */
export const ownServer = process.env.E2E_PLATFORM_SERVES !== "1";
/** False where the server may write no file (`deno serve` without --allow-write, as on Deno Deploy). */
export const writesFiles = process.env.E2E_PLATFORM_SERVES !== "1";

export interface RunningServer {
  url: string;
  /** The server's process id (for memory readings). */
  pid: number;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** Stops reading the process's stdout (a paused terminal, a stuck log shipper): its pipe fills up. */
  pauseOutput(): void;
  /** Reads its stdout again. */
  resumeOutput(): void;
  /** Sends a signal without waiting. */
  signal(signal: NodeJS.Signals): void;
  /** Throws if the output so far holds a test token, gateway key or message text. */
  assertPrivate(): void;
  /** Ends the process and every descendant (for launchers such as `deno task` that run the server as a grandchild). */
  killTree(): Promise<number | null>;
  /** Sends a signal and waits for the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const root = new URL("../../", import.meta.url).pathname;

let stateHome: string | undefined;
/**
 * One XDG_STATE_HOME for the servers of this test process, removed when it exits: servers holding tokens keep
 * their crash journal there (runtime/journal.ts), not in the home directory of whoever runs the tests.
 */
function testStateHome(): string {
  if (!stateHome) {
    const dir = mkdtempSync(join(tmpdir(), "emohaa-state-"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    stateHome = dir;
  }
  return stateHome;
}

/** The command that runs `server.ts` on this runtime (`bun run` or `deno run`), or a given command. */
export function serverCommand(): string[] {
  if (process.env.E2E_COMMAND) return process.env.E2E_COMMAND.split(" ");
  return runtimeName() === "deno"
    ? [
      process.execPath,
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-sys",
      "server.ts",
    ]
    : [process.execPath, "run", "server.ts"];
}

/**
 * Starts the server with `env` on a free port and waits for its "listening" line. It runs in the repository,
 * or in `cwd` (default `E2E_CWD`): the deployment tests run a fresh copy, or a binary alone in an empty directory.
 */
export async function startServer(
  env: Record<string, string>,
  command = serverCommand(),
  cwd = process.env.E2E_CWD || root,
): Promise<RunningServer> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    // The most verbose level by default: every run is also a privacy check (see assertPrivate). Conversations are
    // deleted after each reply unless a test keeps them (CONTINUE_CONVERSATIONS): most tests count deletions.
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "debug",
      XDG_STATE_HOME: testStateHome(),
      CONTINUE_CONVERSATIONS: "false",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Server did not start in 20 s:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+?)[\s(]/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace("localhost", "127.0.0.1"));
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`Server exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    url,
    pid: child.pid!,
    output: () => out,
    pauseOutput: () => void child.stdout!.pause(),
    resumeOutput: () => void child.stdout!.resume(),
    // process.kill, not child.kill: Deno's child.kill ignores every call after the first.
    signal: (signal) => void process.kill(child.pid!, signal),
    assertPrivate: () => assertPrivate(out),
    killTree: async () => {
      for (const pid of processTree(child.pid!).slice(1).reverse()) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
      if (child.exitCode === null) process.kill(child.pid!, "SIGTERM");
      const code = await exited;
      assertPrivate(out);
      return code;
    },
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode === null) process.kill(child.pid!, signal);
      const code = await exited;
      assertPrivate(out);
      return code;
    },
  };
}

/** A process and all its descendants, parents first, from Linux /proc (the children of every thread). */
export function processTree(pid: number): number[] {
  const out = [pid];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const c of children ? children.split(" ") : []) out.push(...processTree(Number(c)));
    }
  } catch {
    // not Linux, or the process ended
  }
  return out;
}

/**
 * Test tokens and keys all look like `<mode>-<name>` (the simulator's prefixes, `key-`, `gk-`), and test messages
 * carry simulator directives (`[[pieces:...`) or the word "secret": none of them may ever reach a log line.
 */
// JWTs too (eyJ...: a JSON header in base64url), the form of real Emohaa tokens, and their payloads' claims.
const SECRETS =
  /\beyJ[\w-]{8,}|\bsub-claim-\w+|\b(?:live|expired200|expired|create500|chat500|ratelimit|cut|silent|slow|malformed|delfail|hang|leaky\w*|key|gk|gw)-[\w-]+|\[\[[a-z]+|secret|private-feelings/i;

/** Checks a server's output for anything a test sent as a token, key or message (the demo's banner aside). */
export function assertPrivate(output: string): void {
  // The demo banner (indented lines) prints its simulated demo token on purpose; stack frames ("    at") are kept.
  const checked = output.replace(/^ {2,}(?!at ).*$/gm, "");
  const leak = SECRETS.exec(checked);
  if (leak) {
    throw new Error(
      `Server output contains test secret ${JSON.stringify(leak[0])}:\n${
        checked.slice(Math.max(0, leak.index - 200), leak.index + 100)
      }`,
    );
  }
}

/**
 * One simulator and one gateway in front of it for a test file: started before its tests, stopped after them.
 * Read `sim` and `server` inside tests (they are set once `before` ran).
 */
export function gatewayOverSim(env: Record<string, string> = {}) {
  const f = {
    sim: undefined as unknown as RunningSim,
    server: undefined as unknown as RunningServer,
    /** Resolves once the simulator holds no conversation (every one deleted). */
    settled: () => eventually(() => f.sim.sim.state().open === 0, 15_000, "conversations deleted"),
  };
  before(async () => {
    f.sim = await startSim();
    f.server = await startServer({ EMOHAA_BASE_URL: f.sim.baseUrl, ...env });
  });
  after(async () => {
    await f.server?.kill();
    await f.sim?.stop();
  });
  return f;
}
