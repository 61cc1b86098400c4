// Types of scripts/nginx.mjs, for the reverse-proxy test.
export interface RunningNginx {
  url: string;
  port: number;
  pid: number;
  /** What nginx printed on stderr. */
  output(): string;
  stop(): Promise<void>;
}
export function findNginx(): string | undefined;
export function ensureNginx(log?: (message: string) => void): string | undefined;
export function startNginx(http: string, options?: { bin?: string; timeoutMs?: number }): Promise<RunningNginx>;
