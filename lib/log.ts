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
