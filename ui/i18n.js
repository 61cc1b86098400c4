// The playground's text in English and Chinese, chosen by the browser's language.

const en = {
  title: "Emohaa Playground",
  subtitle: "OpenAI-compatible gateway",
  docs: "API docs",
  openapi: "OpenAPI JSON",
  settings: "Settings",
  tokens: "Tokens",
  tokensPlaceholder: "Paste one or more Emohaa tokens, one per line or separated by commas (or this server's API key, if it holds the tokens)",
  tokensPrivacy: "Tokens stay in this browser's localStorage only. They are sent to this server with your requests and nowhere else.",
  check: "Check",
  checking: "Checking…",
  forget: "Forget tokens",
  forgotten: "Tokens removed from this browser.",
  live: "live",
  expired: "expired",
  checkFailed: "check failed",
  system: "System message",
  optional: "optional",
  systemPlaceholder: "For example: Answer briefly and warmly.",
  lastRequest: "Last request",
  copyCurl: "Copy as curl",
  copied: "Copied. Set EMOHAA_TOKENS before running it.",
  copyFailed: "Copy failed: select the command below and copy it by hand.",
  showCurl: "Show the command",
  noRequest: "Send a message first.",
  chat: "Chat",
  empty: "Paste a token on the left, then say hello. Replies stream in as Emohaa writes them.",
  emptyNarrow: "Paste a token above, then say hello.",
  you: "You",
  assistant: "Emohaa",
  message: "Message",
  messagePlaceholder: "Message Emohaa…",
  keysHint: "Enter to send · Shift+Enter for a new line · Esc to stop",
  send: "Send",
  stop: "Stop",
  newChat: "New chat",
  thinking: "Waiting for the first words…",
  stopped: "Stopped",
  ttft: "first token {ms}",
  total: "total {ms}",
  usage: "{total} tokens ({prompt} in + {completion} out, estimated)",
  errMissing: "A token is needed",
  errAuth: "Token expired or invalid",
  errRate: "Rate limited",
  errBusy: "The account is busy",
  errUpstream: "Emohaa is unavailable",
  errTimeout: "Emohaa did not answer in time",
  errInvalid: "The request was refused",
  errNetwork: "Cannot reach this server",
  errServer: "Server error",
  errStream: "The reply broke off",
  retryAfter: "Retry after {s} s.",
  status: "HTTP {status}",
};

/** @type {typeof en} */
const zh = {
  title: "Emohaa 调试台",
  subtitle: "OpenAI 兼容网关",
  docs: "API 文档",
  openapi: "OpenAPI JSON",
  settings: "设置",
  tokens: "令牌",
  tokensPlaceholder: "粘贴一个或多个 Emohaa 令牌，每行一个或用逗号分隔（若本服务器自带令牌，则填它的 API key）",
  tokensPrivacy: "令牌只保存在本浏览器的 localStorage 中，仅随请求发送到本服务器，不会发往其他地方。",
  check: "检测",
  checking: "检测中…",
  forget: "清除令牌",
  forgotten: "已从本浏览器清除令牌。",
  live: "有效",
  expired: "已失效",
  checkFailed: "检测失败",
  system: "系统消息",
  optional: "可选",
  systemPlaceholder: "例如：请简短、温和地回答。",
  lastRequest: "上一次请求",
  copyCurl: "复制为 curl",
  copied: "已复制。运行前请先设置 EMOHAA_TOKENS。",
  copyFailed: "复制失败：请选中下方命令手动复制。",
  showCurl: "显示命令",
  noRequest: "请先发送一条消息。",
  chat: "对话",
  empty: "在左侧粘贴令牌，然后打个招呼。回复会随 Emohaa 的书写实时显示。",
  emptyNarrow: "在上方粘贴令牌，然后打个招呼。",
  you: "你",
  assistant: "Emohaa",
  message: "消息",
  messagePlaceholder: "给 Emohaa 发消息…",
  keysHint: "Enter 发送 · Shift+Enter 换行 · Esc 停止",
  send: "发送",
  stop: "停止",
  newChat: "新对话",
  thinking: "等待第一个字…",
  stopped: "已停止",
  ttft: "首字 {ms}",
  total: "总计 {ms}",
  usage: "{total} 个 token（输入 {prompt} + 输出 {completion}，估算）",
  errMissing: "需要令牌",
  errAuth: "令牌已失效或无效",
  errRate: "请求过于频繁",
  errBusy: "该账号正忙",
  errUpstream: "Emohaa 服务不可用",
  errTimeout: "Emohaa 响应超时",
  errInvalid: "请求被拒绝",
  errNetwork: "无法连接到本服务器",
  errServer: "服务器错误",
  errStream: "回复中途中断",
  retryAfter: "请在 {s} 秒后重试。",
  status: "HTTP {status}",
};

/** Every text of the page, by language. */
export const TEXT = { en, zh };

/** "zh" when the browser lists Chinese before English among its languages, else "en". */
export function pickLanguage(languages) {
  for (const l of languages ?? []) {
    const lower = String(l).toLowerCase();
    if (lower.startsWith("zh")) return "zh";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

/** A translate function for `lang`: `t("ttft", { ms: "120 ms" })`. */
export function translator(lang) {
  const table = lang === "zh" ? zh : en;
  return (key, vars = {}) => (table[key] ?? en[key] ?? key).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}
