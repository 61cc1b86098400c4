// The admin API of the gateway keys: list them with today's usage, create one (its secret shown once), change its
// limits or expiry, revoke it. Behind ADMIN_KEY like /admin/tokens (lib/http/admin-guard.ts).
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { type KeyLimiter, type KeyUsage, utcDay } from "../chat/key-limits.ts";
import { type GatewayKey, type GatewayKeys, KEY_NAME, KEY_PREFIX, type KeyRecord } from "../chat/keys.ts";
import { ADMIN_SECURITY, adminAuthErrors, adminGuard } from "./admin-guard.ts";
import { errorResponse } from "./apidoc.ts";
import { invalidRequest } from "./errors.ts";
import { stateUnavailable } from "../errors.ts";

export interface KeyAdminDeps {
  keys: GatewayKeys;
  limits: KeyLimiter;
  /** ADMIN_KEY; absent: only loopback peers, with no forwarding header, are let in. */
  adminKey?: string;
  now(): number;
}

const limit = (max: number, what: string) =>
  z.number().int().min(0).max(max).openapi({
    description: `${what}; absent or null: unlimited. 0 refuses every request (a key on hold).`,
  });

const Rpm = limit(1_000_000, "Requests per minute (a UTC clock minute), summed over every instance");
const Concurrency = limit(10_000, "Requests open at once, over every instance");
const TokensPerDay = limit(
  1_000_000_000_000,
  "Estimated prompt + completion tokens per UTC day; once reached, requests get 429 `insufficient_quota` until 00:00 UTC",
);
const Expiry = z.string().datetime({ offset: true }).openapi({
  description: "When the key stops working (401 after it); an ISO time in the future",
  example: "2027-01-31T00:00:00Z",
});

const UsageSchema = z.object({
  requests: z.number().int(),
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
}).openapi("KeyUsage", { description: "Today's usage (the current UTC day), counted by every instance" });

const KeySchema = z.object({
  name: z.string().openapi({ example: "alice" }),
  source: z.enum(["admin", "env"]).openapi({
    description: "`admin`: created through this API; `env`: one of API_KEYS, named `env…` and the last 4 hex digits " +
      "of its SHA-256 (its limits are KEY_DEFAULT_*; change it in the environment)",
  }),
  rpm: z.number().int().nullable(),
  concurrency: z.number().int().nullable(),
  tokensPerDay: z.number().int().nullable(),
  expiresAt: z.string().nullable().openapi({ description: "ISO time, or null: never" }),
  createdAt: z.string().nullable().openapi({ description: "ISO time (null for a key of API_KEYS)" }),
  lastUsedAt: z.string().nullable().openapi({ description: "ISO time of its last request on any instance, or null" }),
  usage: UsageSchema,
}).openapi("GatewayKey");

const KeyListSchema = z.object({
  persistence: z.enum(["state", "file", "memory"]).openapi({
    description: "Where the keys are kept: `state` (the shared state store: every instance sees a change within a " +
      "second), `file` (KEYS_FILE), `memory` (this process, until it stops: set KEYS_FILE or a shared STATE)",
  }),
  day: z.string().openapi({ description: "The UTC day `usage` counts", example: "2026-12-07" }),
  keys: z.array(KeySchema),
}).openapi("GatewayKeyList");

const CreatedKeySchema = KeySchema.extend({
  key: z.string().openapi({
    description: "The secret, shown this once only: clients send it as their bearer. Only its hash is kept.",
    example: `${KEY_PREFIX}8mZ1cWkq0d3kXbq9u2yKJw6QmVh1Zb0R8cTn5pLwA4E`,
  }),
}).openapi("CreatedGatewayKey");

