// The chat's state and how each event changes it: a pure reducer, so a late update from an old reply is a no-op by
// construction (its exchange is gone) instead of something a component has to remember to drop.

/**
 * @typedef {{ id: string, exchange: number, role: "user", content: string, failed?: boolean }} UserTurn
 * @typedef {{ id: string, exchange: number, role: "assistant", content: string, state: "streaming"|"done"|"stopped",
 *   ttftMs?: number | null, totalMs?: number, usage?: object | null, continuation?: string | null }} ReplyTurn
 * @typedef {{ id: string, exchange: number, role: "error", error: { kind: string, message: string, status?: number,
 *   code?: string | null, retryAfter?: number } }} ErrorTurn
 * @typedef {UserTurn | ReplyTurn | ErrorTurn} Turn
 * @typedef {{ turns: Turn[], prompt: string, pending: number | null }} ChatState
 *   `pending` is the exchange whose reply is streaming, if any (the page is "busy").
 * @typedef {{ type: "input", text: string }
 *   | { type: "send", exchange: number, text: string }
 *   | { type: "delta", exchange: number, content: string }
 *   | { type: "done", exchange: number, content: string, ttftMs: number | null, totalMs: number, usage: object | null,
 *       continuation?: string | null }
 *   | { type: "fail", exchange: number, error: ErrorTurn["error"] | null, ttftMs: number | null, totalMs: number }
 *   | { type: "clear" }} ChatAction
 *   `fail` with `error: null` is a reply the user stopped.
 */

/** @type {ChatState} */
export const initialChat = { turns: [], prompt: "", pending: null };

/** The conversation sent upstream: questions that got no answer, and errors, are not part of it. */
export function historyOf(turns) {
  return turns.filter((x) => (x.role === "user" || x.role === "assistant") && !x.failed).map((x) => ({
    role: x.role,
    content: x.content,
  }));
}

/** The state after `action`. */
export function chatReducer(state, action) {
  switch (action.type) {
    case "input":
      return { ...state, prompt: action.text };
    case "send": {
      const n = action.exchange;
      return {
        turns: [
          ...state.turns,
          { id: `u${n}`, exchange: n, role: "user", content: action.text },
          { id: `a${n}`, exchange: n, role: "assistant", content: "", state: "streaming" },
        ],
        prompt: "",
        pending: n,
      };
    }
    case "delta":
      return updateReply(state, action.exchange, { content: action.content });
    case "done": {
      const { content, ttftMs, totalMs, usage } = action;
      // How the turn relates to a kept conversation (native multi-turn), when the server said.
      const fields = { content, state: "done", ttftMs, totalMs, usage };
      if (action.continuation) fields.continuation = action.continuation;
      return settle(
        updateReply(state, action.exchange, fields),
        action.exchange,
      );
    }
    case "fail":
      return settle(fail(state, action), action.exchange);
    case "clear":
      return { ...state, turns: [], pending: null };
    default:
      return state;
  }
}

const replyOf = (turns, exchange) => turns.find((x) => x.exchange === exchange && x.role === "assistant");

/** The reply of `exchange` with `fields` changed; the same state when the exchange was cleared meanwhile. */
function updateReply(state, exchange, fields) {
  if (!replyOf(state.turns, exchange)) return state;
  return {
    ...state,
    turns: state.turns.map((x) => (x.exchange === exchange && x.role === "assistant" ? { ...x, ...fields } : x)),
  };
}

/** The page is no longer busy once the pending exchange ends (an older one ending changes nothing). */
function settle(state, exchange) {
  return state.pending === exchange ? { ...state, pending: null } : state;
}

/**
 * A reply that failed or was stopped. With some text it stays, marked stopped; without, it goes, its question is
 * marked failed and put back into the box (unless something new was typed there), ready to send again.
 */
function fail(state, { exchange, error, ttftMs, totalMs }) {
  const reply = replyOf(state.turns, exchange);
  if (!reply) return state;
  const question = state.turns.find((x) => x.exchange === exchange && x.role === "user");
  let turns;
  let prompt = state.prompt;
  if (reply.content) {
    turns = state.turns.map((x) => (x === reply ? { ...x, state: "stopped", ttftMs, totalMs } : x));
  } else {
    turns = state.turns.filter((x) => x !== reply).map((x) => (x === question ? { ...x, failed: true } : x));
    prompt ||= question?.content ?? "";
  }
  if (error) turns = [...turns, { id: `e${exchange}`, exchange, role: "error", error }];
  return { ...state, turns, prompt };
}
