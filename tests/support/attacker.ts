// Test support: a hostile client in its own process (so its reconnect storm does not slow the test's own requests):
// holds N connections to 127.0.0.1:PORT, half silent, half idle after one request, each reopened when closed.
// Usage: attacker.ts PORT N
import net from "node:net";

const [port, count] = process.argv.slice(2).map(Number) as [number, number];
const attack = (n: number) => {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  s.on("data", () => {});
  if (n % 2) s.on("connect", () => s.write("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  s.on("close", () => setTimeout(() => attack(n), 5));
};
for (let i = 0; i < count; i++) attack(i);
console.log("attacking");
