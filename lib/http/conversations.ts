// DELETE /v1/conversations/{handle}: ends a kept conversation at once (the playground's "New chat").
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Threads } from "../chat/threads.ts";
import { errorResponses } from "./apidoc.ts";
import type { Auth } from "./auth.ts";
import { ApiError } from "../errors.ts";
import { ErrorSchema } from "./schemas.ts";

const DeletedSchema = z
  .object({
    id: z.string().openapi({ example: "conv-3f2a9c0d1e7b4a6f8c5d2e1f0a9b8c7d" }),
    object: z.literal("conversation.deleted"),
    deleted: z.literal(true),
  })
  .openapi("ConversationDeleted");

const endRoute = createRoute({
  method: "delete",
  path: "/v1/conversations/{handle}",
  tags: ["Chat"],
  summary: "End a kept conversation",
  operationId: "deleteConversation",
  description:
    "Deletes the Emohaa conversation a chat completion's `x-emohaa-conversation` header named, at once instead of " +
    "after its idle time. The caller must send the bearer that holds its account (its own tokens, or a gateway key). " +
    "A 404 when there is none: already ended, deleted when idle, or never kept.",
  security: [{ bearer: [] }],
  request: {
    params: z.object({
      handle: z.string().regex(/^conv-[A-Za-z0-9]{1,64}$/).openapi({
        param: { name: "handle", in: "path" },
        example: "conv-3f2a9c0d1e7b4a6f8c5d2e1f0a9b8c7d",
      }),
    }),
  },
  responses: {
    200: { description: "Ended", content: { "application/json": { schema: DeletedSchema } } },
    404: {
      description: "No such conversation for this caller",
      content: {
        "application/json": {
          schema: ErrorSchema,
          examples: {
            gone: {
              summary: "Already ended, deleted when idle, never kept, or not this caller's",
              value: new ApiError(404, "No conversation conv-3f2a9c0d1e7b4a6f8c5d2e1f0a9b8c7d to end", {
                code: "not_found",
              }).toJSON(),
            },
          },
        },
      },
    },
    ...errorResponses(401),
  },
});

// deno-lint-ignore no-explicit-any
type AnyApp = OpenAPIHono<any>;

/** Adds the route to `app`; without `threads` (CONTINUE_CONVERSATIONS=false) nothing is ever kept: always a 404. */
export function conversationRoutes(app: AnyApp, deps: { auth: Auth; threads?: Threads }): void {
  app.openapi(endRoute, async (c) => {
    const tokens = deps.auth.tokensFor(c.req.header("authorization"));
    const { handle } = c.req.valid("param");
    if (!deps.threads || !(await deps.threads.end(handle, tokens))) {
      throw new ApiError(404, `No conversation ${handle} to end`, { code: "not_found" });
    }
    return c.json({ id: handle, object: "conversation.deleted" as const, deleted: true as const }, 200);
  });
}
