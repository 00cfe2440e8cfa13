import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "./freePort.js";

describe("freePort", () => {
  it("hands out distinct ports below the kernel's ephemeral range, each one bindable", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(50);
    for (const p of ports) expect(p >= 20_000 && p <= 32_767).toBe(true);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(ports[0], "127.0.0.1", () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
