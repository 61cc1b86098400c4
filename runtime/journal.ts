// Journal stores: an append-only file (sync writes survive kill -9) in a private directory, or Deno KV where there is no disk.
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type JournalEntry, journalLine, type JournalStore, replayJournal } from "../lib/chat/journal.ts";
import { type Config, ConfigError } from "../lib/config.ts";

declare const Deno: any;

/** Why a journal file or its directory cannot be used; `openJournal` turns it into a start-up error naming JOURNAL_FILE. */
export class JournalFileError extends Error {
  override name = "JournalFileError";
}

const { O_APPEND, O_CREAT, O_EXCL, O_RDWR, O_WRONLY } = constants;
// Windows has neither (nor POSIX owners and modes: the checks below that need them are skipped there).
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;
const posix = process.platform !== "win32";
const myUid = () => process.getuid?.();

/**
 * Opens the journal as only its owner's private regular file: never through a symbolic link, never blocking on a
 * FIFO planted there (O_NONBLOCK), created 0600 and only where nothing exists (O_EXCL), and refused when another
 * user owns it or anyone else may write it (they could plant lines for the server to act on). A file left more
 * open (0644) is made 0600.
 *
 * O_NOFOLLOW alone is not enough: Deno, when run with --allow-read/--allow-write lists rather than -A, resolves
 * the path for its permission check and opens the link's target. So the path is lstat'ed first, and after the open
 * the descriptor must be the very file the path names (same device and inode), before anything is read or written.
 */
