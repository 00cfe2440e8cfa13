import { createHash } from "node:crypto";
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import type { FileSnapshot, MountedFileIo } from "./types.js";

/** Reads `path` once, as it is: its bytes, or why it cannot be read. Never throws. */
export async function readMountedFile(path: string): Promise<FileSnapshot> {
  try {
    return contentSnapshot(path, await readFile(path));
  } catch (err) {
    return unreadableSnapshot(path, (err as NodeJS.ErrnoException).code ?? "unknown");
  }
}

export function contentSnapshot(path: string, bytes: Buffer): FileSnapshot {
  return { kind: "content", path, key: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, bytes };
}

export function unreadableSnapshot(path: string, code: string): FileSnapshot {
  const error = code === "ENOENT" ? "file not found (ENOENT)" : `cannot read the file (${code})`;
  return { kind: "unreadable", path, key: `error:${code}`, code, error };
}

/** The real file system: reads, and `fs.watch` on a directory (not persistent: it never keeps the process alive). */
export const nodeMountedFileIo: MountedFileIo = {
  read: readMountedFile,
  watchDirectory(dir, onEvent, onError) {
    const watcher = watch(dir, { persistent: false }, () => onEvent());
    watcher.on("error", onError);
    return watcher;
  },
};
