// Request logging: one line per request, never a token and never message content.

export type LogLevel = "silent" | "error" | "info" | "debug";
const RANK: Record<LogLevel, number> = { silent: 0, error: 1, info: 2, debug: 3 };

/** Fields of a request line; deliberately no place for headers, bodies or tokens. */
export interface RequestLine {
  method: string;
  path: string;
  status: number;
  ms: number;
  attempts?: number;
  id: string;
  code?: string | null;
}

export interface Logger {
  request(line: RequestLine): void;
  /** Operational messages (start-up, shutdown); callers pass no user data. */
  info(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/** A logger writing to `write` (stdout in production, an array in tests). */
export function createLogger(level: LogLevel, write: (line: string) => void = (l) => console.log(l)): Logger {
  const on = (l: LogLevel) => RANK[level] >= RANK[l];
  const stamp = () => new Date().toISOString();
  return {
    request(r) {
      const l: LogLevel = r.status >= 500 ? "error" : "info";
      if (!on(l)) return;
      const extra = (r.attempts ? ` attempts=${r.attempts}` : "") + (r.code ? ` code=${r.code}` : "");
      write(`${stamp()} ${r.method} ${r.path} ${r.status} ${r.ms}ms${extra} id=${r.id}`);
    },
    info: (m) => on("info") && write(`${stamp()} ${m}`),
    error: (m) => on("error") && write(`${stamp()} ERROR ${m}`),
    debug: (m) => on("debug") && write(`${stamp()} DEBUG ${m}`),
  };
}

/**
 * Collects lines and writes them together, at most `flushMs` after the first one: at thousands of requests a
 * second one write per access-log line was a system call per request. `flush` writes what is pending now
 * (before the process exits).
 */
export function batchedLines(write: (text: string) => void, flushMs = 20): { write(line: string): void; flush(): void } {
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending.length) return;
    const lines = pending;
    pending = [];
    write(lines.join("\n"));
  };
  return {
    write(line) {
      pending.push(line);
      timer ??= setTimeout(flush, flushMs);
    },
    flush,
  };
}
