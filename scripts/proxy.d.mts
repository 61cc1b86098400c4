// Types of scripts/proxy.mjs, for the reverse-proxy test.
export interface RunningProxy {
  url: string;
  port: number;
  pid: number;
  /** What the proxy printed on stderr. */
  output(): string;
  stop(): Promise<void>;
}
export function findNginx(): string | undefined;
export function findCaddy(): string | undefined;
export function ensureNginx(log?: (message: string) => void): string | undefined;
export function ensureCaddy(log?: (message: string) => void): string | undefined;
export function startNginx(http: string, options?: { bin?: string; timeoutMs?: number }): Promise<RunningProxy>;
export function startCaddy(caddyfile: string, options?: { bin?: string; timeoutMs?: number }): Promise<RunningProxy>;
