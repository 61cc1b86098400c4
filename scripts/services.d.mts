// Types of scripts/services.mjs, for the tests that use its helpers.
export function findExecutable(name: string): string | undefined;
export function ensureExecutable(
  name: string,
  pkg: string,
  missing: string,
  log?: (message: string) => void,
): string | undefined;
/** A free TCP port on 127.0.0.1 (free when asked; the server binds it right after). */
export function freePort(): Promise<number>;
