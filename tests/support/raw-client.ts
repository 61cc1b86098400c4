// Test support: a raw TCP client of the server under test: what it sends is the test's own bytes, what comes back is
// kept as Latin-1 text, and when the server closed is measured from the opening.
import net from "node:net";

/** A raw connection to 127.0.0.1:`port`: everything it receives, and when (ms after opening) the server closed it. */
export function rawClient(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  const t0 = Date.now();
  let received = "";
  let closedAt: number | undefined;
  const closed = new Promise<number>((resolve) => {
    socket.on("close", () => resolve(closedAt = Date.now() - t0));
  });
  socket.on("data", (b) => (received += b.toString("latin1")));
  socket.on("error", () => {});
  const connected = new Promise<void>((r) => socket.once("connect", () => r()));
  return {
    socket,
    connected,
    closed,
    received: () => received,
    closedAt: () => closedAt,
    send: (s: string | Uint8Array) => socket.write(s),
  };
}
