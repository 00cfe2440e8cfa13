import { readMountedFile, watchMountedFiles, type FileSnapshot, type MountedFilesChange, type MountedFileWatcher } from "../files/index.js";
import type { FileCredentialSpec } from "../policy/types.js";
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

/**
 * Credentials from an AWS shared-credentials file, read once at start (as it is) and then followed
 * by the mounted-file watcher (src/files/watchMountedFiles.ts: the directory watch for Kubernetes'
 * `..data` swap, the polling backstop, the settle and missing-newline rules). A change is used only
 * if it holds a complete profile; an unparsable or vanished file keeps the last good set (and counts
 * as a failed refresh, logged once per distinct content).
 */
export function createFileProfile(options: FileProfileOptions): CredentialProfile {
  const { name, spec, now, events, logger } = options;
  const store = createCredentialStore({ profile: name, source: "file", now, events, logger });
  let startPromise: Promise<void> | undefined;
  let stopped = false;
  let watcher: MountedFileWatcher | undefined;

  function use(snapshot: FileSnapshot, durationMs: number): void {
    if (snapshot.kind === "unreadable") {
      store.recordFailure(`${spec.path}: ${snapshot.error}${keeping()}`, durationMs);
      return;
    }
    const parsed = parseSharedCredentials(snapshot.bytes.toString("utf8"), spec.profile);
    if (parsed.ok) store.recordSuccess(parsed.credentials, durationMs);
    else store.recordFailure(`${spec.path}: ${parsed.error}${keeping()}`, durationMs);
  }

  function keeping(): string {
    return store.held() ? "; keeping the last good credentials" : "";
  }

  return {
    name,
    source: "file",
    current: store.current,
    status: store.status,
    start() {
      startPromise ??= (async () => {
        // At start there is no last good set to keep: the file is used as it is, without settling.
        const startedAt = now();
        const initial = await readMountedFile(spec.path);
        if (stopped) return;
        use(initial, Math.max(0, now() - startedAt));
        const { pollIntervalMs, eventDebounceMs, settleMs, maxSettleRounds, unterminatedSettleMs } = options;
        const onChange = ({ files: [file = initial], startedAt: began }: MountedFilesChange): void => use(file, Math.max(0, now() - began));
        watcher = watchMountedFiles([spec.path], onChange, {
          initial: [initial],
          timing: { pollIntervalMs, eventDebounceMs, settleMs, maxSettleRounds, unterminatedSettleMs },
          now,
          onWatchFailure: ({ error, when }) =>
            logger?.warn(
              { profile: name, source: "file", path: spec.path, error: describeError(error) },
              when === "start" ? "cannot watch the credentials directory; polling only" : "credentials directory watch failed; polling only",
            ),
        });
      })();
      return startPromise;
    },
    stop() {
      stopped = true;
      watcher?.stop();
      watcher = undefined;
    },
  };
}
