/**
 * A folder laid out the way the kubelet mounts a Secret or ConfigMap: the files live in a
 * timestamped folder, `..data` is a symlink to it, and each key is a symlink through `..data`.
 * An update writes a new timestamped folder and renames a new `..data` symlink over the old one,
 * which is one atomic rename in the mounted folder: what Envoy's `watched_directory` waits for.
 */
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

let generation = 0;

function writeGeneration(dir: string, files: Record<string, string>): string {
  const name = `..${new Date().toISOString().replace(/[-:.]/g, "_")}.${process.pid}.${++generation}`;
  mkdirSync(join(dir, name), { recursive: true });
  for (const [key, content] of Object.entries(files)) writeFileSync(join(dir, name, key), content, { mode: key.endsWith(".key") ? 0o600 : 0o644 });
  return name;
}

/** Creates `dir` holding `files` (key → content) in the kubelet's layout. */
export function writeSecretVolume(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  const name = writeGeneration(dir, files);
  symlinkSync(name, join(dir, "..data"));
  for (const key of Object.keys(files)) symlinkSync(join("..data", key), join(dir, key));
}

/** Replaces every file at once, as the kubelet does when the Secret changes (same keys). */
export function updateSecretVolume(dir: string, files: Record<string, string>): void {
  const old = readlinkSync(join(dir, "..data"));
  const name = writeGeneration(dir, files);
  symlinkSync(name, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  rmSync(join(dir, old), { recursive: true, force: true });
}
