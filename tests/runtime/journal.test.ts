import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../lib/config.ts";
import { fileJournal, journalDirectory, JournalFileError, journalName } from "../../runtime/journal.ts";

const mode = (path: string) => statSync(path).mode & 0o777;
const scratches: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), "emohaa-journal-unit-"));
  scratches.push(dir);
  return dir;
};
after(() => scratches.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const isRoot = process.getuid?.() === 0;
const entry = (cid: string) => ({ cid, index: 0, hash: "h" });

describe("fileJournal", () => {
  it("keeps the file 0600 after remove, add and load, whatever the umask and whichever call creates it", async () => {
    const old = process.umask(0);
    try {
      for (const first of ["remove", "add", "load"] as const) {
        const path = join(scratch(), "journal");
        const j = fileJournal(path);
        assert.equal(mode(path), 0o600, `created (${first} next)`);
        if (first === "remove") j.remove("c0");
        if (first === "add") j.add(entry("c0"));
        if (first === "load") await j.load();
        j.remove("c1");
        j.add(entry("c2"));
        assert.equal(mode(path), 0o600, `after ${first}, remove, add`);
        assert.deepEqual((await j.load()).map((e) => e.cid), first === "add" ? ["c0", "c2"] : ["c2"]);
        assert.equal(mode(path), 0o600);
      }
    } finally {
      process.umask(old);
    }
  });

  it("makes a journal readable by others (0644) private, and compacts it", async () => {
    const path = join(scratch(), "journal");
    writeFileSync(path, "+ 0 h c1\n+ 0 h c2\n- c1\n");
    chmodSync(path, 0o644);
    const j = fileJournal(path);
    assert.equal(mode(path), 0o600);
    assert.deepEqual((await j.load()).map((e) => e.cid), ["c2"]);
    assert.equal(readFileSync(path, "utf8"), "+ 0 h c2\n");
  });

  it("refuses a symbolic link at the path, and never writes or truncates its target", async () => {
    const dir = scratch();
    const target = join(dir, "precious");
    writeFileSync(target, "+ 0 h planted\nsomething else\n");
    chmodSync(target, 0o600);
    const path = join(dir, "journal");
    symlinkSync(target, path);
    assert.throws(
      () => fileJournal(path),
      (err) => err instanceof JournalFileError && /symbolic link/.test(err.message),
    );
    assert.equal(readFileSync(target, "utf8"), "+ 0 h planted\nsomething else\n");
  });

  it("refuses a link planted after start at add, remove and load, leaving the target alone", async () => {
    const dir = scratch();
    const path = join(dir, "journal");
    const j = fileJournal(path);
    const target = join(dir, "precious");
    writeFileSync(target, "keep\n");
    renameSync(path, join(dir, "moved"));
    symlinkSync(target, path);
    assert.throws(() => j.add(entry("c1")), JournalFileError);
    assert.throws(() => j.remove("c1"), JournalFileError);
    await assert.rejects(j.load(), JournalFileError);
    assert.equal(readFileSync(target, "utf8"), "keep\n");
  });

  it("refuses a journal others may write (0666, 0620)", () => {
    for (const m of [0o666, 0o620]) {
      const path = join(scratch(), "journal");
      writeFileSync(path, "+ 0 h planted\n");
      chmodSync(path, m);
      assert.throws(
        () => fileJournal(path),
        (err) => err instanceof JournalFileError && /others may write/.test(err.message),
      );
      assert.equal(mode(path), m, "left as found");
    }
  });

  it("refuses a directory or a FIFO at the path without hanging", () => {
    const dir = scratch();
    mkdirSync(join(dir, "d"));
    assert.throws(() => fileJournal(join(dir, "d")), /not a regular file/);
    // A FIFO with no reader would block a plain open for writing forever.
    if (spawnSync("mkfifo", [join(dir, "fifo")]).status === 0) {
      assert.throws(() => fileJournal(join(dir, "fifo")), /not a regular file/);
    }
  });

  it("refuses a journal owned by another user", { skip: !isRoot && "needs root to give a file away" }, () => {
    const path = join(scratch(), "journal");
    writeFileSync(path, "+ 0 h planted\n", { mode: 0o600 });
    chownSync(path, 65534, 65534);
    assert.throws(
      () => fileJournal(path),
      (err) => err instanceof JournalFileError && /owned by another user/.test(err.message),
    );
    assert.equal(readFileSync(path, "utf8"), "+ 0 h planted\n");
  });

  it("end() removes a per-process journal with nothing open, keeps one with entries, and never a shared one", async () => {
    const dir = scratch();
    const a = fileJournal(join(dir, "a"), { perProcess: true });
    a.add(entry("c1"));
    a.remove("c1");
    a.end!();
    assert.ok(!existsSync(join(dir, "a")));
    const b = fileJournal(join(dir, "b"), { perProcess: true });
    b.add(entry("c1"));
    b.end!();
    assert.ok(existsSync(join(dir, "b")));
    const c = fileJournal(join(dir, "c"));
    c.end!();
    assert.ok(existsSync(join(dir, "c")));
  });
});

describe("journalDirectory", () => {
  // The directories as lib/config.ts reads them from the environment.
  const dirs = (env: Record<string, string>) => loadConfig(env).journal.directories;

  it("creates $XDG_STATE_HOME/emohaa-free-api 0700, else ~/.local/state/emohaa-free-api; $STATE_DIRECTORY first", () => {
    const base = scratch();
    const xdg = journalDirectory(dirs({ XDG_STATE_HOME: join(base, "xdg") }), join(base, "home"));
    assert.equal(xdg, join(base, "xdg", "emohaa-free-api"));
    assert.equal(mode(xdg), 0o700);
    const home = journalDirectory(dirs({ XDG_STATE_HOME: "relative/ignored" }), join(base, "home"));
    assert.equal(home, join(base, "home", ".local", "state", "emohaa-free-api"));
    assert.equal(mode(home), 0o700);
    const systemd = join(base, "systemd");
    mkdirSync(systemd, { mode: 0o755 });
    chmodSync(systemd, 0o755);
    assert.equal(
      journalDirectory(dirs({ STATE_DIRECTORY: systemd, XDG_STATE_HOME: join(base, "xdg") }), base),
      systemd,
    );
  });

  it("refuses a directory others may write, directly or through a link; follows a link to a private one (systemd's layout)", () => {
    const base = scratch();
    mkdirSync(join(base, "open", "emohaa-free-api"), { recursive: true });
    chmodSync(join(base, "open", "emohaa-free-api"), 0o777);
    assert.throws(() => journalDirectory(dirs({ XDG_STATE_HOME: join(base, "open") }), base), /others may write/);
    mkdirSync(join(base, "linked"));
    symlinkSync(join(base, "open", "emohaa-free-api"), join(base, "linked", "emohaa-free-api"));
    assert.throws(() => journalDirectory(dirs({ XDG_STATE_HOME: join(base, "linked") }), base), /others may write/);
    mkdirSync(join(base, "private", "emohaa-free-api"), { recursive: true, mode: 0o700 });
    symlinkSync(join(base, "private", "emohaa-free-api"), join(base, "state"));
    assert.equal(journalDirectory(dirs({ STATE_DIRECTORY: join(base, "state") }), base), join(base, "state"));
    writeFileSync(join(base, "file"), "");
    assert.throws(
      () => journalDirectory(dirs({ STATE_DIRECTORY: join(base, "file") }), base),
      /cannot create|not a directory/,
    );
  });
});

describe("journalName", () => {
  it("names a fixed port's journal by the port, and gives each port-0 process its own", () => {
    assert.deepEqual(journalName(8000), { name: "journal-8000", perProcess: false });
    const a = journalName(0);
    const b = journalName(0);
    assert.ok(a.perProcess && b.perProcess);
    assert.notEqual(a.name, b.name);
  });
});
