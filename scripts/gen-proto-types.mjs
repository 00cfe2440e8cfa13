// Generates TypeScript types for the Envoy ext_proc protos at build time into protos/generated/
// (git-ignored). The .proto sources come from the npm package @grpc/grpc-js-xds (deps/); no copy
// of Envoy's API is kept in this repository.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const xdsDeps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
const includeDirs = ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => join(xdsDeps, d));
const genBin = join(dirname(require.resolve("@grpc/proto-loader/package.json")), "build", "bin", "proto-loader-gen-types.js");

execFileSync(
  process.execPath,
  [
    genBin,
    "--keepCase",
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--grpcLib=@grpc/grpc-js",
    "--importFileExtension=.js",
    "--outDir",
    join(root, "protos", "generated"),
    // The file name goes before -I: the include-dir option is an array and swallows what follows.
    "envoy/service/ext_proc/v3/external_processor.proto",
    ...includeDirs.flatMap((d) => ["-I", d]),
  ],
  { stdio: "inherit" },
);
