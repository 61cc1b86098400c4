// The environment schema: every setting of the server, parsed once at start-up.
import { z } from "zod";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) => ["true", "1", "yes"].includes(v));

const EnvSchema = z.object({
  PORT: int(0, 65535).optional(),
  SERVER_PORT: int(0, 65535).optional(),
  HOST: z.string().min(1).optional(),
  SERVER_HOST: z.string().min(1).optional(),
  EMOHAA_BASE_URL: z.url({ protocol: /^https?$/ }).default("https://ai-role.cn/echo-prod"),
  UPSTREAM_CREATE_TIMEOUT_MS: int(100, 600_000).default(15_000),
  UPSTREAM_FIRST_PIECE_TIMEOUT_MS: int(100, 600_000).default(60_000),
  UPSTREAM_IDLE_TIMEOUT_MS: int(100, 600_000).default(60_000),
  UPSTREAM_TOTAL_TIMEOUT_MS: int(1_000, 3_600_000).default(300_000),
  PROMPT_MAX_BYTES: int(256, 1_000_000).default(6_000),
  KEEPALIVE_INTERVAL_MS: int(100, 600_000).default(15_000),
  MAX_ATTEMPTS: int(1, 10).default(3),
  LOG_LEVEL: z.enum(["silent", "error", "info", "debug"]).default("info"),
  CORS_ORIGIN: z.string().min(1).default("*"),
});

/** The parsed, typed configuration. */
export interface Config {
  port: number;
  host: string;
  baseUrl: string;
  timeouts: { createMs: number; firstPieceMs: number; idleMs: number; totalMs: number };
  promptMaxBytes: number;
  keepAliveMs: number;
  maxAttempts: number;
  logLevel: "silent" | "error" | "info" | "debug";
  corsOrigin: string;
}

/** Raised for a bad environment; its message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses an environment map (pure: pass `process.env` or `Deno.env.toObject()`). */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings mean "unset", as in a docker-compose file with `PORT=`.
  const clean = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(clean);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? "environment");
    throw new ConfigError(`Invalid ${name}=${JSON.stringify(clean[name] ?? "")}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT ?? e.SERVER_PORT ?? 8000,
    host: e.HOST ?? e.SERVER_HOST ?? "0.0.0.0",
    baseUrl: e.EMOHAA_BASE_URL.replace(/\/+$/, ""),
    timeouts: {
      createMs: e.UPSTREAM_CREATE_TIMEOUT_MS,
      firstPieceMs: e.UPSTREAM_FIRST_PIECE_TIMEOUT_MS,
      idleMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
      totalMs: e.UPSTREAM_TOTAL_TIMEOUT_MS,
    },
    promptMaxBytes: e.PROMPT_MAX_BYTES,
    keepAliveMs: e.KEEPALIVE_INTERVAL_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    logLevel: e.LOG_LEVEL,
    corsOrigin: e.CORS_ORIGIN,
  };
}
