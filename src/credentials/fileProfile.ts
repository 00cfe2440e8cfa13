import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { FileCredentialSpec } from "../policy/types.js";
import { FILE_POLL_INTERVAL_MS, FILE_SETTLE_MS, FILE_UNTERMINATED_SETTLE_MS } from "./constants.js";
import { createCredentialStore } from "./credentialStore.js";
import { parseSharedCredentials } from "./parseSharedCredentials.js";
import { describeError } from "./redact.js";
import type { CredentialEvents, CredentialLogger, CredentialProfile, FileWatchOptions } from "./types.js";

export interface FileProfileOptions extends FileWatchOptions {
  readonly name: string;
  readonly spec: FileCredentialSpec;
  readonly now: () => number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
}

/** A changed file that has not read the same twice after this many settle rounds is skipped until the next check. */
const MAX_SETTLE_ROUNDS = 5;

type Snapshot =
  | { readonly kind: "content"; readonly key: string; readonly text: string }
  | { readonly kind: "unreadable"; readonly key: string; readonly error: string };

/**
 * Credentials from an AWS shared-credentials file, re-read when it changes.
 * Kubernetes Secret volumes change by swapping the `..data` symlink in the file's directory, which a
 * watch on the file itself misses: so the directory is watched, and the content is also polled as a
 * backstop. A changed file is used only once it reads the same twice `settleMs` apart (a file not
 * ending in a newline must also stay the same for `unterminatedSettleMs`) and holds a
 * complete profile; a half-written, unparsable or vanished file keeps the last good set (and counts
 * as a failed refresh, logged once per distinct content).
 */
export function createFileProfile(options: FileProfileOptions): CredentialProfile {
  const { name, spec, now } = options;
  const pollIntervalMs = options.pollIntervalMs ?? FILE_POLL_INTERVAL_MS;
  const settleMs = options.settleMs ?? FILE_SETTLE_MS;
  const unterminatedSettleMs = options.unterminatedSettleMs ?? FILE_UNTERMINATED_SETTLE_MS;
  const store = createCredentialStore({
    profile: name,
    source: "file",
    now,
    ...(options.events ? { events: options.events } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  let lastObservedKey: string | undefined;
  let checking: Promise<void> | undefined;
  let recheckRequested = false;
  let startPromise: Promise<void> | undefined;
  let stopped = false;
  let watcher: FSWatcher | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;

  function check(settle: boolean): Promise<void> {
    if (checking) {
      recheckRequested = true;
      return checking;
    }
    checking = (async () => {
      try {
        let settleThisRound = settle;
        do {
          recheckRequested = false;
          await checkOnce(settleThisRound);
          settleThisRound = true;
        } while (recheckRequested && !stopped);
      } finally {
        checking = undefined;
      }
    })();
    return checking;
  }

  async function checkOnce(settle: boolean): Promise<void> {
    const startedAt = now();
    let snapshot = await readSnapshot(spec.path);
    if (snapshot.key === lastObservedKey) return;
    if (settle && snapshot.kind === "content") {
      let settled = false;
      for (let round = 0; round < MAX_SETTLE_ROUNDS && !settled && !stopped; round++) {
        await sleep(settleMs);
        const again = await readSnapshot(spec.path);
        settled = again.key === snapshot.key;
        snapshot = again;
      }
      if (!settled) return; // still being written: the next event or poll looks again
    }
    if (settle && snapshot.kind === "content" && !snapshot.text.endsWith("\n") && !stopped) {
      // A change possibly cut mid-value (a secret truncated by a stalled writer would sign every
      // request wrongly): wait longer before believing it. Not at start, where there is no last
      // good set to keep and the file is read once, as it is.
      await sleep(unterminatedSettleMs);
      const again = await readSnapshot(spec.path);
      if (again.key !== snapshot.key) return; // it was still being written
    }
    if (stopped) return;
    lastObservedKey = snapshot.key;
    const durationMs = Math.max(0, now() - startedAt);
    if (snapshot.kind === "unreadable") {
      store.recordFailure(`${spec.path}: ${snapshot.error}${keeping()}`, durationMs);
      return;
    }
    const parsed = parseSharedCredentials(snapshot.text, spec.profile);
    if (parsed.ok) store.recordSuccess(parsed.credentials, durationMs);
    else store.recordFailure(`${spec.path}: ${parsed.error}${keeping()}`, durationMs);
  }

  function keeping(): string {
    return store.held() ? "; keeping the last good credentials" : "";
  }

  function onDirectoryEvent(): void {
    if (stopped) return;
    if (debounceTimer !== undefined) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      void check(true);
    }, settleMs);
    debounceTimer.unref?.();
  }

  function startWatching(): void {
    try {
      watcher = watch(dirname(spec.path), { persistent: false }, onDirectoryEvent);
      watcher.on("error", (err: unknown) => {
        options.logger?.warn(
          { profile: name, source: "file", path: spec.path, error: describeError(err) },
          "credentials directory watch failed; polling only",
        );
        watcher?.close();
        watcher = undefined;
      });
    } catch (err) {
      options.logger?.warn(
        { profile: name, source: "file", path: spec.path, error: describeError(err) },
        "cannot watch the credentials directory; polling only",
      );
    }
    pollTimer = setInterval(() => void check(true), pollIntervalMs);
    pollTimer.unref?.();
  }

  return {
    name,
    source: "file",
    current: store.current,
    status: store.status,
    start() {
      startPromise ??= (async () => {
        await check(false);
        if (!stopped) startWatching();
      })();
      return startPromise;
    },
    stop() {
      stopped = true;
      watcher?.close();
      watcher = undefined;
      if (pollTimer !== undefined) clearInterval(pollTimer);
      if (debounceTimer !== undefined) clearTimeout(debounceTimer);
      pollTimer = undefined;
      debounceTimer = undefined;
    },
  };
}

async function readSnapshot(path: string): Promise<Snapshot> {
  try {
    const text = await readFile(path, "utf8");
    return { kind: "content", key: `sha256:${createHash("sha256").update(text).digest("hex")}`, text };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unknown";
    const error = code === "ENOENT" ? "file not found (ENOENT)" : `cannot read the file (${code})`;
    return { kind: "unreadable", key: `error:${code}`, error };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
