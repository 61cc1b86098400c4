// What every part of the playground shares: the template tag, the page's language and its base URL.
import { h } from "preact";
import htm from "htm";
import { pickLanguage, translator } from "./i18n.js";

/** Preact's `h` as a tagged template (htm): JSX without a build step. */
export const html = htm.bind(h);

/** "zh" or "en", from the browser's languages. */
export const lang = pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language]);

/** The page's text in its language: `t("ttft", { ms })`. */
export const t = translator(lang);

/** The page may be served under a path prefix: every URL is relative to it. */
export const base = new URL(".", location.href).href;
