import { describe, expect, it } from "vitest";
import { splitAuthority } from "./splitAuthority.js";

describe("splitAuthority", () => {
  it.each([
    ["s3.amazonaws.com", "https", "s3.amazonaws.com", 443],
    ["s3.amazonaws.com", "http", "s3.amazonaws.com", 80],
    ["s3.amazonaws.com", "HTTPS", "s3.amazonaws.com", 443],
    ["s3.amazonaws.com:8443", "https", "s3.amazonaws.com", 8443],
    ["s3.amazonaws.com:443", "http", "s3.amazonaws.com", 443],
    ["S3.AmazonAWS.com.:443", "https", "s3.amazonaws.com", 443],
    ["s3.amazonaws.com:1", "https", "s3.amazonaws.com", 1],
    ["s3.amazonaws.com:65535", "https", "s3.amazonaws.com", 65535],
    ["s3.amazonaws.com:00443", "https", "s3.amazonaws.com", 443],
    ["127.0.0.1:9000", "http", "127.0.0.1", 9000],
    ["[::1]:443", "https", "::1", 443],
    ["[::1]", "https", "::1", 443],
    ["[::1]", "http", "::1", 80],
    ["[2001:DB8::1]:8080", "http", "2001:db8::1", 8080],
    ["localhost", "http", "localhost", 80],
  ])("%s (%s) → %s port %i", (authority, scheme, host, port) => {
    expect(splitAuthority(authority, scheme)).toStrictEqual({ host, port });
  });

  it.each([
    ["", "https"],
    [":443", "https"],
    ["s3.amazonaws.com:", "https"],
    ["s3.amazonaws.com:https", "https"],
    ["s3.amazonaws.com:0", "https"],
    ["s3.amazonaws.com:65536", "https"],
    ["s3.amazonaws.com:123456", "https"],
    ["s3.amazonaws.com:-1", "https"],
    ["s3.amazonaws.com:44 3", "https"],
    ["s3.amazon aws.com", "https"],
    [" s3.amazonaws.com", "https"],
    ["s3.amazonaws.com ", "https"],
    ["user@s3.amazonaws.com", "https"],
    ["s3..amazonaws.com", "https"],
    [".", "https"],
    ["::1", "https"],
    ["[::1", "https"],
    ["[::1]443", "https"],
    ["[::1]:", "https"],
    ["[]:443", "https"],
    ["[not-v6]:443", "https"],
    ["s3.amazonaws.com", "ftp"],
    ["s3.amazonaws.com", ""],
  ])("rejects %j (scheme %j)", (authority, scheme) => {
    expect(splitAuthority(authority, scheme)).toBeUndefined();
  });

  it("accepts any scheme when the authority carries a port", () => {
    expect(splitAuthority("s3.amazonaws.com:443", "")).toStrictEqual({ host: "s3.amazonaws.com", port: 443 });
  });
});
