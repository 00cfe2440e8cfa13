import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { until } from "../../test/support/eventually.js";
import { createFileProfile } from "./fileProfile.js";
import { createAudit, observeProfile, type Audit } from "./testing/audit.js";
import type { CredentialProfile, FileWatchOptions } from "./types.js";

/** Polls every millisecond, in real time, for at most 5 s. */
const POLL_EVERY_MS_1 = { timeoutMs: 5_000, everyMs: 1 };

const HOUR = 3_600_000;
/** Watch-only: the poll is pushed out of the test's reach. */
const WATCH_ONLY: FileWatchOptions = { pollIntervalMs: HOUR, settleMs: 20 };

let dir: string;
let audit: Audit;
let profile: CredentialProfile | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "countersign-file-"));
  audit = createAudit();
});

afterEach(async () => {
  if (profile) {
    observeProfile(audit, profile);
    profile.stop();
  }
  profile = undefined;
  await rm(dir, { recursive: true, force: true });
  expect(audit.leaks()).toEqual([]);
});

function ini(n: number, profileName = "default"): string {
  const key = `AKIAFILEEXAMPLE${String(n).padStart(5, "0")}`;
  audit.secret({ accessKeyId: key, secretAccessKey: `secret-${n}`, sessionToken: `token-${n}` });
  return `# rotated by the operator\n[${profileName}]\naws_access_key_id = ${key}\naws_secret_access_key = secret-${n}\naws_session_token = token-${n}\n`;
}

function set(n: number): { accessKeyId: string; secretAccessKey: string; sessionToken: string } {
  return { accessKeyId: `AKIAFILEEXAMPLE${String(n).padStart(5, "0")}`, secretAccessKey: `secret-${n}`, sessionToken: `token-${n}` };
}

function open(path: string, options: FileWatchOptions = WATCH_ONLY, name = "default"): CredentialProfile {
  profile = createFileProfile({
    name: "mounted",
    spec: { kind: "file", path, profile: name },
    now: Date.now,
    logger: audit.logger,
    events: audit.events,
    ...options,
  });
  return profile;
}

async function atomicWrite(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

function keyOf(p: CredentialProfile): string | undefined {
  const state = p.current();
  return state.ok ? state.credentials.accessKeyId : undefined;
}

/** A Kubernetes Secret volume: <dir>/credentials -> ..data/credentials, ..data -> ..<version>. */
async function secretVolume(version: string, text: string): Promise<void> {
  await mkdir(join(dir, `..${version}`));
  await writeFile(join(dir, `..${version}`, "credentials"), text);
  await symlink(`..${version}`, join(dir, "..data_tmp"));
  await rename(join(dir, "..data_tmp"), join(dir, "..data"));
}

describe("file credentials", () => {
  it("reads the named profile at start", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1, "other") + ini(2, "prod"));
    const p = open(path, WATCH_ONLY, "prod");
    await p.start();
    expect(p.current()).toEqual({ ok: true, credentials: set(2) });
    expect(p.status()).toMatchObject({ usable: true, refreshSuccesses: 1, refreshFailures: 0 });
  });

  it("uses a file without a final newline as it is at start, where there is no last good set to keep", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1).trimEnd());
    const p = open(path);
    await p.start();
    expect(p.current()).toEqual({ ok: true, credentials: set(1) });
  });

  it("is unusable when the file is missing at start, naming the path", async () => {
    const path = join(dir, "absent");
    const p = open(path);
    await p.start();
    expect(p.current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message: `no credentials for profile "mounted" (file); last refresh failed: ${path}: file not found (ENOENT)`,
      },
    });
  });

  it("uses a file replaced by write-to-temp and rename (seen by the directory watch)", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1));
    const p = open(path);
    await p.start();
    await atomicWrite(path, ini(2));
    await until(() => keyOf(p) === set(2).accessKeyId, "the rotated key", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: set(2) });
    expect(p.status()).toMatchObject({ refreshSuccesses: 2, refreshFailures: 0 });
  });

  it("uses a Kubernetes Secret update (atomic swap of the ..data symlink)", async () => {
    await secretVolume("2030_01_01_00_00_00.1", ini(1));
    await symlink(join("..data", "credentials"), join(dir, "credentials"));
    const p = open(join(dir, "credentials"));
    await p.start();
    expect(keyOf(p)).toBe(set(1).accessKeyId);

    await secretVolume("2030_01_01_01_00_00.2", ini(2));
    await until(() => keyOf(p) === set(2).accessKeyId, "the swapped key", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: set(2) });
  });

  it("keeps the last good set while the file is half-written, counting one failure, then uses the completed file", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1));
    const p = open(path);
    await p.start();
    const good = p.current();

    await writeFile(path, `[default]\naws_access_key_id = ${set(2).accessKeyId}\n`);
    await until(() => p.status().refreshFailures === 1, "the failed reload", POLL_EVERY_MS_1);
    expect(p.current()).toBe(good);
    expect(p.status().lastError).toBe(
      `${path}: profile [default] has no aws_secret_access_key; keeping the last good credentials`,
    );

    await writeFile(path, ini(2));
    await until(() => keyOf(p) === set(2).accessKeyId, "the completed file", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: set(2) });
    expect(p.status()).toMatchObject({ refreshSuccesses: 2, refreshFailures: 1 });
  });

  it("keeps the last good set when the file vanishes, and uses it again when it returns", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1));
    const p = open(path);
    await p.start();

    await rm(path);
    await until(() => p.status().refreshFailures === 1, "the vanished file", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: set(1) });
    expect(p.status().lastError).toBe(`${path}: file not found (ENOENT); keeping the last good credentials`);

    await atomicWrite(path, ini(3));
    await until(() => keyOf(p) === set(3).accessKeyId, "the returned file", POLL_EVERY_MS_1);
    expect(p.status()).toMatchObject({ refreshSuccesses: 2, refreshFailures: 1 });
  });

  it("picks up a change the directory watch cannot see through the poll (the watched directory was replaced)", async () => {
    const creds = join(dir, "mount");
    await mkdir(creds);
    const path = join(creds, "credentials");
    await writeFile(path, ini(1));
    const p = open(path, { pollIntervalMs: 100, settleMs: 20 });
    await p.start();

    await rename(creds, join(dir, "old-mount"));
    await until(() => p.status().refreshFailures === 1, "the vanished file", POLL_EVERY_MS_1);
    await mkdir(creds);
    await writeFile(path, ini(2));
    await until(() => keyOf(p) === set(2).accessKeyId, "the polled change", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: set(2) });
  });

  it("does not count or log an unchanged file again, however often it is checked", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1));
    const p = open(path, { pollIntervalMs: 10, settleMs: 5 });
    await p.start();
    await writeFile(`${path}.unrelated`, "x"); // a directory event
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(p.status()).toMatchObject({ refreshSuccesses: 1, refreshFailures: 0 });
    expect(audit.refreshes).toHaveLength(1);
  });

  it("stops watching and polling after stop()", async () => {
    const path = join(dir, "credentials");
    await writeFile(path, ini(1));
    const p = open(path, { pollIntervalMs: 10, settleMs: 5 });
    await p.start();
    p.stop();
    await atomicWrite(path, ini(2));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(keyOf(p)).toBe(set(1).accessKeyId);
  });
});
