// The edge's own error: a request body that failed validation (zod issues), as the 400 a client should see.
import { ApiError } from "../errors.ts";

/** The 400 for a request body that failed validation: its first issue, with the issue's path as `param`. */
export function invalidRequest(issues: readonly { path: readonly PropertyKey[]; message: string }[]): ApiError {
  const issue = issues[0]!;
  const param = issue.path.length ? issue.path.join(".") : null;
  return new ApiError(400, `Invalid request${param ? ` at ${param}` : ""}: ${issue.message}`, {
    code: "invalid_request",
    param,
  });
}