const CreateKeySchema = z.object({
  name: z.string().regex(KEY_NAME, "must be 1-64 characters of A-Z a-z 0-9 . _ -").openapi({ example: "alice" }),
  rpm: Rpm.optional(),
  concurrency: Concurrency.optional(),
  tokensPerDay: TokensPerDay.optional(),
  expiresAt: Expiry.optional(),
}).strict().openapi("CreateGatewayKey", {
  example: { name: "alice", rpm: 5, concurrency: 1, tokensPerDay: 2000, expiresAt: "2027-01-31T00:00:00Z" },
});

const ChangeKeySchema = z.object({
  rpm: Rpm.nullable().optional(),
  concurrency: Concurrency.nullable().optional(),
  tokensPerDay: TokensPerDay.nullable().optional(),
  expiresAt: Expiry.nullable().optional(),
}).strict().openapi("ChangeGatewayKey", {
  description: "Only the fields given change; null removes a limit (unlimited) or the expiry",
  example: { rpm: 20, tokensPerDay: null },
});

const NameParam = z.object({
  name: z.string().regex(KEY_NAME, "must be 1-64 characters of A-Z a-z 0-9 . _ -").openapi({
    param: { name: "name", in: "path" },
    example: "alice",
  }),
});

const notFound = errorResponse(404, "No managed key has this name", {
  value: {
    error: { message: "No gateway key is named alice", type: "not_found_error", param: "name", code: "not_found" },
  },
});
const badInput = errorResponse(400, "A limit that is negative or not an integer, a bad name, an expiry in the past", {
  value: {
    error: {
      message: "expiresAt must be in the future",
      type: "invalid_request_error",
      param: "expiresAt",
      code: "invalid_value",
    },
  },
});
const storeDown = errorResponse(503, "The state store cannot be reached: nothing changed (fail closed)", {
  value: {
    error: {
      message: "The shared state store is unavailable, so the gateway keys cannot be changed; retry",
      type: "server_error",
      param: null,
      code: "state_unavailable",
    },
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/admin/keys",
  tags: ["Admin"],
  summary: "List the gateway keys with today's usage",
  operationId: "adminListKeys",
  description: "Every key (managed, and those of API_KEYS) with its limits, expiry, last use and today's usage " +
    "summed over every instance. Never a secret.",
  security: ADMIN_SECURITY,
  responses: {
    200: { description: "The keys", content: { "application/json": { schema: KeyListSchema } } },
    ...adminAuthErrors,
    ...storeDown,
  },
});

const createKeyRoute = createRoute({
  method: "post",
  path: "/admin/keys",
  tags: ["Admin"],
  summary: "Create a gateway key",
  operationId: "adminCreateKey",
  description: "A new random key with the given limits (each optional: absent is unlimited). The answer holds its " +
    "secret, this once only. While no key exists at all, requests are anonymous (ALLOW_ANONYMOUS) or refused; the " +
    "first key makes every request need one.",
  security: ADMIN_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: CreateKeySchema } } } },
  responses: {
    201: { description: "The key and its secret", content: { "application/json": { schema: CreatedKeySchema } } },
    ...badInput,
    ...adminAuthErrors,
    ...errorResponse(409, "The name is taken", {
      value: {
        error: {
          message: "A gateway key is already named alice",
          type: "invalid_request_error",
          param: "name",
          code: "name_taken",
        },
      },
    }),
    ...storeDown,
  },
});

const changeRoute = createRoute({
  method: "patch",
  path: "/admin/keys/{name}",
  tags: ["Admin"],
  summary: "Change a gateway key's limits or expiry",
  operationId: "adminChangeKey",
  description: "Every instance applies the change within a second. Today's usage is kept.",
  security: ADMIN_SECURITY,
  request: {
    params: NameParam,
    body: { required: true, content: { "application/json": { schema: ChangeKeySchema } } },
  },
  responses: {
    200: { description: "The key after the change", content: { "application/json": { schema: KeySchema } } },
    ...badInput,
    ...adminAuthErrors,
    ...notFound,
    ...storeDown,
  },
});

