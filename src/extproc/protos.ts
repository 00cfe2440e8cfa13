/**
 * Loads Envoy's ext_proc service definition. The .proto files come from the npm package
 * @grpc/grpc-js-xds (deps/); TypeScript types for them are generated at build time into
 * protos/generated (see scripts/gen-proto-types.mjs). This is the only place that knows where
 * Envoy's API lives.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { ProtoGrpcType } from "../../protos/generated/external_processor.js";

const require = createRequire(import.meta.url);

export function envoyProtoIncludeDirs(): string[] {
  const deps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  return ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => join(deps, d));
}

/** Options shared with the generated types: keep field names, enums as strings, defaults filled. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

export function loadExtProcProtos(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync("envoy/service/ext_proc/v3/external_processor.proto", {
      ...PROTO_LOADER_OPTIONS,
      includeDirs: envoyProtoIncludeDirs(),
    });
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}
