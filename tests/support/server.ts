// Test support: the real server as a child process, under the runtime running the tests.
import { spawn } from "node:child_process";
import { runtimeName } from "../../runtime/serve.ts";

export interface RunningServer {
  url: string;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** Sends a signal and waits for the exit code. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

const root = new URL("../../", import.meta.url).pathname;

/** The command that runs `server.ts` on this runtime (`bun run` or `deno run`), or a given command. */
export function serverCommand(): string[] {
  if (process.env.E2E_COMMAND) return process.env.E2E_COMMAND.split(" ");
  return runtimeName() === "deno"
    ? [process.execPath, "run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys", "server.ts"]
    : [process.execPath, "run", "server.ts"];
}

/** Starts the server with `env` on a free port and waits for its "listening" line. */
export async function startServer(env: Record<string, string>, command = serverCommand()): Promise<RunningServer> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: root,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
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
    output: () => out,
    kill: async (signal = "SIGTERM") => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