function openChecked(path: string, flags: number): number {
  const fail = (why: string): never => {
    throw new JournalFileError(why);
  };
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? "error";
  let before: ReturnType<typeof lstatSync> | undefined;
  try {
    before = lstatSync(path);
  } catch (err) {
    if (code(err) !== "ENOENT") fail(`cannot read it (${code(err)})`);
  }
  if (before?.isSymbolicLink()) fail("it is a symbolic link");
  if (before && !before.isFile()) fail("it is not a regular file");
  let fd = -1;
  try {
    fd = openSync(path, flags | O_NOFOLLOW | O_NONBLOCK | (before ? 0 : O_CREAT | O_EXCL), 0o600);
  } catch (err) {
    if (code(err) === "ELOOP") fail("it is a symbolic link");
    if (code(err) === "EISDIR" || code(err) === "ENXIO") fail("it is not a regular file");
    fail(`cannot open it (${code(err)})`);
  }
  try {
    const st = fstatSync(fd);
    const now = lstatSync(path);
    if (now.isSymbolicLink()) fail("it is a symbolic link");
    if (!st.isFile()) fail("it is not a regular file");
    if (st.ino !== now.ino || st.dev !== now.dev) fail("it was replaced while being opened");
    const uid = myUid();
    if (uid !== undefined && st.uid !== uid) fail(`it is owned by another user (uid ${st.uid})`);
    if (posix && st.mode & 0o022) fail(`others may write it (mode ${(st.mode & 0o777).toString(8)})`);
    if (posix && (st.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Runs `f` on the journal opened by `openChecked`, closing it after. */
function withJournal<T>(path: string, flags: number, f: (fd: number) => T): T {
  const fd = openChecked(path, flags);
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The directory for the default journal, created 0700: `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else
 * `$XDG_STATE_HOME/emohaa-free-api`, else `~/.local/state/emohaa-free-api`. Refused (JournalFileError) when it is
 * not a directory of this user that no one else may write. A link to one is fine (systemd's `DynamicUser=` makes
 * the state directory a link into /var/lib/private): the check is on the directory it leads to.
 */
export function journalDirectory(where: Config["journal"]["directories"], home: string): string {
  const dir = where.stateDirectory || join(where.xdgStateHome ?? join(home, ".local", "state"), "emohaa-free-api");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new JournalFileError(
      `cannot create its directory ${dir} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const st = statSync(dir);
  const uid = myUid();
  if (!st.isDirectory()) throw new JournalFileError(`${dir} is not a directory`);
  if (uid !== undefined && st.uid !== uid) {
    throw new JournalFileError(`its directory ${dir} is owned by another user (uid ${st.uid})`);
  }
  if (posix && st.mode & 0o022) {
    throw new JournalFileError(`others may write its directory ${dir} (mode ${(st.mode & 0o777).toString(8)})`);
  }
  return dir;
}

/**
 * The default journal's file name. A fixed port names it, so the next process on that port recovers what a crash
 * left. Port 0 (any free port) gets a name of its own, as two such processes must never share one: nothing
 * recovers it later (set JOURNAL_FILE for that), and a clean shutdown removes it.
 */
export function journalName(port: number): { name: string; perProcess: boolean } {
  if (port !== 0) return { name: `journal-${port}`, perProcess: false };
  return { name: `journal-any-port-${process.pid}-${crypto.randomUUID().slice(0, 8)}`, perProcess: true };
}

/**
 * An append-only file of `journalLine`s (lib/chat/journal.ts), compacted on load. Checked now
 * (throws JournalFileError) and at every open. With `perProcess`, `end()` removes the file when nothing is open.
 */
export function fileJournal(path: string, options: { perProcess?: boolean } = {}): JournalStore {
  withJournal(path, O_WRONLY | O_APPEND, () => {});
  const append = (line: string) => withJournal(path, O_WRONLY | O_APPEND, (fd) => void writeSync(fd, line));
  return {
    async load() {
      return withJournal(path, O_RDWR, (fd) => {
        const entries = replayJournal(readFileSync(fd, "utf8"));
        const compact = new TextEncoder().encode(entries.map(journalLine.add).join(""));
        ftruncateSync(fd, 0);
        // Positional: reading moved the offset to the old end.
        writeSync(fd, compact, 0, compact.length, 0);
        return entries;
      });
    },
    add: (e: JournalEntry) => append(journalLine.add(e)),
    remove: (cid: string) => append(journalLine.remove(cid)),
    end() {
      if (!options.perProcess) return;
      const open = withJournal(path, O_RDWR, (fd) => replayJournal(readFileSync(fd, "utf8")).length);
      if (open === 0) unlinkSync(path);
    },
  };
}

/**
 * Deno KV (on Deno Deploy, or on Deno with KV enabled: deno.json's `"unstable": ["kv"]`, or `--unstable-kv`): one
 * key per open conversation. `path`: a local database file (Deno then needs --allow-read and --allow-write for it);
 * absent: Deno's default database, the platform's own on Deno Deploy.
 */
export async function kvJournal(path?: string): Promise<JournalStore> {
  if (typeof Deno === "undefined" || typeof Deno.openKv !== "function") {
    throw new Error("Deno KV is not available on this runtime");
  }
  const kv = await Deno.openKv(path);
  return {
    async load() {
      const out: JournalEntry[] = [];
      for await (const item of kv.list({ prefix: ["emohaa-journal"] })) out.push(item.value as JournalEntry);
      return out;
    },
    add: async (e: JournalEntry) => void (await kv.set(["emohaa-journal", e.cid], e)),
    remove: async (cid: string) => void (await kv.delete(["emohaa-journal", cid])),
  };
}

/**
 * Opens the crash journal `config` names (lib/start.ts asks only with server-side tokens and a journal not `off`):
 * Deno KV, `JOURNAL_FILE`, else a file in the private state directory the configuration names (`journalDirectory`).
 * What cannot be used stops the start: a ConfigError naming the setting.
 */
export async function openJournal(config: Config): Promise<JournalStore> {
  if (config.journal.kind === "kv") {
    return kvJournal(config.journal.kvPath).catch((err) => {
      const what = config.journal.kvPath ? `JOURNAL_KV_PATH=${JSON.stringify(config.journal.kvPath)}` : "JOURNAL=kv";
      const why = err instanceof Error ? err.message : "Deno KV cannot be opened";
      throw new ConfigError(`Invalid ${what}: ${why} (run with --unstable-kv, or use JOURNAL=file)`);
    });
  }
  let path = config.journal.file;
  try {
    if (path) return fileJournal(path);
    const { name, perProcess } = journalName(config.port);
    path = join(journalDirectory(config.journal.directories, homedir()), name);
    return fileJournal(path, { perProcess });
  } catch (err) {
    if (!(err instanceof JournalFileError)) throw err;
    const what = config.journal.file
      ? `Invalid JOURNAL_FILE=${JSON.stringify(path)}`
      : `Cannot use the crash journal ${path ?? "directory"}`;
    throw new ConfigError(
      `${what}: ${err.message}; it must be a regular file of this user that no one else may write ` +
        "(set JOURNAL_FILE, or JOURNAL=off)",
    );
  }
}
