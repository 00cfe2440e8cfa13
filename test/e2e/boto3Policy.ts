import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { PLACEHOLDER, pythonWorkloadEnv, type Stack } from "./harness.js";

/** boto3 (Debian python3-boto3, installed by scripts/install-system-deps.sh) as the workload, through Envoy's proxy listener. */
export async function runBoto3Policy(stack: Stack, scenario: string | string[], credentials: { accessKeyId: string; secretAccessKey: string } = PLACEHOLDER): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)("/usr/bin/python3", [join(import.meta.dirname, "boto3_policy_client.py"), ...(typeof scenario === "string" ? [scenario] : scenario)], {
    timeout: 120_000,
    env: pythonWorkloadEnv(stack, credentials),
  }).catch((err: unknown) => {
    throw new Error(`boto3 failed (it needs /usr/bin/python3 with boto3: run scripts/install-system-deps.sh as root): ${err instanceof Error ? err.message : String(err)}`);
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}
