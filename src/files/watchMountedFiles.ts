/**
 * Follows files that are replaced under a running countersign: the policy, a `file:` credentials
 * profile, the gRPC listener's TLS certificate, key and client CA. The rules, one set for all:
 *
 * - **Directory, not file.** Kubernetes ConfigMap and Secret volumes change by swapping a `..data`
 *   symlink in the file's directory, which a watch on the file itself misses; so each file's
 *   directory is watched, and an event there (debounced) starts a check.
 * - **Polling backstop.** `fs.watch` misses events on some filesystems, so the files are also
 *   read every `pollIntervalMs`.
 * - **Settle.** A check compares the files' content (SHA-256) with what was last reported. A
 *   change is reported only once two reads `settleMs` apart agree (at most `maxSettleRounds`
 *   reads; a change still moving after that is left to the next event or poll), so a file caught
 *   half-written is not used.
 * - **Missing final newline.** A changed file that does not end in a newline (possibly cut in the
 *   middle of a value by a writer that stalled) must also stay the same `unterminatedSettleMs`
 *   longer.
 * - **Unreadable.** A file that vanished or cannot be read is a state like any other: reported
 *   once, without settling, and again only when it changes. The caller decides what it means.
 *
 * The files are one group: a change to any of them is reported with all of them, as they settled
 * together. Checks never overlap and `onChange` is awaited, so it is never called concurrently;
 * an event during a check makes one more check after it. Nothing is reported after `stop()`.
 */
import { dirname } from "node:path";
import { MOUNTED_FILE_TIMING } from "./constants.js";
import { nodeMountedFileIo } from "./readMountedFile.js";
import type { FileSnapshot, MountedFilesChange, MountedFileTiming, MountedFileWatcher, WatchMountedFilesOptions } from "./types.js";

export function watchMountedFiles(
  paths: readonly string[],
  onChange: (change: MountedFilesChange) => void | Promise<void>,
  options: WatchMountedFilesOptions,
): MountedFileWatcher {
  const timing = resolveTiming(options.timing);
  const io = options.io ?? nodeMountedFileIo;
  const now = options.now ?? Date.now;
  let lastKey = groupKey(options.initial);
  let stopped = false;
  let checking: Promise<void> | undefined;
  let recheckRequested = false;
  let debounceTimer: NodeJS.Timeout | undefined;

  const readAll = (): Promise<FileSnapshot[]> => Promise.all(paths.map((path) => io.read(path)));

  function check(): Promise<void> {
    if (checking) {
      recheckRequested = true;
      return checking;
    }
    checking = (async () => {
      try {
        do {
          recheckRequested = false;
          await checkOnce();
        } while (recheckRequested && !stopped);
      } finally {
        checking = undefined;
      }
    })();
    return checking;
  }

  async function checkOnce(): Promise<void> {
    const startedAt = now();
    let files = await readAll();
    if (stopped || groupKey(files) === lastKey) return;
    if (files.some((f) => f.kind === "content")) {
      let settled = false;
      for (let round = 0; round < timing.maxSettleRounds && !settled && !stopped; round++) {
        await sleep(timing.settleMs);
        const again = await readAll();
        settled = groupKey(again) === groupKey(files);
        files = again;
      }
      if (!settled) return; // still being written: the next event or poll looks again
    }
    if (files.some(isUnterminated) && !stopped) {
      await sleep(timing.unterminatedSettleMs);
      if (groupKey(await readAll()) !== groupKey(files)) return; // it was still being written
    }
    if (stopped || groupKey(files) === lastKey) return;
    lastKey = groupKey(files);
    await onChange({ files, startedAt });
  }

  function onDirectoryEvent(): void {
    if (stopped) return;
    if (debounceTimer !== undefined) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      void check();
    }, timing.eventDebounceMs);
    debounceTimer.unref?.();
  }

  const watchers = new Map<string, { close(): void }>();
  for (const dir of new Set(paths.map((path) => dirname(path)))) {
    try {
      const watcher = io.watchDirectory(dir, onDirectoryEvent, (error) => {
        watcher.close();
        watchers.delete(dir);
        if (!stopped) options.onWatchFailure?.({ dir, error, when: "watching" });
      });
      watchers.set(dir, watcher);
    } catch (error) {
      options.onWatchFailure?.({ dir, error, when: "start" });
    }
  }
  const pollTimer = setInterval(() => void check(), timing.pollIntervalMs);
  pollTimer.unref?.();

  return {
    stop() {
      stopped = true;
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
      clearInterval(pollTimer);
      if (debounceTimer !== undefined) clearTimeout(debounceTimer);
      debounceTimer = undefined;
    },
  };
}

function resolveTiming(overrides: Partial<MountedFileTiming> = {}): MountedFileTiming {
  return {
    pollIntervalMs: overrides.pollIntervalMs ?? MOUNTED_FILE_TIMING.pollIntervalMs,
    eventDebounceMs: overrides.eventDebounceMs ?? MOUNTED_FILE_TIMING.eventDebounceMs,
    settleMs: overrides.settleMs ?? MOUNTED_FILE_TIMING.settleMs,
    maxSettleRounds: overrides.maxSettleRounds ?? MOUNTED_FILE_TIMING.maxSettleRounds,
    unterminatedSettleMs: overrides.unterminatedSettleMs ?? MOUNTED_FILE_TIMING.unterminatedSettleMs,
  };
}

/** One string that changes whenever any file of the group does. */
function groupKey(files: readonly FileSnapshot[]): string {
  return files.map((f) => f.key).join("\n");
}

/** Content that does not end in a newline (an empty file included): a writer may have stopped mid-value. */
function isUnterminated(file: FileSnapshot): boolean {
  return file.kind === "content" && file.bytes.at(-1) !== 0x0a;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