const revokeRoute = createRoute({
  method: "delete",
  path: "/admin/keys/{name}",
  tags: ["Admin"],
  summary: "Revoke a gateway key",
  operationId: "adminRevokeKey",
  description: "The key gets 401 on this instance at once and on every other within a second (polling the state " +
    "store); requests already running finish.",
  security: ADMIN_SECURITY,
  request: { params: NameParam },
  responses: {
    200: {
      description: "Revoked",
      content: {
        "application/json": {
          schema: z.object({ name: z.string(), revoked: z.literal(true) }).openapi("RevokedGatewayKey"),
        },
      },
    },
    ...adminAuthErrors,
    ...notFound,
    ...storeDown,
  },
});

const iso = (ms: number | undefined | null) => (ms == null ? null : new Date(ms).toISOString());
const ms = (iso: string | null | undefined) => (iso == null ? iso : Date.parse(iso));

/** The admin routes of the gateway keys, to mount on the app; their errors go to the app's one renderer. */
export function keyAdminRoutes(deps: KeyAdminDeps): OpenAPIHono<{ Bindings: { remoteAddress?: string } }> {
  const app = new OpenAPIHono<{ Bindings: { remoteAddress?: string } }>({
    defaultHook: (result) => {
      if (!result.success) throw invalidRequest(result.error.issues);
    },
  });
  app.use("/admin/keys", adminGuard(deps.adminKey));
  app.use("/admin/keys/*", adminGuard(deps.adminKey));

  const view = (
    k: Pick<GatewayKey, "name" | "source" | "rpm" | "concurrency" | "tokensPerDay" | "expiresAt">,
    createdAt: number | undefined,
    usage: KeyUsage | undefined,
  ) => ({
    name: k.name,
    source: k.source,
    rpm: k.rpm ?? null,
    concurrency: k.concurrency ?? null,
    tokensPerDay: k.tokensPerDay ?? null,
    expiresAt: iso(k.expiresAt),
    createdAt: iso(createdAt),
    lastUsedAt: iso(usage?.lastUsedAt),
    usage: {
      requests: usage?.requests ?? 0,
      promptTokens: usage?.promptTokens ?? 0,
      completionTokens: usage?.completionTokens ?? 0,
    },
  });
  const managed = (r: KeyRecord) => ({ ...r, source: "admin" as const });
  const usageOf = async (ids: string[]) => {
    try {
      return await deps.limits.usage(ids);
    } catch (cause) {
      throw stateUnavailable("the keys' usage cannot be read", cause);
    }
  };

  app.openapi(listRoute, async (c) => {
    const records = deps.keys.list();
    const env = deps.keys.envList();
    const usage = await usageOf([...records.map((r) => r.id), ...env.map((k) => k.id)]);
    return c.json({
      persistence: deps.keys.persistence,
      day: utcDay(deps.now()),
      keys: [
        ...records.map((r) => view(managed(r), r.createdAt, usage.get(r.id))),
        ...env.map((k) => view(k, undefined, usage.get(k.id))),
      ],
    }, 200);
  });

  app.openapi(createKeyRoute, async (c) => {
    const { name, expiresAt, ...limits } = c.req.valid("json");
    const { record, secret } = await deps.keys.create(name, { ...limits, expiresAt: ms(expiresAt) });
    return c.json({ key: secret, ...view(managed(record), record.createdAt, undefined) }, 201);
  });

  app.openapi(changeRoute, async (c) => {
    const { name } = c.req.valid("param");
    const { expiresAt, ...limits } = c.req.valid("json");
    const record = await deps.keys.update(name, {
      ...limits,
      ...(expiresAt !== undefined ? { expiresAt: ms(expiresAt) } : {}),
    });
    const usage = await usageOf([record.id]);
    return c.json(view(managed(record), record.createdAt, usage.get(record.id)), 200);
  });

  app.openapi(revokeRoute, async (c) => {
    const { name } = c.req.valid("param");
    await deps.keys.revoke(name);
    return c.json({ name, revoked: true as const }, 200);
  });

  return app;
}
