/**
 * A profile target for event-stream re-signing: the micro-benchmark's stream of messages of one
 * size (bench/eventStreamBench.ts), re-signed in a loop.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profileEventStream.ts [BYTES] [SECONDS]
 *   node --import tsx bench/topFunctions.ts /tmp/prof/<file>.cpuprofile 30
 */
import { eventStreamBench } from "./eventStreamBench.js";

const size = Number(process.argv[2] ?? 65536);
const seconds = Number(process.argv[3] ?? 10);

async function main(): Promise<void> {
  const bench = eventStreamBench(size);
  const start = performance.now();
  const end = start + seconds * 1000;
  let streams = 0;
  while (performance.now() < end) {
    await bench.resignOnce();
    streams++;
  }
  const us = ((performance.now() - start) * 1000) / (streams * bench.messages);
  process.stdout.write(`${streams} streams of ${bench.messages} messages of ${bench.label}: ${us.toFixed(1)} µs per message (wall)\n`);
}

void main();
