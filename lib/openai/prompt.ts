// Flattens an OpenAI message history into the single prompt Emohaa takes, within a size cap.
import { ApiError } from "../errors.ts";
import { formLength } from "../form.ts";

/** A message as validated at the edge: content is a string, an array of parts, or null. */
export interface PromptMessage {
  role: string;
  content?: string | null | ReadonlyArray<{ type: string; text?: string }>;
}

/** Labels the upstream knows; only labels are renamed, never message text. */
const LABELS: Record<string, string> = {
  system: "system",
  developer: "system",
  user: "user",
  assistant: "emohaa",
  tool: "tool",
  function: "tool",
};

/** The text of a message: a string as is, text parts joined by newlines, other parts (images, audio) left out. */
export function messageText(content: PromptMessage["content"]): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content
    .filter((p) => p.type === "text" && typeof p.text === "string")
    .map((p) => p.text)
    .join("\n");
}

/** One prompt line: `label:text`. */
export function promptLine(m: PromptMessage): string {
  return `${LABELS[m.role] ?? m.role}:${messageText(m.content)}`;
}

/** The size a line takes in the chat URL's query string, form-encoded as it is sent, plus the joining newline (%0A). */
function urlSize(line: string): number {
  return formLength(line) + 3;
}

export interface BuiltPrompt {
  prompt: string;
  /** How many messages were left out, oldest turns first, to fit the cap. */
  dropped: number;
}

/**
 * Builds the prompt: system messages and the newest turns that fit in `maxBytes` (measured form-encoded,
 * as the prompt travels in the query string). The newest user message must fit, or it is a 400 naming `param`.
 */
export function buildPrompt(messages: readonly PromptMessage[], maxBytes: number, param = "messages"): BuiltPrompt {
  const lines = messages.map((m) => ({ role: m.role, text: messageText(m.content), line: promptLine(m) }));
  const keep = new Array<boolean>(lines.length).fill(false);
  let lastUser = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i]!.role === "user") {
      lastUser = i;
      break;
    }
  }
  if (lastUser < 0) lastUser = lines.length - 1;
  let used = urlSize(lines[lastUser]!.line);
  if (used > maxBytes) {
    throw new ApiError(
      400,
      `The last user message is too long for Emohaa: ${used} bytes URL-encoded, the limit is ${maxBytes}`,
      {
        code: "context_length_exceeded",
        param,
      },
    );
  }
  keep[lastUser] = true;
  const isSystem = (r: string) => r === "system" || r === "developer";
  lines.forEach((l, i) => {
    if (!keep[i] && isSystem(l.role) && used + urlSize(l.line) <= maxBytes) {
      keep[i] = true;
      used += urlSize(l.line);
    }
  });
  // Newest turns first; stop at the first that does not fit so the kept history has no holes.
  for (let i = lines.length - 1; i >= 0; i--) {
    if (keep[i] || isSystem(lines[i]!.role)) continue;
    const size = urlSize(lines[i]!.line);
    if (used + size > maxBytes) break;
    keep[i] = true;
    used += size;
  }
  const kept = lines.filter((_, i) => keep[i]);
  return { prompt: kept.map((l) => l.line).join("\n"), dropped: lines.length - kept.length };
}
