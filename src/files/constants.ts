/**
 * The one set of timings for every file countersign follows while it runs: the policy, a `file:`
 * credentials profile, and the gRPC listener's TLS certificate, key and client CA.
 */
import type { MountedFileTiming } from "./types.js";

export const MOUNTED_FILE_TIMING: MountedFileTiming = {
  /** Backstop poll: `fs.watch` misses events on some filesystems (NFS, FUSE, some overlays). */
  pollIntervalMs: 5_000,
  /** Directory events this close together make one check (a `..data` swap raises several). */
  eventDebounceMs: 50,
  /** A changed file is used only once two reads this far apart agree. */
  settleMs: 300,
  /** A change still moving after this many settle reads is left to the next event or poll. */
  maxSettleRounds: 5,
  /**
   * A changed file that does not end in a newline may be cut in the middle of a value by a writer
   * that stalled: it is used only once it has also stayed the same this much longer.
   */
  unterminatedSettleMs: 2_000,
};
