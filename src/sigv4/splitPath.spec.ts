import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { splitPath } from "./splitPath.js";

describe("splitPath", () => {
  it("keeps the path exactly as sent and decodes the query", () => {
    const s = splitPath("/my%20bucket/a+b%2Fc?prefix=a%2Fb&list-type=2&empty&x=1+2");
    expect(s).toEqual({
      ok: true,
      path: "/my%20bucket/a+b%2Fc",
      query: Object.assign(Object.create(null), { prefix: "a/b", "list-type": "2", empty: "", x: "1+2" }),
      presign: new Map(),
      rewrittenPath: undefined,
    });
  });

  it("keeps query keys named like Object.prototype members as plain own values", () => {
    const r = splitPath("/k?constructor=a&__proto__=b&toString=c&toString=d&hasOwnProperty=e");
    if (!r.ok) throw new Error(r.error);
    expect(Object.keys(r.query)).toEqual(["constructor", "__proto__", "toString", "hasOwnProperty"]);
    expect(Object.getOwnPropertyDescriptor(r.query, "__proto__")?.value).toBe("b");
    expect(r.query["constructor"]).toBe("a");
    expect(r.query["toString"]).toEqual(["c", "d"]);
  });

  it("collects repeated keys in order", () => {
    const s = splitPath("/?a=2&a=1&b=3");
    expect(s.ok && s.query).toEqual(Object.assign(Object.create(null), { a: ["2", "1"], b: "3" }));
  });

  it("takes presigned-URL parameters out and rewrites :path without them, keeping the rest byte for byte", () => {
    const s = splitPath(
      "/bucket/key%20x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&versionId=a%2Bb&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ab&X-Amz-Security-Token=tok",
    );
    expect(s.ok).toBe(true);
    if (!s.ok) return;
    expect(s.rewrittenPath).toBe("/bucket/key%20x?versionId=a%2Bb");
    expect(s.query).toEqual(Object.assign(Object.create(null), { versionId: "a+b" }));
    expect(s.presign.get("X-Amz-Credential")).toBe("AK/20240101/us-east-1/s3/aws4_request");
    expect([...s.presign.keys()]).toHaveLength(7);
  });

  it("rewrites to the bare path when only presign parameters were present", () => {
    const s = splitPath("/k?X-Amz-Signature=ab");
    expect(s.ok && s.rewrittenPath).toBe("/k");
  });

  it.each([
    ["", "does not start"],
    ["relative/path", "does not start"],
    ["/a#frag", "fragment"],
    ["/a?x=%ZZ", "malformed percent-escape"],
    ["/a?x=%FF", "not UTF-8"],
  ])("refuses %s", (path, message) => {
    const s = splitPath(path);
    expect(s.ok).toBe(false);
    expect(!s.ok && s.error).toContain(message);
  });

  it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (p) => {
        const s = splitPath(`/${p}`);
        expect(typeof s.ok).toBe("boolean");
      }),
      { numRuns: 2000 },
    );
  });
});
