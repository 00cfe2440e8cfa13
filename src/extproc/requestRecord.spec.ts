import { describe, expect, it } from "vitest";
import type { DecisionEvent } from "./context.js";
import { MAX_REQUEST_ID_CHARS, RequestRecord } from "./requestRecord.js";

describe("RequestRecord", () => {
  it("emits nothing until decided, then one event with what was learned and the first outcome given", () => {
    const events: DecisionEvent[] = [];
    const r = new RequestRecord((e) => events.push(e));
    r.identify("rid-7", "PUT");
    r.emit();
    expect(events).toEqual([]);
    r.learned({ host: "b.s3.eu-west-1.amazonaws.com", endpointIndex: 3, profile: "main", service: "s3", region: "eu-west-1", payloadMode: "signed-chunked" });
    r.busy(0.25);
    r.busy(0.5);
    r.hashed(1024, 2);
    r.decide("signed", "signed", 200);
    r.decide("cancelled", "client_cancelled", 499);
    r.emit();
    r.emit();
    expect(events).toEqual([
      {
        requestId: "rid-7",
        method: "PUT",
        host: "b.s3.eu-west-1.amazonaws.com",
        service: "s3",
        region: "eu-west-1",
        payloadMode: "signed-chunked",
        profile: "main",
        endpointIndex: 3,
        decision: "signed",
        reason: "signed",
        status: 200,
        signingSeconds: 0.75,
        bytesHashed: 1024,
        chunksResigned: 2,
        clientKeyId: undefined,
      },
    ]);
  });

  it("a request refused before its head was read has empty facts, endpoint -1 and the id the record was opened with", () => {
    const events: DecisionEvent[] = [];
    const r = new RequestRecord((e) => events.push(e));
    r.decide("refused", "protocol_error", 500);
    r.emit();
    expect(r.requestId).toMatch(new RegExp(`^countersign-${process.pid}-\\d+$`));
    expect(events).toMatchObject([{ requestId: r.requestId, method: "", host: "", service: "", region: "", payloadMode: "", profile: "", endpointIndex: -1, status: 500 }]);
  });

  it("keeps an x-request-id of up to 128 characters as it is, cuts a longer one to 128 (whole code points), and makes one up for none or an empty one", () => {
    const idOf = (requestId: string | undefined): string => {
      const events: DecisionEvent[] = [];
      const r = new RequestRecord((e) => events.push(e));
      r.identify(requestId, "GET");
      r.decide("signed", "signed", 200);
      r.emit();
      return events[0]?.requestId ?? "(no event)";
    };
    const uuid = "72b62d90-dcee-4edd-ae50-97ca5ee836cf";
    expect(idOf(uuid)).toBe(uuid);
    expect(idOf("x".repeat(MAX_REQUEST_ID_CHARS))).toBe("x".repeat(128));
    expect(idOf(`${"y".repeat(128)}z`)).toBe("y".repeat(128));
    expect(idOf("r".repeat(90 * 1024))).toBe("r".repeat(128));
    // 127 ASCII characters then a character outside the BMP (two UTF-16 units): never half of it.
    expect(idOf(`${"a".repeat(127)}😀tail`)).toBe(`${"a".repeat(127)}😀`);
    expect(idOf(undefined)).toMatch(/^countersign-\d+-\d+$/);
    expect(idOf("")).toMatch(/^countersign-\d+-\d+$/);
  });

  it("a hook that throws is called once and the throw goes no further", () => {
    let calls = 0;
    const r = new RequestRecord(() => {
      calls++;
      throw new Error("the metrics backend is broken");
    });
    r.decide("refused", "no_endpoint", 403);
    expect(() => r.emit()).not.toThrow();
    r.emit();
    expect(calls).toBe(1);
  });

  it("a request without x-request-id (or with an empty one) keeps the countersign id its record was opened with", () => {
    const r = new RequestRecord(() => {});
    const opened = r.requestId;
    expect(opened).toMatch(new RegExp(`^countersign-${process.pid}-\\d+$`));
    r.identify(undefined, "GET");
    expect(r.requestId).toBe(opened);
    r.identify("", "GET");
    expect(r.requestId).toBe(opened);
    expect(new RequestRecord(() => {}).requestId).not.toBe(opened);
  });
});
