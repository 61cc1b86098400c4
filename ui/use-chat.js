// The chat as a hook: sends a turn, streams its reply into the reducer (ui/chat-state.js), stops and clears.
import { useEffect, useReducer, useRef } from "preact/hooks";
import { chatBody, ChatError, endConversation, streamChat } from "./client.js";
import { chatReducer, historyOf, initialChat } from "./chat-state.js";

/**
 * The chat's state and its actions. `onRequest({ url, body })` hears of each request (for "copy as curl");
 * `onEnd()` runs when a reply ends, however it ends (the reply used, and maybe cooled down, an account).
 */
export function useChat({ tokens, system, base, onRequest, onEnd }) {
  const [state, dispatch] = useReducer(chatReducer, initialChat);
  // The reply in flight, to stop it: written only by the handlers below, never while rendering.
  const controller = useRef(null);
  const exchanges = useRef(0);
  const busy = state.pending !== null;
  // The kept upstream conversation the transcript continues (native multi-turn), ended on "New chat".
  const conversation = useRef(null);

  /** Ends the kept conversation at once, with the bearer that made it (else it is deleted when idle). */
  function endKept(bearer = tokens) {
    const handle = conversation.current;
    conversation.current = null;
    if (handle) void endConversation(handle, { tokens: bearer, base });
  }

  // Other tokens ("Forget tokens", a new list) cannot continue it: it ends with the tokens that made it.
  const key = tokens.join(",");
  useEffect(() => {
    const bearer = tokens;
    return () => endKept(bearer);
  }, [key]);

  async function send() {
    const text = state.prompt.trim();
    if (!text || busy) return;
    const body = chatBody([...historyOf(state.turns), { role: "user", content: text }], system);
    onRequest({ url: new URL("v1/chat/completions", base).href, body });
    const exchange = ++exchanges.current;
    dispatch({ type: "send", exchange, text });
    const ac = new AbortController();
    controller.current = ac;
    const started = performance.now();
    let firstAt = null;
    try {
      const r = await streamChat({
        tokens,
        body,
        signal: ac.signal,
        base,
        onDelta: (_piece, content) => {
          firstAt ??= performance.now() - started;
          dispatch({ type: "delta", exchange, content });
        },
      });
      if (exchange === exchanges.current) conversation.current = r.conversation ?? null;
      dispatch({
        type: "done",
        exchange,
        content: r.content,
        ttftMs: r.ttftMs,
        totalMs: r.totalMs,
        usage: r.usage,
        continuation: r.continuation,
      });
    } catch (err) {
      // A stop is no error; anything that is not a ChatError is shown as a server error with its message.
      const error = ac.signal.aborted
        ? null
        : err instanceof ChatError
        ? err
        : new ChatError("server", err instanceof Error ? err.message : String(err));
      dispatch({ type: "fail", exchange, error, ttftMs: firstAt, totalMs: performance.now() - started });
    } finally {
      if (controller.current === ac) controller.current = null;
      onEnd();
    }
  }

  /** Stops the reply in flight: the server sees the connection close and deletes the upstream conversation. */
  function stop() {
    controller.current?.abort();
  }

  /** A new chat: the reply in flight is stopped, and its late updates find no exchange to change. */
  function clear() {
    stop();
    endKept();
    dispatch({ type: "clear" });
  }

  const setPrompt = (text) => dispatch({ type: "input", text });
  return { turns: state.turns, prompt: state.prompt, busy, setPrompt, send, stop, clear };
}
