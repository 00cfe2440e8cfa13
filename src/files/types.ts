/** One read of a followed file: its bytes, or why it could not be read. */
export type FileSnapshot =
  | { readonly kind: "content"; readonly path: string; readonly key: string; readonly bytes: Buffer }
  | { readonly kind: "unreadable"; readonly path: string; readonly key: string; readonly code: string; readonly error: string };

export interface MountedFileTiming {
  readonly pollIntervalMs: number;
  readonly eventDebounceMs: number;
  readonly settleMs: number;
  readonly maxSettleRounds: number;
  readonly unterminatedSettleMs: number;
}

/** What the watcher reports: every file, in the order given, as it settled. */
export interface MountedFilesChange {
  readonly files: readonly FileSnapshot[];
  /** When the check that found the change began (the watcher's clock): the change took `now() - startedAt`. */
  readonly startedAt: number;
}

/** The file system as the watcher uses it; tests give an in-memory one. */
export interface MountedFileIo {
  read(path: string): Promise<FileSnapshot>;
  /** Calls `onEvent` on any change inside `dir`, `onError` if the watch later fails. Throws when it cannot start. */
  watchDirectory(dir: string, onEvent: () => void, onError: (error: unknown) => void): { close(): void };
}

export interface WatchFailure {
  readonly dir: string;
  readonly error: unknown;
  /** "start": the directory could not be watched at all; "watching": the watch failed later. */
  readonly when: "start" | "watching";
}

export interface WatchMountedFilesOptions {
  /** The files as the caller read and used them at start (see readMountedFile); only a change from these is reported. */
  readonly initial: readonly FileSnapshot[];
  /** Overrides of MOUNTED_FILE_TIMING (tests). */
  readonly timing?: Partial<MountedFileTiming>;
  readonly now?: () => number;
  /** A directory watch could not start or failed: polling carries on alone. */
  readonly onWatchFailure?: (failure: WatchFailure) => void;
  readonly io?: MountedFileIo;
}

export interface MountedFileWatcher {
  stop(): void;
}
