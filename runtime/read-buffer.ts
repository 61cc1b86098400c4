// The buffer a Deno connection reads into (Deno.Conn.read fills a buffer the caller gives): sized to what the
// connection's reads bring. A read is pending on every open connection, each with its own buffer, so a fixed 16 KB
// was 32 MB at a thousand streams (two connections each) of which a streamed piece uses a hundred bytes. It starts
// small, grows while reads fill it (a large body), and goes back to small after a read that used little of it.

/** The size a connection starts with, and goes back to. */
export const SMALL = 1024;
/** The most a read takes at once. */
export const LARGE = 64 * 1024;

export interface ReadBuffer {
  /** The buffer for the next read (the bytes of the last one are overwritten: copy what is kept). */
  next(): Uint8Array;
  /** Tells how many bytes the last read brought. */
  filled(n: number): void;
}

export function readBuffer(small = SMALL, large = LARGE): ReadBuffer {
  let buf = new Uint8Array(small);
  return {
    next: () => buf,
    filled(n) {
      if (n === buf.length && buf.length < large) buf = new Uint8Array(Math.min(large, buf.length * 4));
      else if (n <= small / 2 && buf.length > small) buf = new Uint8Array(small);
    },
  };
}
