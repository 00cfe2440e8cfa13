/**
 * The mounted-file watcher's rules, run on an in-memory file system under fake time with the
 * production timings (MOUNTED_FILE_TIMING), so every boundary is exact and nothing depends on how
 * loaded the machine is. The real file system (fs.watch, a Kubernetes `..data` swap, a replaced
 * directory) is exercised through its users: src/credentials/fileProfile.spec.ts,
 * test/ops/reload.spec.ts, test/ops/mtls.spec.ts and test/security/faults.spec.ts.
 */
import { dirname } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MOUNTED_FILE_TIMING as T } from "./constants.js";
import { MemoryFiles } from "./testing/memoryFiles.js";
import type { MountedFilesChange, MountedFileWatcher, WatchFailure } from "./types.js";
import { watchMountedFiles } from "./watchMountedFiles.js";

const A = "/mnt/secret/credentials";
let fs: MemoryFiles;
let changes: MountedFilesChange[];
let failures: WatchFailure[];
let watcher: MountedFileWatcher | undefined;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000, toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
  fs = new MemoryFiles();
  changes = [];
  failures = [];
});

afterEach(() => {
  watcher?.stop();
  watcher = undefined;
  vi.useRealTimers();
});

/** Starts watching `paths` as they are now; `onChange` records by default. */
async function watch(paths: readonly string[], onChange: (c: MountedFilesChange) => void | Promise<void> = (c) => void changes.push(c)): Promise<void> {
  const initial = await Promise.all(paths.map((p) => fs.read(p)));
  watcher = watchMountedFiles(paths, onChange, { initial, io: fs, onWatchFailure: (f) => failures.push(f) });
}

/** Starts watching A, which holds `text`. */
async function watchA(text: string): Promise<void> {
  fs.write(A, text);
  await watch([A]);
}

const texts = (c: MountedFilesChange | undefined): string[] => (c?.files ?? []).map((f) => (f.kind === "content" ? f.bytes.toString("utf8") : `<${f.error}>`));
const advance = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

describe("one set of timings", () => {
  it("polls every 5 s, debounces directory events by 50 ms, settles for 300 ms (at most 5 reads), and waits 2 s more for a file without a final newline", () => {
    expect(T).toEqual({ pollIntervalMs: 5_000, eventDebounceMs: 50, settleMs: 300, maxSettleRounds: 5, unterminatedSettleMs: 2_000 });
  });
});

