import { describe, expect, it } from "vitest";
import { describeError, keyIdSuffix, redactKeyIds } from "./redact.js";
import { defaultSessionName } from "./sessionName.js";

describe("keyIdSuffix", () => {
  it("keeps only the last 4 characters", () => {
    expect(keyIdSuffix("ASIAEXAMPLE12345WXYZ")).toBe("WXYZ");
  });
  it("keeps nothing of a key id too short to hide", () => {
    expect(keyIdSuffix("ABCD")).toBe("");
  });
});

describe("redactKeyIds", () => {
  it("replaces anything shaped like an access key id by its last 4 characters", () => {
    expect(redactKeyIds("The key AKIAIOSFODNN7EXAMPLE is not valid")).toBe("The key <key id …MPLE> is not valid");
  });
  it("cuts very long text", () => {
    expect(redactKeyIds("x".repeat(1000))).toHaveLength(401);
  });
});

describe("describeError", () => {
  it("names an AWS service error by its code, message and HTTP status", () => {
    const err = Object.assign(new Error("Rate exceeded"), { name: "Throttling", $metadata: { httpStatusCode: 400 } });
    expect(describeError(err)).toBe("Throttling: Rate exceeded (HTTP 400)");
  });
  it("leaves out the generic Error name", () => {
    expect(describeError(new Error("boom"))).toBe("boom");
  });
  it("describes a thrown non-error", () => {
    expect(describeError(42)).toBe("unknown error");
  });
});

describe("defaultSessionName", () => {
  it("prefixes countersign- to the host name", () => {
    expect(defaultSessionName("pod-1.example")).toBe("countersign-pod-1.example");
  });
  it("replaces characters STS does not accept", () => {
    expect(defaultSessionName("a b/c:d")).toBe("countersign-a-b-c-d");
  });
  it("cuts to 64 characters", () => {
    const name = defaultSessionName("h".repeat(100));
    expect(name).toHaveLength(64);
    expect(name).toMatch(/^countersign-h+$/);
  });
});
