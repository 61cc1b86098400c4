// Secrets in URLs, masked for messages and logs: a store URL may carry a password (`redis://user:secret@host`).

/**
 * `text` with every URL's userinfo (`user:password@`, after `//` or right after a scheme) shown as `***@`, and any
 * other password before an `@` (`:secret@`, as a mistyped `redis:/:secret@host` holds) as `:***@`.
 */
export function redactUrls(text: string): string {
  return text.replace(/(\/\/|^[A-Za-z][\w+.-]*:(?!\/\/))[^@/\s]*@/g, "$1***@").replace(/:[^:@/\s*]+@/g, ":***@");
}
