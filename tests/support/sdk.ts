// Test support: the openai SDK pointed at a gateway, as the e2e files use it (no retries: a test sees every answer).
import OpenAI from "openai";

export const sdkClient = (url: string, token: string) =>
  new OpenAI({ apiKey: token, baseURL: `${url}/v1`, maxRetries: 0 });
