// Types of scripts/redis.mjs, for the tests that start a redis-server of their own.
export interface RunningRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}
export function findRedisServer(): string | undefined;
export function ensureRedisServer(log?: (message: string) => void): string | undefined;
export function startRedis(
  options?: { bin?: string; timeoutMs?: number; port?: number; databases?: number },
): Promise<RunningRedis>;
