/**
 * File operations the way deployments change files under a running countersign: an atomic
 * replace (write a temp file, rename over), and the Kubernetes ConfigMap/Secret volume layout
 * (`dir/..data -> ..<timestamp>`, `dir/<name> -> ..data/<name>`, updated by swapping `..data`).
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `countersign-ops-${prefix}-`));
}

/** Replaces `path` in one step: readers see the old or the new content, never a part. */
export function replaceAtomically(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export class ConfigMapVolume {
  private generation = 0;
  private current: string | undefined;

  constructor(
    readonly dir: string,
    readonly fileName: string,
  ) {}

  /** The path a pod reads: `dir/<fileName>`, a symlink through `..data`. */
  get path(): string {
    return join(this.dir, this.fileName);
  }

  /** Creates the layout with `content` as the first version. */
  init(content: string): void {
    const version = this.writeVersion(content);
    symlinkSync(version, join(this.dir, "..data"));
    symlinkSync(join("..data", this.fileName), this.path);
    this.current = version;
  }

  /** What the kubelet does on an update: new version directory, `..data` swapped by rename, old version removed. */
  update(content: string): void {
    const version = this.writeVersion(content);
    const tmpLink = join(this.dir, "..data_tmp");
    symlinkSync(version, tmpLink);
    renameSync(tmpLink, join(this.dir, "..data"));
    if (this.current) rmSync(join(this.dir, this.current), { recursive: true, force: true });
    this.current = version;
  }

  private writeVersion(content: string): string {
    const version = `..2024_01_01_00_00_0${this.generation++}.${process.pid}`;
    mkdirSync(join(this.dir, version));
    writeFileSync(join(this.dir, version, this.fileName), content);
    return version;
  }
}
