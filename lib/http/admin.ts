// The admin API of the server-side tokens: list, add, remove and replace the server's tokens behind ADMIN_KEY.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { type Pool, tokenHash, tokenLabel } from "../chat/pool.ts";
import { AccountStatusSchema } from "./schemas.ts";
import type { ServerTokens, TokenChange } from "../chat/server-tokens.ts";
import { errorResponse } from "./apidoc.ts";
import { isUsableToken } from "./bearer.ts";
import { ApiError } from "../errors.ts";
import { invalidRequest } from "./errors.ts";
import {
  ADMIN_SECURITY as SECURITY,
  adminAuthErrors as authErrors,
  adminGuard,
  adminKeyScheme,
} from "./admin-guard.ts";

export interface AdminDeps {
  tokens: ServerTokens;
  pool: Pool;
  /** ADMIN_KEY; absent: only loopback peers, with no forwarding header, are let in. */
  adminKey?: string;
}

const AdminTokenSchema = AccountStatusSchema.extend({
  origin: z.enum(["env", "file", "admin"]).openapi({
    description: "Where the token comes from: `EMOHAA_TOKENS`, `EMOHAA_TOKENS_FILE`, or this API",
  }),
});

const AdminTokenListSchema = z
  .object({
    persistence: z.enum(["state", "file", "memory"]).openapi({
      description:
        "Where changes are kept: `state` (the shared state store, sealed with ADMIN_KEY; every instance sees them " +
        "within seconds), `file` (EMOHAA_TOKENS_FILE, rewritten atomically), `memory` (this process, until it stops)",
    }),
    tokens: z.array(AdminTokenSchema),
  })
  .openapi("AdminTokenList");

const TokenValue = z.string().min(1).max(4096).openapi({ example: "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.…" });
const AddTokensSchema = z.object({ tokens: z.array(TokenValue).min(1).max(64) }).openapi("AddTokens");
const ReplaceTokenSchema = z.object({ token: TokenValue }).openapi("ReplaceToken");
const LabelParam = z.object({
  label: z.string().max(16).openapi({
    param: { name: "label", in: "path" },
    description: "A token's masked label, with or without the leading `…`",
    example: "3fa2",
  }),
});

const listed = { content: { "application/json": { schema: AdminTokenListSchema } } };

const notFound = errorResponse(404, "No token has this label", {
  value: {
    error: {
      message: "No server-side token has the label …3fa2",
      type: "not_found_error",
      param: "label",
      code: "not_found",
    },
  },
});
const conflict = errorResponse(409, "The label names several tokens, or a token of EMOHAA_TOKENS in file mode", {
  value: {
    error: {
      message: "The label …3fa2 names 2 tokens: remove them through the file or the environment",
      type: "invalid_request_error",
      param: "label",
      code: "ambiguous_label",
    },
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/admin/tokens",
  tags: ["Admin"],
  summary: "List the server's tokens",
  operationId: "adminListTokens",
  description: "Every server-side token by masked label, with its origin, expiry, health and requests in flight.",
  security: SECURITY,
  responses: { 200: { description: "The tokens", ...listed }, ...authErrors },
});

const addRoute = createRoute({
  method: "post",
  path: "/admin/tokens",
  tags: ["Admin"],
  summary: "Add tokens",
  operationId: "adminAddTokens",
  description: "Adds one or several tokens (a token already there is left as it is). Answers the new list.",
  security: SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: AddTokensSchema } } } },
  responses: { 201: { description: "The tokens after the change", ...listed }, ...authErrors },
});

const removeRoute = createRoute({
  method: "delete",
  path: "/admin/tokens/{label}",
  tags: ["Admin"],
  summary: "Remove a token",
  operationId: "adminRemoveToken",
  description: "Removes the token with this label; requests in flight on it finish. Answers the new list.",
  security: SECURITY,
  request: { params: LabelParam },
  responses: {
    200: { description: "The tokens after the change", ...listed },
    ...authErrors,
    ...notFound,
    ...conflict,
  },
});

const replaceRoute = createRoute({
  method: "put",
  path: "/admin/tokens/{label}",
  tags: ["Admin"],
  summary: "Replace a token",
  operationId: "adminReplaceToken",
  description: "Replaces the token with this label by a new one, in one change. Answers the new list.",
  security: SECURITY,
  request: {
    params: LabelParam,
    body: { required: true, content: { "application/json": { schema: ReplaceTokenSchema } } },
  },
  responses: {
    200: { description: "The tokens after the change", ...listed },
    ...authErrors,
    ...notFound,
    ...conflict,
  },
});

/** The admin routes, to mount on the app; their errors go to the app's one renderer. */
export function adminRoutes(deps: AdminDeps): OpenAPIHono<{ Bindings: { remoteAddress?: string } }> {
  const app = new OpenAPIHono<{ Bindings: { remoteAddress?: string } }>({
    defaultHook: (result) => {
      if (!result.success) throw invalidRequest(result.error.issues);
    },
  });

  app.use("/admin/*", adminGuard(deps.adminKey));

  const listing = async () => {
    const tokens = deps.tokens.list();
    const status = await deps.pool.status(tokens);
    return {
      persistence: deps.tokens.persistence,
      tokens: status.map((s, i) => ({ ...s, origin: deps.tokens.origin(tokens[i]!) })),
    };
  };

  /** The hash of the one token with this label; 404 for none, 409 for several. */
  const find = (label: string): string => {
    const want = label.startsWith("…") ? label : `…${label}`;
    const found = [...new Set(deps.tokens.list().filter((t) => tokenLabel(t) === want).map(tokenHash))];
    if (!found.length) {
      throw new ApiError(404, `No server-side token has the label ${want}`, { code: "not_found", param: "label" });
    }
    if (found.length > 1) {
      throw new ApiError(
        409,
        `The label ${want} names ${found.length} tokens: remove them through the file or the environment`,
        {
          code: "ambiguous_label",
          param: "label",
        },
      );
    }
    return found[0]!;
  };

  const usable = (tokens: readonly string[], param: string) => {
    if (tokens.every(isUsableToken)) return;
    throw new ApiError(400, "Invalid token: tokens are printable ASCII without spaces", {
      code: "invalid_token",
      param,
    });
  };

  const change = (c: TokenChange) => deps.tokens.apply(c);

  app.openapi(listRoute, async (c) => c.json(await listing(), 200));

  app.openapi(addRoute, async (c) => {
    const { tokens } = c.req.valid("json");
    usable(tokens, "tokens");
    await change({ add: tokens, remove: [] });
    return c.json(await listing(), 201);
  });

  app.openapi(removeRoute, async (c) => {
    await change({ add: [], remove: [find(c.req.valid("param").label)] });
    return c.json(await listing(), 200);
  });

  app.openapi(replaceRoute, async (c) => {
    const { token } = c.req.valid("json");
    usable([token], "token");
    const old = find(c.req.valid("param").label);
    await change({ add: [token], remove: old === tokenHash(token) ? [] : [old] });
    return c.json(await listing(), 200);
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "adminKey", adminKeyScheme);
  return app;
}