describe("watchMountedFiles", () => {
  it("reports a change seen by the directory watch once two reads settleMs apart agree, and not a moment before", async () => {
    await watchA("one\n");
    fs.write(A, "two\n");
    await advance(T.eventDebounceMs + T.settleMs - 1);
    expect(changes).toEqual([]);
    await advance(1);
    expect(changes.map(texts)).toEqual([["two\n"]]);
    expect(changes[0]?.startedAt).toBe(1_000_000 + T.eventDebounceMs);
  });

  it("watches each file's directory, not the file (where Kubernetes swaps ..data), once per directory", async () => {
    fs.write("/mnt/tls/tls.crt", "c\n");
    fs.write("/mnt/tls/tls.key", "k\n");
    fs.write("/mnt/ca/ca.crt", "a\n");
    await watch(["/mnt/tls/tls.crt", "/mnt/tls/tls.key", "/mnt/ca/ca.crt"]);
    expect(fs.watchedDirectories()).toEqual(["/mnt/tls", "/mnt/ca"]);
    fs.event("/mnt/tls"); // what a `..data` rename raises: an event naming ..data, not the file
    fs.write("/mnt/tls/tls.crt", "c2\n", { quietly: true });
    fs.event("/mnt/tls");
    await advance(T.eventDebounceMs + T.settleMs);
    expect(changes.map(texts)).toEqual([["c2\n", "k\n", "a\n"]]);
  });

  it("never reports a file still being written: three parts under settleMs apart are reported once, complete", async () => {
    await watchA("[default]\n");
    fs.write(A, "[default]\naws_access_key_id = AKIA1\n");
    await advance(T.settleMs - 100);
    fs.write(A, "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n");
    await advance(T.settleMs - 100);
    fs.write(A, "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cret\n");
    await advance(T.pollIntervalMs * 3);
    expect(changes.map(texts)).toEqual([["[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s3cret\n"]]);
  });

  it("leaves a change still moving after maxSettleRounds reads to the next event or poll, then reports it once it holds", async () => {
    await watchA("v0\n");
    let version = 0;
    fs.beforeRead = () => fs.write(A, `v${++version}\n`, { quietly: true }); // changes before every read
    const readsBefore = fs.reads;
    await advance(T.pollIntervalMs + T.settleMs * T.maxSettleRounds);
    expect(fs.reads - readsBefore).toBe(1 + T.maxSettleRounds);
    expect(changes).toEqual([]);
    fs.beforeRead = undefined;
    await advance(T.pollIntervalMs + T.settleMs);
    expect(changes.map(texts)).toEqual([[`v${version}\n`]]);
  });

  it.each([
    ["a changed file without a final newline", "key = new"],
    ["an empty file (truncated before it was written)", ""],
  ])("uses %s only once it has also stayed the same unterminatedSettleMs longer", async (_, text) => {
    await watchA("key = old\n");
    fs.write(A, text);
    await advance(T.eventDebounceMs + T.settleMs + T.unterminatedSettleMs - 1);
    expect(changes).toEqual([]);
    await advance(1);
    expect(changes.map(texts)).toEqual([[text]]);
  });

  it("never reports a value cut mid-line by a writer that stalls past the settle time but completes within the newline wait", async () => {
    await watchA("secret = old\n");
    fs.write(A, "secret = ne");
    await advance(T.eventDebounceMs + T.settleMs + T.unterminatedSettleMs / 2);
    fs.write(A, "secret = new-and-complete\n");
    await advance(T.pollIntervalMs * 2);
    expect(changes.map(texts)).toEqual([["secret = new-and-complete\n"]]);
  });

  it("reports a vanished file at once and only once, and its return again, even with the content it had", async () => {
    await watchA("one\n");
    fs.remove(A);
    await advance(T.eventDebounceMs);
    expect(changes.map(texts)).toEqual([["<file not found (ENOENT)>"]]);
    fs.event(dirname(A));
    await advance(T.pollIntervalMs * 3);
    expect(changes).toHaveLength(1);
    fs.write(A, "one\n");
    await advance(T.eventDebounceMs + T.settleMs);
    expect(changes.map(texts)).toEqual([["<file not found (ENOENT)>"], ["one\n"]]);
  });

  it("never reports an unchanged file, however often directory events and polls come", async () => {
    await watchA("same\n");
    for (let i = 0; i < 20; i++) {
      fs.event(dirname(A));
      await advance(T.pollIntervalMs / 4);
    }
    expect(fs.reads).toBeGreaterThan(20);
    expect(changes).toEqual([]);
  });

  it("finds through the poll a change the directory watch never saw", async () => {
    await watchA("one\n");
    fs.write(A, "two\n", { quietly: true });
    await advance(T.pollIntervalMs + T.settleMs - 1);
    expect(changes).toEqual([]);
    await advance(1);
    expect(changes.map(texts)).toEqual([["two\n"]]);
  });

  it("polls on when a directory cannot be watched, or its watch fails later, and says so", async () => {
    fs.unwatchable.add("/mnt/a");
    fs.write("/mnt/a/x", "x1\n");
    fs.write("/mnt/b/y", "y1\n");
    await watch(["/mnt/a/x", "/mnt/b/y"]);
    expect(failures).toEqual([{ dir: "/mnt/a", error: new Error("ENOSPC: cannot watch /mnt/a"), when: "start" }]);
    fs.failWatch("/mnt/b", new Error("EIO"));
    expect(failures.at(-1)).toEqual({ dir: "/mnt/b", error: new Error("EIO"), when: "watching" });
    expect(fs.watchedDirectories()).toEqual([]);
    fs.write("/mnt/b/y", "y2\n");
    await advance(T.pollIntervalMs + T.settleMs);
    expect(changes.map(texts)).toEqual([["x1\n", "y2\n"]]);
  });

  it("reports files changed together as one change holding all of them, in the order given", async () => {
    fs.write("/mnt/tls/tls.crt", "cert-1\n");
    fs.write("/mnt/tls/tls.key", "key-1\n");
    await watch(["/mnt/tls/tls.crt", "/mnt/tls/tls.key"]);
    fs.write("/mnt/tls/tls.key", "key-2\n");
    await advance(T.settleMs - 100);
    fs.write("/mnt/tls/tls.crt", "cert-2\n");
    await advance(T.pollIntervalMs);
    expect(changes.map(texts)).toEqual([["cert-2\n", "key-2\n"]]);
  });

  it("never calls onChange while a previous call is running; a change made meanwhile is reported after it", async () => {
    fs.write(A, "one\n");
    let running = 0;
    let most = 0;
    let release: () => void = () => undefined;
    await watch([A], async (c) => {
      running++;
      most = Math.max(most, running);
      changes.push(c);
      await new Promise<void>((resolve) => (release = resolve));
      running--;
    });
    fs.write(A, "two\n");
    await advance(T.eventDebounceMs + T.settleMs);
    expect(changes.map(texts)).toEqual([["two\n"]]);
    fs.write(A, "three\n");
    await advance(T.pollIntervalMs * 2);
    expect(changes).toHaveLength(1);
    release();
    await advance(T.settleMs);
    expect(changes.map(texts)).toEqual([["two\n"], ["three\n"]]);
    release();
    expect(most).toBe(1);
  });

  it("reports nothing after stop(), not even a change it was settling, and leaves no timer or watch behind", async () => {
    await watchA("one\n");
    fs.write(A, "two\n");
    await advance(T.eventDebounceMs + 10); // mid-settle
    watcher?.stop();
    await advance(T.pollIntervalMs * 3);
    expect(changes).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    expect(fs.watchedDirectories()).toEqual([]);
  });
});
