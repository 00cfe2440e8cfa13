/** Test helper: a file system in memory for the mounted-file watcher and its users. */
import { dirname } from "node:path";
import { contentSnapshot, unreadableSnapshot } from "../readMountedFile.js";
import type { FileSnapshot, MountedFileIo } from "../types.js";

/** A file system in memory: writes raise an event on the file's directory unless `quietly`. */
export class MemoryFiles implements MountedFileIo {
  reads = 0;
  /** Called before every read (a writer that keeps changing the file). */
  beforeRead: (() => void) | undefined;
  readonly unwatchable = new Set<string>();
  private readonly files = new Map<string, Buffer>();
  private readonly watches = new Map<string, Set<{ onEvent: () => void; onError: (error: unknown) => void }>>();

  write(path: string, text: string | Buffer, { quietly = false } = {}): void {
    this.files.set(path, Buffer.from(text));
    if (!quietly) this.event(dirname(path));
  }

  remove(path: string): void {
    this.files.delete(path);
    this.event(dirname(path));
  }

  event(dir: string): void {
    for (const w of this.watches.get(dir) ?? []) w.onEvent();
  }

  failWatch(dir: string, error: Error): void {
    for (const w of this.watches.get(dir) ?? []) w.onError(error);
  }

  watchedDirectories(): string[] {
    return [...this.watches].filter(([, set]) => set.size > 0).map(([dir]) => dir);
  }

  async read(path: string): Promise<FileSnapshot> {
    this.beforeRead?.();
    this.reads++;
    const bytes = this.files.get(path);
    return bytes ? contentSnapshot(path, bytes) : unreadableSnapshot(path, "ENOENT");
  }

  watchDirectory(dir: string, onEvent: () => void, onError: (error: unknown) => void): { close(): void } {
    if (this.unwatchable.has(dir)) throw new Error(`ENOSPC: cannot watch ${dir}`);
    const entry = { onEvent, onError };
    const set = this.watches.get(dir) ?? new Set();
    set.add(entry);
    this.watches.set(dir, set);
    return { close: () => set.delete(entry) };
  }
}
