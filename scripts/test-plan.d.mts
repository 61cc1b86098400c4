// Types of scripts/test-plan.mjs.
export interface NotRun {
  runs: RegExp;
  file: string | RegExp;
  test?: RegExp;
  why: string;
}
export const SOURCE_ONLY_E2E: string[];
export const ALONE: string[];
export const NOT_RUN: NotRun[];
export function whyNotRun(run: string, file: string, test: string): NotRun | undefined;
