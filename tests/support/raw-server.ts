// Test support: a raw HTTP/1.1 server over node:net whose every byte and close a test controls (hostile upstreams for
// the upstream client and the gateway).
import { createServer, type Server, type Socket } from "node:net";

/**
 * A raw TCP server that answers each request head with what `respond` writes: the tests control every byte and
 * every close. It counts connections and records the requests it got.
 */
export async function rawServer(respond: (sock: Socket, request: string, n: number) => void | Promise<void>) {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  let connections = 0;
  let closed = 0;
  const server: Server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        requests.push(head);
        void respond(sock, head, requests.length);
      }
    });
    sock.on("close", () => {
      closed++;
      sockets.delete(sock);
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    get closed() {
      return closed;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
