// Types of scripts/junit.mjs.
export function parseJunit(xml: string, file: string): { passed: string[]; failed: string[]; skipped: string[] };
export function leaves(names: Iterable<string>): Set<string>;
