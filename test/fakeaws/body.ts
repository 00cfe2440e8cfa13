/**
 * Collects a (decoded) request body once: size, MD5, SHA-256, any checksums the request's
 * `x-amz-checksum-*` headers ask for, and, unless told to discard, the bytes themselves.
 */
import { createHash, type Hash } from "node:crypto";
import { createChecksum, type ChecksumAlgorithm, type RunningChecksum } from "./checksums.js";

export interface CollectedBody {
  /** The bytes, unless the fake was started with `discardBodies`. */
  buffer?: Buffer;
  size: number;
  md5Hex: string;
  sha256Hex: string;
  /** Base64 checksum per algorithm that was requested. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

export class BodyCollector {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private readonly md5: Hash = createHash("md5");
  private readonly sha256: Hash = createHash("sha256");
  private readonly checksums: RunningChecksum[];

  constructor(
    private readonly keep: boolean,
    algorithms: readonly ChecksumAlgorithm[] = [],
  ) {
    this.checksums = [...new Set(algorithms)].map(createChecksum);
  }

  update(data: Buffer): void {
    this.size += data.length;
    this.md5.update(data);
    this.sha256.update(data);
    for (const c of this.checksums) c.update(data);
    if (this.keep) this.parts.push(data);
  }

  finish(): CollectedBody {
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const c of this.checksums) checksums[c.algorithm] = c.digestBase64();
    return {
      ...(this.keep ? { buffer: Buffer.concat(this.parts, this.size) } : {}),
      size: this.size,
      md5Hex: this.md5.digest("hex"),
      sha256Hex: this.sha256.digest("hex"),
      checksums,
    };
  }
}

/** A body collected from an in-memory buffer (small bodies, tests). */
export function collectBuffer(data: Buffer, keep = true, algorithms: readonly ChecksumAlgorithm[] = []): CollectedBody {
  const c = new BodyCollector(keep, algorithms);
  c.update(data);
  return c.finish();
}
