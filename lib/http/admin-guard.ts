// The admin API's guard, shared by its routes (lib/http/admin.ts, admin-keys.ts): ADMIN_KEY as the bearer, or
// without it only this machine's own requests.
import type { Context, Next } from "hono";
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "../errors.ts";
import { errorResponse } from "./apidoc.ts";

/** The `adminKey` security scheme of the OpenAPI document. */
export const adminKeyScheme = {
  type: "http" as const,
  scheme: "bearer",
  description:
    "`ADMIN_KEY` as the bearer: a key of its own, never one of the `API_KEYS` (the server refuses to start when it " +
    "equals one). Without `ADMIN_KEY` the admin routes answer only requests from the server's own machine " +
    "(a loopback peer with no `X-Forwarded-For`, `Forwarded` or `X-Real-IP` header, a loopback name as its `Host`, and no " +
    "`Origin` but its own) and refuse the network with 403.",
};

/** The security requirement of every admin route. */
export const ADMIN_SECURITY = [{ adminKey: [] }];
/** The answers of the guard, for every admin route's document. */
export const adminAuthErrors = {
  ...errorResponse(401, "A missing or wrong ADMIN_KEY (an API key is not accepted)", {
    value: {
      error: {
        message: "Invalid admin key: send ADMIN_KEY as the bearer (API_KEYS are not accepted here)",
        type: "authentication_error",
        param: null,
        code: "invalid_admin_key",
      },
    },
  }),
  ...errorResponse(403, "ADMIN_KEY is not set and the request came over the network", {
    value: {
      error: {
        message: "The admin API is refused over the network while ADMIN_KEY is not set",
        type: "permission_error",
        param: null,
        code: "admin_disabled",
      },
    },
  }),
};
const LOOPBACK = /^(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;
/** A Host header naming this machine's loopback: localhost, 127.x.y.z or [::1], with any port. */
const LOOPBACK_HOST = /^(?:localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(?::\d{1,5})?$/i;
const sameHost = (origin: string, host: string) => {
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
};
const digest = (s: string) => createHash("sha256").update(s).digest();

/** The middleware every `/admin/*` route passes; `adminKey` is ADMIN_KEY. */
export function adminGuard(adminKey: string | undefined) {
  const key = adminKey ? digest(adminKey) : undefined;
  return async function adminGuard(c: Context<{ Bindings: { remoteAddress?: string } }>, next: Next) {
    if (key) {
      const m = /^\s*bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
      // Compared in constant time; hashing makes the lengths equal.
      if (!m || !timingSafeEqual(digest(m[1]!), key)) {
        throw new ApiError(401, "Invalid admin key: send ADMIN_KEY as the bearer (API_KEYS are not accepted here)", {
          code: "invalid_admin_key",
        });
      }
    } else {
      // A reverse proxy on this machine connects from loopback too: a forwarding header means someone else. A web
      // page in a browser on this machine could reach loopback as well: it is refused by its Origin, and a name it
      // rebound to 127.0.0.1 by the Host header, which then is not a loopback name.
      const forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"].some((h) => c.req.header(h) !== undefined);
      const host = c.req.header("host") ?? new URL(c.req.url).host;
      const origin = c.req.header("origin");
      if (
        forwarded || !LOOPBACK.test(c.env?.remoteAddress ?? "") || !LOOPBACK_HOST.test(host) ||
        (origin !== undefined && !sameHost(origin, host))
      ) {
        throw new ApiError(403, "The admin API is refused over the network while ADMIN_KEY is not set", {
          code: "admin_disabled",
        });
      }
    }
    await next();
  };
}
