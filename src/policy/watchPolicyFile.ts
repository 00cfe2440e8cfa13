/**
 * Notices when the policy file changes. Kubernetes ConfigMap volumes update by swapping a `..data`
 * symlink in the file's directory, which a watch on the file itself misses; so the directory is
 * watched, and the file's content is also polled as a backstop. A change is reported only after
 * the content has been stable for `settleMs`, so a half-written file is not picked up mid-write.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface PolicyWatchOptions {
  readonly pollIntervalMs?: number;
  readonly settleMs?: number;
}

export interface PolicyWatcher {
  stop(): void;
}

/**
 * Calls `onChange` (never concurrently) whenever the file's content differs from the last content
 * reported or given as `initialText`, once the content has been stable for `settleMs`.
 */
export function watchPolicyFile(
  path: string,
  initialText: string,
  onChange: () => Promise<void>,
  opts: PolicyWatchOptions = {},
): PolicyWatcher {
  const pollIntervalMs = opts.pollIntervalMs ?? 5_000;
  const settleMs = opts.settleMs ?? 300;
  let lastHash = sha256(initialText);
  let stopped = false;
  let checking = false;
  let again = false;
  let debounce: NodeJS.Timeout | undefined;

  const check = async (): Promise<void> => {
    if (stopped) return;
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      const first = await readOrUndefined(path);
      if (first === undefined || sha256(first) === lastHash) return;
      await sleep(settleMs);
      const second = await readOrUndefined(path);
      if (second === undefined || second !== first) {
        again = true; // still being written: look again shortly
        return;
      }
      lastHash = sha256(second);
      await onChange();
    } finally {
      checking = false;
      if (again && !stopped) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => void check(), 50);
    debounce.unref();
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, () => schedule());
    watcher.on("error", () => undefined);
  } catch {
    watcher = undefined; // polling alone still works
  }
  const poll = setInterval(() => void check(), pollIntervalMs);
  poll.unref();

  return {
    stop() {
      stopped = true;
      watcher?.close();
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
    },
  };
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
